//! Configuration rules and error messages: precedence, the TOML file, validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use leasehold_policy::config::env::{
    UnknownVar, config_path, startup_warnings, unknown_leasehold_vars,
};
use leasehold_policy::config::{
    ApiConfig, Config, ConfigError, LeaseConfig, LogFormat, Sources, TaskMode, Timing,
};
use leasehold_policy::tags::Tags;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_with(
    pairs: &[(&str, &str)],
    toml: Option<&str>,
    sa: Option<&str>,
) -> Result<Config, ConfigError> {
    let env = env(pairs);
    Config::load(&Sources {
        env: &env,
        toml,
        service_account_namespace: sa,
    })
}

fn load(pairs: &[(&str, &str)], toml: &str) -> Result<Config, ConfigError> {
    load_with(pairs, Some(toml), None)
}

fn err(pairs: &[(&str, &str)], toml: &str) -> String {
    load(pairs, toml).unwrap_err().to_string()
}

#[test]
fn defaults_when_nothing_is_set() {
    let c = load_with(&[], None, None).unwrap();
    assert_eq!(c, Config::default());
    assert!(!c.election.enabled);
    assert_eq!(c.election.namespaces, ["default"]);
    assert_eq!(c.lease.namespace, "default");
    assert_eq!(c.lease.prefix.as_str(), "leasehold-");
    assert_eq!(c.lease.timing, Timing::default());
    assert_eq!(c.lease.timing.lease_duration, Duration::from_secs(15));
    assert_eq!(c.lease.timing.renew_deadline, Duration::from_secs(10));
    assert_eq!(c.lease.timing.retry_period, Duration::from_secs(2));
    assert_eq!(c.lease.takeover_spread, Duration::from_secs(2));
    assert_eq!(c.lease.member.lease_duration, Duration::from_secs(60));
    assert_eq!(c.lease.member.renew_period, Duration::from_secs(20));
    assert_eq!(c.api.listen.to_string(), "127.0.0.1:9530");
    assert_eq!(c.api.probe_listen.to_string(), "0.0.0.0:9531");
    assert_eq!(c.api, ApiConfig::default());
    assert_eq!(c.api.log_format, LogFormat::Text);
    assert_eq!(c.lease, LeaseConfig::default());
}

const FULL: &str = r#"
[election]
  enable = true
  namespace = "default"
  enable_namespace_tag = true
  node_whitelist = ["node-a", "node-b"]
  [election.tags]
    project = "my-project"
    cluster = "my-cluster"

[global_host_tags]
  ip = "__datakit_ip"
  host = "__datakit_hostname"

[lease]
  namespace = "monitoring"
  prefix = "lh-"
  duration = "60s"
  renew_deadline = "40s"
  retry_period = "10s"
  takeover_spread = "5s"
  settle = "30s"
  member_duration = "90s"
  member_renew = "30s"

[api]
  listen = "127.0.0.1:19530"
  probe_listen = "0.0.0.0:19531"
  token = "s3cret"
  log_format = "json"

[[task]]
  name = "mysql"
  command = ["/usr/bin/collector", "--mysql"]
  grace = "4s"
  [task.tags]
    host = "real-mysql-instance-name"

[[task]]
  name = "events"
  command = ["/usr/bin/events"]
  mode = "spread"

[[task]]
  name = "logs"
  command = ["/usr/bin/logs"]
  election = false
"#;

#[test]
fn full_file_loads() {
    let c = load(&[], FULL).unwrap();
    assert!(c.election.enabled);
    assert!(c.election.namespace_tag);
    assert_eq!(c.election.node_whitelist.entries(), ["node-a", "node-b"]);
    assert_eq!(c.election.tags.get("project"), Some("my-project"));
    assert_eq!(c.global_host_tags.get("host"), Some("__datakit_hostname"));
    assert_eq!(c.lease.namespace, "monitoring");
    assert_eq!(c.lease.prefix.as_str(), "lh-");
    assert_eq!(c.lease.timing.lease_duration, Duration::from_secs(60));
    assert_eq!(c.lease.takeover_spread, Duration::from_secs(5));
    assert_eq!(c.lease.settle, Duration::from_secs(30));
    assert_eq!(c.lease.member.lease_duration, Duration::from_secs(90));
    assert_eq!(c.api.token.as_deref(), Some("s3cret"));
    assert_eq!(c.api.log_format, LogFormat::Json);
    assert_eq!(c.tasks.len(), 3);
    let mysql = &c.tasks[0];
    assert_eq!(mysql.command, ["/usr/bin/collector", "--mysql"]);
    assert!(mysql.election);
    assert_eq!(mysql.namespace, "default");
    assert_eq!(mysql.mode, TaskMode::Leader);
    assert_eq!(mysql.grace, Duration::from_secs(4));
    assert_eq!(mysql.tags.get("host"), Some("real-mysql-instance-name"));
    assert_eq!(c.tasks[1].mode, TaskMode::Spread);
    assert_eq!(c.tasks[1].grace, Duration::from_secs(3));
    assert!(!c.tasks[2].election);
    assert_eq!(c.task_leases()[0].name(), "lh-task-events");
    assert_eq!(c.election_leases()[0].name(), "lh-default");
}

