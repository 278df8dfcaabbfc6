//! `leasehold run [--namespace NS] [--grace DUR] -- CMD ARGS...`: one leader-gated task taken from argv, with the
//! rest of the configuration as for `leasehold agent`.
//!
//! The wrapper exists to put an unchanged collector under election, so election is always on in this mode,
//! whatever `ENV_ENABLE_ELECTION` says; the whitelist still applies (a banned node never runs the command).

use std::time::Duration;

use leasehold_policy::config::{TaskConfig, TaskDefaults, TaskMode};
use leasehold_policy::tags::Tags;

use crate::settings::{Settings, SettingsError};

/// Replaces the configured tasks with the wrapped command.
pub fn apply(
    mut settings: Settings,
    namespace: Option<String>,
    grace: Option<Duration>,
    command: Vec<String>,
) -> Result<Settings, SettingsError> {
    let config = &mut settings.config;
    config.election.enabled = true;
    let namespace = match namespace {
        Some(ns) if config.election.namespaces.contains(&ns) => ns,
        Some(ns) => {
            return Err(SettingsError::Invalid(format!(
                "--namespace {ns:?} is not one of the election namespaces ({}); set ENV_NAMESPACE to include it",
                config.election.namespaces.join(", ")
            )));
        }
        None => config
            .election
            .namespaces
            .first()
            .cloned()
            .unwrap_or_else(|| "default".into()),
    };
    let grace = grace.unwrap_or_else(|| {
        config.tasks.first().map_or_else(
            || TaskDefaults::default().grace_for(&config.lease.timing),
            |t| t.grace,
        )
    });
    let slack = config
        .lease
        .timing
        .lease_duration
        .saturating_sub(config.lease.timing.renew_deadline);
    if grace >= slack {
        return Err(SettingsError::Invalid(format!(
            "--grace {}: must be shorter than LD - RD ({}), so the command is gone before another agent can take over",
            humantime::format_duration(grace),
            humantime::format_duration(slack)
        )));
    }
    let program = command.first().map(String::as_str).unwrap_or("command");
    let name: String = std::path::Path::new(program)
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        })
        .unwrap_or_else(|| "command".into());
    config.tasks = vec![TaskConfig {
        name,
        command,
        election: true,
        namespace,
        mode: TaskMode::Leader,
        grace,
        tags: Tags::new(),
    }];
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let env: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        crate::settings::load_from(&env).expect("valid settings")
    }

    #[test]
    fn the_default_grace_follows_fast_timing_and_a_written_one_is_still_checked() {
        let fast = [
            ("NODE_NAME", "node-a"),
            ("LEASEHOLD_LEASE_DURATION", "3s"),
            ("LEASEHOLD_RENEW_DEADLINE", "2s"),
            ("LEASEHOLD_RETRY_PERIOD", "500ms"),
        ];
        let s = apply(settings(&fast), None, None, vec!["true".into()]).expect("runs");
        assert_eq!(s.config.tasks[0].grace, Duration::from_millis(500));
        let err = apply(
            settings(&fast),
            None,
            Some(Duration::from_secs(1)),
            vec!["true".into()],
        )
        .expect_err("1 s is not below LD - RD = 1 s");
        assert!(err.to_string().starts_with("--grace 1s"), "{err}");
    }
}
