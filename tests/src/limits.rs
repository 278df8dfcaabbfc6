//! Process limits for programs that hold thousands of connections.

/// Raises the soft open-files limit to the hard limit and returns the new soft limit, so a bench can hold
/// thousands of watch connections; the default soft limit (1024) would refuse them.
pub fn raise_nofile() -> std::io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).map_err(std::io::Error::from)?;
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}