#[test]
fn env_overrides_toml_overrides_defaults() {
    let toml = r#"
[election]
enable = false
namespace = "from-toml"
[election.tags]
a = "toml"
b = "toml"
[lease]
duration = "20s"
renew_deadline = "12s"
"#;
    let c = load(
        &[
            ("ENV_ENABLE_ELECTION", "true"),
            ("ENV_GLOBAL_ELECTION_TAGS", "b=env,c=env"),
            ("LEASEHOLD_LEASE_DURATION", "30s"),
        ],
        toml,
    )
    .unwrap();
    assert!(c.election.enabled); // env
    assert_eq!(c.election.namespaces, ["from-toml"]); // toml
    assert_eq!(c.lease.timing.lease_duration, Duration::from_secs(30)); // env
    assert_eq!(c.lease.timing.renew_deadline, Duration::from_secs(12)); // toml
    assert_eq!(c.lease.timing.retry_period, Duration::from_secs(2)); // default
    // Tags merge key by key.
    let want: Tags = [("a", "toml"), ("b", "env"), ("c", "env")]
        .into_iter()
        .collect();
    assert_eq!(c.election.tags, want);
}

#[test]
fn leasehold_env_vars() {
    let c = load_with(
        &[
            ("LEASEHOLD_LEASE_PREFIX", "dk-"),
            ("LEASEHOLD_LEASE_DURATION", "1m"),
            ("LEASEHOLD_RENEW_DEADLINE", "40s"),
            ("LEASEHOLD_RETRY_PERIOD", "10s"),
            ("LEASEHOLD_TAKEOVER_SPREAD", "1s"),
            ("LEASEHOLD_TASK_SETTLE", "1m30s"),
            ("LEASEHOLD_MEMBER_DURATION", "2m"),
            ("LEASEHOLD_MEMBER_RENEW", "30s"),
            ("LEASEHOLD_LISTEN", "0.0.0.0:9530"),
            ("LEASEHOLD_PROBE_LISTEN", "[::]:9531"),
            ("LEASEHOLD_API_TOKEN", "tok"),
            ("LEASEHOLD_LOG_FORMAT", "json"),
        ],
        None,
        None,
    )
    .unwrap();
    assert_eq!(c.lease.prefix.as_str(), "dk-");
    assert_eq!(c.lease.timing.lease_duration, Duration::from_secs(60));
    assert_eq!(c.lease.timing.renew_deadline, Duration::from_secs(40));
    assert_eq!(c.lease.timing.retry_period, Duration::from_secs(10));
    assert_eq!(c.lease.takeover_spread, Duration::from_secs(1));
    assert_eq!(c.lease.settle, Duration::from_secs(90));
    assert_eq!(c.lease.member.lease_duration, Duration::from_secs(120));
    assert_eq!(c.lease.member.renew_period, Duration::from_secs(30));
    assert_eq!(c.api.listen.to_string(), "0.0.0.0:9530");
    assert_eq!(c.api.probe_listen.to_string(), "[::]:9531");
    assert_eq!(c.api.token.as_deref(), Some("tok"));
    assert_eq!(c.api.log_format, LogFormat::Json);
}

#[test]
fn sub_second_timings_are_accepted_for_rd_and_rp() {
    let c = load_with(
        &[
            ("LEASEHOLD_LEASE_DURATION", "2s"),
            ("LEASEHOLD_RENEW_DEADLINE", "1500ms"),
            ("LEASEHOLD_RETRY_PERIOD", "500ms"),
        ],
        None,
        None,
    );
    // Default task grace doesn't matter without tasks.
    let c = c.unwrap();
    assert_eq!(c.lease.timing.retry_period, Duration::from_millis(500));
    // The takeover spread follows RP when unset.
    assert_eq!(c.lease.takeover_spread, Duration::from_millis(500));
}

