//! Reading the TOML configuration text: DataKit's `[election]` table as-is, plus
//! `[global_host_tags]`, `[lease]`, `[api]` and `[[task]]`.
//!
//! Every table is read through a [`Reader`] that records which keys it asked for; whatever
//! is left over is an unknown key, reported with the closest known key, so a typo such as
//! `renew_dedline` stops start-up instead of silently keeping the default.

use std::time::Duration;

use toml::{Table, Value};

use crate::config::error::ConfigError;
use crate::config::layer::{Layer, RawTask, Setting};
use crate::config::suggest::closest;
use crate::config::values;
use crate::tags::Tags;

/// Every key this file format accepts, for cross-table suggestions (`[lease] listen` →
/// `api.listen`).
const ALL_KEYS: &[&str] = &[
    "election.enable",
    "election.namespace",
    "election.enable_namespace_tag",
    "election.node_whitelist",
    "election.tags",
    "global_host_tags",
    "lease.namespace",
    "lease.prefix",
    "lease.duration",
    "lease.renew_deadline",
    "lease.retry_period",
    "lease.takeover_spread",
    "lease.settle",
    "lease.member_duration",
    "lease.member_renew",
    "api.listen",
    "api.probe_listen",
    "api.token",
    "api.log_format",
    "task.name",
    "task.command",
    "task.election",
    "task.namespace",
    "task.mode",
    "task.grace",
    "task.tags",
];

/// Keys of older DataKit configurations and where they live here.
const LEGACY_KEYS: &[(&str, &str)] = &[
    ("enable_election", "election.enable"),
    ("election_namespace", "election.namespace"),
    ("namespace", "election.namespace"),
    ("enable_election_tag", "election.enable_namespace_tag"),
    ("global_election_tags", "election.tags"),
    ("global_env_tags", "election.tags"),
];

/// Parses the TOML text into a layer.
pub(crate) fn read(text: &str) -> Result<Layer, ConfigError> {
    let root: Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            reason: e.to_string().trim_end().replace('\n', " "),
        })?;
    let mut layer = Layer::default();
    let mut r = Reader::new("", &root);
    if let Some(mut election) = r.table("election")? {
        layer.enabled = election.bool("enable")?;
        layer.namespaces = election.namespaces("namespace")?;
        layer.namespace_tag = election.bool("enable_namespace_tag")?;
        layer.whitelist = election.whitelist("node_whitelist")?;
        layer.election_tags = election.tags("tags")?;
        election.finish()?;
    }
    layer.host_tags = r.tags("global_host_tags")?;
    if let Some(mut lease) = r.table("lease")? {
        layer.lease_namespace = lease.parsed("namespace", values::parse_kube_namespace)?;
        layer.prefix = lease.parsed("prefix", values::parse_prefix)?;
        layer.lease_duration = lease.parsed("duration", values::parse_lease_seconds)?;
        layer.renew_deadline = lease.parsed("renew_deadline", values::parse_duration)?;
        layer.retry_period = lease.parsed("retry_period", values::parse_duration)?;
        layer.takeover_spread = lease.parsed("takeover_spread", values::parse_duration)?;
        layer.settle = lease.parsed("settle", values::parse_duration)?;
        layer.member_duration = lease.parsed("member_duration", values::parse_lease_seconds)?;
        layer.member_renew = lease.parsed("member_renew", values::parse_duration)?;
        lease.finish()?;
    }
    if let Some(mut api) = r.table("api")? {
        layer.listen = api.parsed("listen", values::parse_addr)?;
        layer.probe_listen = api.parsed("probe_listen", values::parse_addr)?;
        layer.token = api.parsed("token", values::parse_token)?;
        layer.log_format = api.parsed("log_format", values::parse_log_format)?;
        api.finish()?;
    }
    layer.tasks = r.tasks("task")?;
    r.finish()?;
    Ok(layer)
}