#[test]
fn timing_spellings_and_conflict() {
    let c = load_with(
        &[
            ("LEASEHOLD_LEASE_RENEW_DEADLINE", "9s"),
            ("LEASEHOLD_LEASE_RETRY_PERIOD", "1s"),
        ],
        None,
        None,
    )
    .unwrap();
    assert_eq!(c.lease.timing.renew_deadline, Duration::from_secs(9));
    assert_eq!(c.lease.timing.retry_period, Duration::from_secs(1));
    let e = load_with(
        &[
            ("LEASEHOLD_RENEW_DEADLINE", "9s"),
            ("LEASEHOLD_LEASE_RENEW_DEADLINE", "8s"),
        ],
        None,
        None,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "LEASEHOLD_LEASE_RENEW_DEADLINE=\"8s\" is not accepted: it is another spelling of \
         LEASEHOLD_RENEW_DEADLINE, which is also set; set only one"
    );
}

#[test]
fn lease_namespace_resolution_order() {
    let sa = Some("from-sa");
    let c = |pairs: &[(&str, &str)], toml: Option<&str>, sa: Option<&str>| {
        load_with(pairs, toml, sa).unwrap().lease.namespace
    };
    let toml = Some("[lease]\nnamespace = \"from-toml\"\n");
    let all = [
        ("LEASEHOLD_LEASE_NAMESPACE", "from-env"),
        ("POD_NAMESPACE", "from-pod"),
    ];
    assert_eq!(c(&all, toml, sa), "from-env");
    assert_eq!(c(&all[1..], toml, sa), "from-toml");
    assert_eq!(c(&all[1..], None, sa), "from-pod");
    assert_eq!(c(&[], None, sa), "from-sa");
    assert_eq!(c(&[], None, None), "default");
    let e = load_with(&[], None, Some("Bad_NS")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the service-account namespace=\"Bad_NS\" is not a Kubernetes namespace; use a \
         DNS-1123 label (a-z, 0-9 and '-', at most 63 characters, starting and ending with a \
         letter or digit)"
    );
    let e = load_with(&[("POD_NAMESPACE", "x y")], None, None).unwrap_err();
    assert!(matches!(e, ConfigError::KubeNamespace { ref key, .. } if key == "POD_NAMESPACE"));
}

#[test]
fn timing_rules() {
    let e = |pairs: &[(&str, &str)]| load_with(pairs, None, None).unwrap_err().to_string();
    assert_eq!(
        e(&[("LEASEHOLD_RENEW_DEADLINE", "15s")]),
        "LEASEHOLD_RENEW_DEADLINE=15s is not accepted: it must be less than default \
         lease.duration=15s, so a leader stops acting before others may take its Lease \
         (LD > RD > 1.2·RP > 0)"
    );
    assert_eq!(
        e(&[("LEASEHOLD_RETRY_PERIOD", "9s")]),
        "default lease.renew_deadline=10s is not accepted: it must be more than 1.2 × \
         LEASEHOLD_RETRY_PERIOD=9s = 10.8s, so a failed renew can be retried before the \
         deadline (LD > RD > 1.2·RP > 0)"
    );
    // Exactly 1.2·RP is not enough.
    assert!(
        load_with(
            &[
                ("LEASEHOLD_RENEW_DEADLINE", "12s"),
                ("LEASEHOLD_RETRY_PERIOD", "10s"),
                ("LEASEHOLD_LEASE_DURATION", "20s")
            ],
            None,
            None
        )
        .is_err()
    );
    assert_eq!(
        e(&[("LEASEHOLD_RETRY_PERIOD", "0s")]),
        "LEASEHOLD_RETRY_PERIOD=0s is not accepted: the retry period must be greater than 0 \
         (LD > RD > 1.2·RP > 0)"
    );
    assert_eq!(
        e(&[("LEASEHOLD_LEASE_DURATION", "15.5s")]),
        "LEASEHOLD_LEASE_DURATION=\"15.5s\" must be a whole number of seconds, at least 1s \
         (leaseDurationSeconds is an integer); write it like 15s or 1m"
    );
    assert_eq!(
        e(&[("LEASEHOLD_LEASE_DURATION", "15500ms")]),
        "LEASEHOLD_LEASE_DURATION=\"15500ms\" must be a whole number of seconds, at least 1s \
         (leaseDurationSeconds is an integer); write it like 15s or 1m"
    );
}

#[test]
fn takeover_and_member_rules() {
    let e = |pairs: &[(&str, &str)]| load_with(pairs, None, None).unwrap_err().to_string();
    assert_eq!(
        e(&[("LEASEHOLD_TAKEOVER_SPREAD", "15s")]),
        "LEASEHOLD_TAKEOVER_SPREAD=15s is not accepted: it must be less than default \
         lease.duration=15s, or a staggered takeover would outlast a lease term"
    );
    assert_eq!(
        e(&[("LEASEHOLD_MEMBER_RENEW", "31s")]),
        "LEASEHOLD_MEMBER_RENEW=31s is not accepted: it must be greater than 0 and at most \
         half of default lease.member_duration=1m0s, so one lost renew never drops a member"
    );
    assert!(
        e(&[("LEASEHOLD_MEMBER_RENEW", "0s")])
            .starts_with("LEASEHOLD_MEMBER_RENEW=0s is not accepted")
    );
    assert!(
        e(&[("LEASEHOLD_MEMBER_DURATION", "500ms")])
            .starts_with("LEASEHOLD_MEMBER_DURATION=\"500ms\" must be a whole number of seconds")
    );
    // Exactly half is fine.
    assert!(load_with(&[("LEASEHOLD_MEMBER_RENEW", "30s")], None, None).is_ok());
}

#[test]
fn listener_rules() {
    let e = |pairs: &[(&str, &str)]| load_with(pairs, None, None).unwrap_err().to_string();
    assert_eq!(
        e(&[("LEASEHOLD_LISTEN", "0.0.0.0:9530")]),
        "LEASEHOLD_LISTEN=0.0.0.0:9530 is not accepted: the control API is off loopback, so \
         its mutating endpoints need a token: set LEASEHOLD_API_TOKEN (api.token), or listen \
         on 127.0.0.1"
    );
    assert_eq!(
        e(&[("LEASEHOLD_PROBE_LISTEN", "127.0.0.1:9530")]),
        "LEASEHOLD_PROBE_LISTEN=127.0.0.1:9530 is not accepted: it must differ from default \
         api.listen=127.0.0.1:9530: probes and the control API need separate listeners"
    );
    // Port 0 (tests) may repeat: each gets its own ephemeral port.
    assert!(
        load_with(
            &[
                ("LEASEHOLD_LISTEN", "127.0.0.1:0"),
                ("LEASEHOLD_PROBE_LISTEN", "127.0.0.1:0")
            ],
            None,
            None
        )
        .is_ok()
    );
    assert!(e(&[("LEASEHOLD_API_TOKEN", "a b")]).contains("not shown"));
    assert!(!e(&[("LEASEHOLD_API_TOKEN", "hunter2 pass")]).contains("hunter2"));
}

#[test]
fn unknown_keys_suggest_the_closest() {
    assert_eq!(
        err(&[], "[lease]\nrenew_dedline = \"5s\"\n"),
        "unknown key `lease.renew_dedline` in the configuration file; did you mean \
         `lease.renew_deadline`?; accepted here: namespace, prefix, duration, renew_deadline, \
         retry_period, takeover_spread, settle, member_duration, member_renew"
    );
    assert_eq!(
        err(&[], "[lease]\nlisten = \"127.0.0.1:1\"\n"),
        "unknown key `lease.listen` in the configuration file; did you mean `api.listen`?; \
         accepted here: namespace, prefix, duration, renew_deadline, retry_period, \
         takeover_spread, settle, member_duration, member_renew"
    );
    assert_eq!(
        err(&[], "enable_election = true\n"),
        "unknown key `enable_election` in the configuration file; did you mean \
         `election.enable`?; accepted here: election, global_host_tags, lease, api, task"
    );
    assert_eq!(
        err(&[], "[dataway]\nurls = []\n"),
        "unknown key `dataway` in the configuration file; accepted here: election, \
         global_host_tags, lease, api, task"
    );
    assert_eq!(
        err(&[], "[election]\nenabled = true\n"),
        "unknown key `election.enabled` in the configuration file; did you mean \
         `election.enable`?; accepted here: enable, namespace, enable_namespace_tag, \
         node_whitelist, tags"
    );
    assert_eq!(
        err(
            &[],
            "[[task]]\nname = \"a\"\ncommand = [\"x\"]\ngrace_period = \"1s\"\n"
        ),
        "unknown key `task[0].grace_period` in the configuration file; did you mean \
         `task[0].grace`?; accepted here: name, command, election, namespace, mode, grace, tags"
    );
}