/// Reads one table, remembering the keys asked for.
struct Reader<'a> {
    path: String,
    table: &'a Table,
    known: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    fn new(path: impl Into<String>, table: &'a Table) -> Self {
        Reader {
            path: path.into(),
            table,
            known: Vec::new(),
        }
    }

    fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_owned()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    fn get(&mut self, k: &'static str) -> Option<&'a Value> {
        self.known.push(k);
        self.table.get(k)
    }

    fn wrong(&self, k: &str, v: &Value, expected: &'static str) -> ConfigError {
        ConfigError::WrongType {
            key: self.key(k),
            value: v.to_string(),
            expected,
        }
    }

    fn bool(&mut self, k: &'static str) -> Result<Option<Setting<bool>>, ConfigError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(Setting::new(self.key(k), *b))),
            Some(v) => Err(self.wrong(k, v, "a boolean (true or false)")),
        }
    }

    fn str(&mut self, k: &'static str) -> Result<Option<&'a str>, ConfigError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(self.wrong(k, v, "a string")),
        }
    }

    /// A string value run through one of the shared value parsers.
    fn parsed<T>(
        &mut self,
        k: &'static str,
        parse: impl Fn(&str, &str) -> Result<T, ConfigError>,
    ) -> Result<Option<Setting<T>>, ConfigError> {
        let key = self.key(k);
        self.str(k)?
            .map(|s| parse(&key, s).map(|v| Setting::new(key.clone(), v)))
            .transpose()
    }

    fn strings(
        &mut self,
        k: &'static str,
        v: &Value,
        expected: &'static str,
    ) -> Result<Vec<String>, ConfigError> {
        let Value::Array(items) = v else {
            return Err(self.wrong(k, v, expected));
        };
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(self.wrong(k, v, expected)),
            })
            .collect()
    }

    /// `namespace = "a"`, `namespace = "a,b"` or `namespace = ["a", "b"]`.
    fn namespaces(&mut self, k: &'static str) -> Result<Option<Setting<Vec<String>>>, ConfigError> {
        const EXPECTED: &str = "a string or an array of strings";
        let key = self.key(k);
        let list = match self.get(k) {
            None => return Ok(None),
            Some(Value::String(s)) => values::parse_namespaces(&key, s)?,
            Some(v) => {
                let items = self.strings(k, v, EXPECTED)?;
                values::check_namespaces(&key, &v.to_string(), items)?
            }
        };
        Ok(Some(Setting::new(key, list)))
    }

    /// `node_whitelist = ["a", "b"]` (DataKit) or the env forms in a string.
    fn whitelist(
        &mut self,
        k: &'static str,
    ) -> Result<Option<Setting<crate::eligibility::Whitelist>>, ConfigError> {
        const EXPECTED: &str = "an array of node names, like [\"node-a\", \"node-b\"]";
        let key = self.key(k);
        let list = match self.get(k) {
            None => return Ok(None),
            Some(Value::String(s)) => values::parse_whitelist(&key, s)?,
            Some(v) => crate::eligibility::Whitelist::new(self.strings(k, v, EXPECTED)?),
        };
        Ok(Some(Setting::new(key, list)))
    }

    fn table(&mut self, k: &'static str) -> Result<Option<Reader<'a>>, ConfigError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(Reader::new(self.key(k), t))),
            Some(v) => Err(self.wrong(k, v, "a table")),
        }
    }

    /// A table of string tags; any key is allowed.
    fn tags(&mut self, k: &'static str) -> Result<Tags, ConfigError> {
        const EXPECTED: &str = "a table of string values, like project = \"web\"";
        let mut tags = Tags::new();
        let Some(value) = self.get(k) else {
            return Ok(tags);
        };
        let Value::Table(t) = value else {
            return Err(self.wrong(k, value, EXPECTED));
        };
        let base = self.key(k);
        for (tag, v) in t {
            let tag_key = format!("{base}.{tag}");
            let Value::String(s) = v else {
                return Err(ConfigError::WrongType {
                    key: tag_key,
                    value: v.to_string(),
                    expected: "a string",
                });
            };
            if tag.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    key: tag_key,
                    value: format!("{s:?}"),
                    accepted: "a tag key may not be empty".into(),
                });
            }
            tags.insert_new(tag, s)
                .map_err(|source| ConfigError::Tags {
                    key: tag_key,
                    value: s.clone(),
                    source,
                })?;
        }
        Ok(tags)
    }

    /// `[[task]]` entries.
    fn tasks(&mut self, k: &'static str) -> Result<Vec<RawTask>, ConfigError> {
        const EXPECTED: &str = "an array of tables, written [[task]]";
        let Some(value) = self.get(k) else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = value else {
            return Err(self.wrong(k, value, EXPECTED));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Table(t) = item else {
                return Err(self.wrong(k, value, EXPECTED));
            };
            let mut task = Reader::new(format!("{}[{i}]", self.key(k)), t);
            out.push(task.task()?);
        }
        Ok(out)
    }

    fn task(&mut self) -> Result<RawTask, ConfigError> {
        const ARGV: &str = "an array of strings (argv), like [\"/usr/bin/collector\", \"--once\"]";
        let name = self.str("name")?.ok_or_else(|| ConfigError::Missing {
            key: self.key("name"),
            accepted: "every [[task]] needs a name, like name = \"mysql\"",
        })?;
        let command = match self.get("command") {
            None => {
                return Err(ConfigError::Missing {
                    key: self.key("command"),
                    accepted: "every [[task]] needs a command, like command = [\"/usr/bin/collector\"]",
                });
            }
            Some(v) => self.strings("command", v, ARGV)?,
        };
        let election = self.bool("election")?.map(|s| s.value);
        let namespace = self.str("namespace")?.map(str::to_owned);
        let mode = self
            .parsed("mode", values::parse_task_mode)?
            .map(|s| s.value);
        let grace: Option<Duration> = self
            .parsed("grace", values::parse_duration)?
            .map(|s| s.value);
        let tags = self.tags("tags")?;
        let task = RawTask {
            key: self.path.clone(),
            name: name.to_owned(),
            command,
            election,
            namespace,
            mode,
            grace,
            tags,
        };
        self.finish_ref()?;
        Ok(task)
    }

    fn finish(self) -> Result<(), ConfigError> {
        self.finish_ref()
    }

    /// Fails on the first key, in key order, that nobody asked for.
    fn finish_ref(&self) -> Result<(), ConfigError> {
        let Some(unknown) = self
            .table
            .keys()
            .find(|k| !self.known.contains(&k.as_str()))
        else {
            return Ok(());
        };
        Err(ConfigError::UnknownKey {
            key: self.key(unknown),
            suggestion: self.suggest(unknown),
            accepted: self.known.iter().map(|k| (*k).to_owned()).collect(),
        })
    }

    fn suggest(&self, unknown: &str) -> Option<String> {
        if self.path.is_empty()
            && let Some((_, to)) = LEGACY_KEYS.iter().find(|(from, _)| *from == unknown)
        {
            return Some((*to).to_owned());
        }
        if let Some(near) = closest(unknown, self.known.iter().copied()) {
            return Some(self.key(near));
        }
        ALL_KEYS
            .iter()
            .find(|k| k.rsplit('.').next() == Some(unknown))
            .map(|k| (*k).to_owned())
    }
}