#[test]
fn wrong_types_and_missing_keys() {
    assert_eq!(
        err(&[], "[election]\nenable = \"yes\"\n"),
        "`election.enable` = \"yes\" has the wrong type; expected a boolean (true or false)"
    );
    assert_eq!(
        err(&[], "[lease]\nduration = 15\n"),
        "`lease.duration` = 15 has the wrong type; expected a string"
    );
    assert_eq!(
        err(&[], "election = 1\n"),
        "`election` = 1 has the wrong type; expected a table"
    );
    assert_eq!(
        err(&[], "[election]\nnamespace = [1]\n"),
        "`election.namespace` = [1] has the wrong type; expected a string or an array of strings"
    );
    assert_eq!(
        err(&[], "[election]\nnode_whitelist = 3\n"),
        "`election.node_whitelist` = 3 has the wrong type; expected an array of node names, \
         like [\"node-a\", \"node-b\"]"
    );
    assert_eq!(
        err(&[], "[election.tags]\nport = 3306\n"),
        "`election.tags.port` = 3306 has the wrong type; expected a string"
    );
    assert_eq!(
        err(&[], "[election]\ntags = \"a=b\"\n"),
        "`election.tags` = \"a=b\" has the wrong type; expected a table of string values, like \
         project = \"web\""
    );
    assert_eq!(
        err(&[], "[task]\nname = \"a\"\n"),
        "`task` = { name = \"a\" } has the wrong type; expected an array of tables, written \
         [[task]]"
    );
    assert_eq!(
        err(&[], "[[task]]\ncommand = [\"x\"]\n"),
        "`task[0].name` is missing; every [[task]] needs a name, like name = \"mysql\""
    );
    assert_eq!(
        err(&[], "[[task]]\nname = \"a\"\n"),
        "`task[0].command` is missing; every [[task]] needs a command, like command = \
         [\"/usr/bin/collector\"]"
    );
    assert_eq!(
        err(&[], "[[task]]\nname = \"a\"\ncommand = \"/bin/x --y\"\n"),
        "`task[0].command` = \"/bin/x --y\" has the wrong type; expected an array of strings \
         (argv), like [\"/usr/bin/collector\", \"--once\"]"
    );
}

#[test]
fn toml_value_errors_name_the_key() {
    assert_eq!(
        err(&[], "[election.tags]\nproject = \"\"\n"),
        "election.tags.project=\"\": tag \"project\" has an empty value; write comma-separated \
         key=value pairs like project=web,cluster=prod"
    );
    assert_eq!(
        err(&[], "[election.tags]\n\" \" = \"x\"\n"),
        "election.tags. =\"x\" is not accepted: a tag key may not be empty"
    );
    assert_eq!(
        err(&[], "[api]\nlog_format = \"xml\"\n"),
        "api.log_format=\"xml\" is not a log format; accepted: text, json"
    );
    assert_eq!(
        err(&[], "[election]\nnamespace = [\"a\", \"a\"]\n"),
        "election.namespace=\"[\\\"a\\\", \\\"a\\\"]\" is not a list of election namespaces: \
         \"a\" is listed twice; write one name or a comma list like default,db"
    );
    let c = load(
        &[],
        "[election]\nnamespace = [\"a\", \"b\"]\nnode_whitelist = \"x,y\"\n",
    )
    .unwrap();
    assert_eq!(c.election.namespaces, ["a", "b"]);
    assert_eq!(c.election.node_whitelist.entries(), ["x", "y"]);
}

#[test]
fn syntax_errors() {
    let e = err(&[], "[election\n");
    assert!(
        e.starts_with("the configuration file is not valid TOML: "),
        "{e}"
    );
    assert!(e.contains("line 1"), "{e}");
    assert!(!e.contains('\n'));
}

fn task_err(task: &str) -> String {
    err(&[], &format!("[[task]]\n{task}\n"))
}

#[test]
fn task_rules() {
    assert_eq!(
        task_err("name = \"-bad\"\ncommand = [\"x\"]"),
        "task[0].name=\"-bad\" is not accepted: use 1-63 letters, digits, '.', '_' or '-', \
         starting with a letter or digit"
    );
    assert_eq!(
        task_err("name = \"a\"\ncommand = [\"x\"]\n[[task]]\nname = \"a\"\ncommand = [\"y\"]"),
        "task[1].name=\"a\" is not accepted: task names must be unique, and task[0] already \
         uses it"
    );
    assert_eq!(
        task_err("name = \"a\"\ncommand = []"),
        "task[0].command=[] is not accepted: the command needs at least a program, like \
         [\"/usr/bin/collector\"]"
    );
    assert_eq!(
        task_err("name = \"a\"\ncommand = [\"x\"]\nnamespace = \"other\""),
        "task[0].namespace=\"other\" is not accepted: it must be one of the election \
         namespaces [\"default\"] (from default election.namespace)"
    );
    assert_eq!(
        task_err("name = \"a\"\ncommand = [\"x\"]\nmode = \"spread\"\nelection = false"),
        "task[0].mode=\"spread\" is not accepted: a spread task is placed by task election, so \
         it needs election = true"
    );
    assert_eq!(
        task_err("name = \"a\"\ncommand = [\"x\"]\ngrace = \"5s\""),
        "task[0].grace=5s is not accepted: it must be less than default lease.duration − \
         default lease.renew_deadline = 5s, so the task is gone before another leader may \
         start it; set a shorter grace or a longer gap between LD and RD"
    );
    assert_eq!(
        task_err("name = \"a\"\ncommand = [\"x\"]\nmode = \"solo\""),
        "task[0].mode=\"solo\" is not a task mode; accepted: leader, spread"
    );
    assert!(
        task_err("name = \"a\"\ncommand = [\"x\"]\ngrace = \"soon\"")
            .starts_with("task[0].grace=\"soon\" is not a duration")
    );
    // The default grace follows the timing: the smaller of 3 s and half of LD − RD, so a default never makes
    // valid timing fail; a grace the user wrote that breaks the rule is still refused.
    let fast = [
        ("LEASEHOLD_LEASE_DURATION", "3s"),
        ("LEASEHOLD_RENEW_DEADLINE", "2s"),
        ("LEASEHOLD_RETRY_PERIOD", "500ms"),
    ];
    let c = load(&fast, "[[task]]\nname = \"a\"\ncommand = [\"x\"]\n").unwrap();
    assert_eq!(c.tasks[0].grace, Duration::from_millis(500));
    let c = load(&[], "[[task]]\nname = \"a\"\ncommand = [\"x\"]\n").unwrap();
    assert_eq!(
        c.tasks[0].grace,
        Duration::from_millis(2500),
        "half of LD − RD = 5 s under client-go timing"
    );
    let e = load(
        &fast,
        "[[task]]\nname = \"a\"\ncommand = [\"x\"]\ngrace = \"1s\"\n",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "task[0].grace=1s is not accepted: it must be less than \
         LEASEHOLD_LEASE_DURATION − LEASEHOLD_RENEW_DEADLINE = 1s, so the task is gone before \
         another leader may start it; set a shorter grace or a longer gap between LD and RD"
    );
    // A task without election is not bound by the grace window.
    assert!(
        load(
            &[],
            "[[task]]\nname = \"a\"\ncommand = [\"x\"]\nelection = false\ngrace = \"30s\"\n"
        )
        .is_ok()
    );
    // Task namespace may be any election namespace.
    let c = load(
        &[("ENV_NAMESPACE", "a,b")],
        "[[task]]\nname = \"t\"\ncommand = [\"x\"]\nnamespace = \"b\"\n[[task]]\nname = \"u\"\ncommand = [\"x\"]\n",
    )
    .unwrap();
    assert_eq!(c.tasks[0].namespace, "b");
    assert_eq!(c.tasks[1].namespace, "a");
}

#[test]
fn lease_name_collisions_are_refused_at_load() {
    let e = load(
        &[("ENV_NAMESPACE", "default,task-x")],
        "[[task]]\nname = \"x\"\ncommand = [\"x\"]\nmode = \"spread\"\n",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "task[0].name=\"x\" is not accepted: its Lease name \"leasehold-task-x\" is also the \
         Lease name of election \"task-x\"; rename one of them"
    );
    // A leader-mode task has no Lease of its own, so no collision.
    assert!(
        load(
            &[("ENV_NAMESPACE", "default,task-x")],
            "[[task]]\nname = \"x\"\ncommand = [\"x\"]\n",
        )
        .is_ok()
    );
}

#[test]
fn unknown_leasehold_vars_are_listed_with_suggestions() {
    let e = env(&[
        ("LEASEHOLD_LEASE_DURATON", "15s"),
        ("LEASEHOLD_TAGS", "a=b"),
        ("LEASEHOLD_SOMETHING_ELSE_ENTIRELY", "x"),
        ("LEASEHOLD_LISTEN", "127.0.0.1:1"),
        ("PATH", "/bin"),
    ]);
    assert_eq!(
        unknown_leasehold_vars(&e),
        [
            UnknownVar {
                name: "LEASEHOLD_LEASE_DURATON".into(),
                suggestion: Some("LEASEHOLD_LEASE_DURATION"),
            },
            UnknownVar {
                name: "LEASEHOLD_SOMETHING_ELSE_ENTIRELY".into(),
                suggestion: None,
            },
        ]
    );
}

#[test]
fn config_path_is_read_from_env() {
    assert_eq!(
        config_path(&env(&[("LEASEHOLD_CONFIG", " /etc/lh.toml ")])),
        Some("/etc/lh.toml")
    );
    assert_eq!(config_path(&env(&[("LEASEHOLD_CONFIG", "")])), None);
    assert_eq!(config_path(&env(&[])), None);
}

#[test]
fn tag_rules_from_config() {
    let c = load(&[("ENV_ENABLE_ELECTION", "on")], FULL).unwrap();
    let host = leasehold_policy::tags::resolve_placeholders(
        &c.global_host_tags,
        "node-a",
        Some("10.0.0.1"),
    )
    .unwrap();
    let rules = c.tag_rules(&host);
    let mysql = &c.tasks[0];
    let t = rules.for_task(mysql.election, &mysql.namespace, &mysql.tags);
    assert_eq!(t.get("host"), Some("real-mysql-instance-name"));
    assert_eq!(t.get("election_namespace"), Some("default"));
    assert_eq!(t.get("ip"), None);
    let logs = &c.tasks[2];
    let t = rules.for_task(logs.election, &logs.namespace, &logs.tags);
    assert_eq!(t.get("host"), Some("node-a"));
    assert_eq!(t.get("ip"), Some("10.0.0.1"));
    assert_eq!(t.get("project"), None);
}

#[test]
fn settle_defaults_to_twice_the_retry_period_and_follows_it() {
    let c = load_with(&[], None, None).unwrap();
    assert_eq!(c.lease.settle, Duration::from_secs(4));
    let c = load_with(&[("LEASEHOLD_RETRY_PERIOD", "3s")], None, None).unwrap();
    assert_eq!(c.lease.settle, Duration::from_secs(6));
    let c = load_with(&[("LEASEHOLD_TASK_SETTLE", "9s")], None, None).unwrap();
    assert_eq!(c.lease.settle, Duration::from_secs(9));
}

#[test]
fn startup_warnings_name_the_datakit_operator_and_typos_but_not_the_callers_own_variables() {
    let e = env(&[
        ("ENV_DATAKIT_OPERATOR", "datakit-operator.datakit.svc:443"),
        ("LEASEHOLD_LEASE_DURATON", "15s"),
        ("LEASEHOLD_OWN_HOOK", "1"),
        ("LEASEHOLD_LISTEN", "127.0.0.1:1"),
    ]);
    let w = startup_warnings(&e, &["LEASEHOLD_OWN_HOOK"]);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("ENV_DATAKIT_OPERATOR=\"datakit-operator.datakit.svc:443\" is ignored"),
        "{w:?}"
    );
    assert!(w[0].contains("mode = \"spread\""), "{w:?}");
    assert_eq!(
        w[1],
        "LEASEHOLD_LEASE_DURATON is not a leasehold variable and is ignored; did you mean LEASEHOLD_LEASE_DURATION?"
    );
    let empty = env(&[("ENV_DATAKIT_OPERATOR", "  ")]);
    assert!(
        startup_warnings(&empty, &[]).is_empty(),
        "an empty value is unset, as in DataKit"
    );
}
