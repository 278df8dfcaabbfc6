//! Property tests: no parser panics on any input, and the printed forms round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use leasehold_policy::config::{Config, Sources, values};
use leasehold_policy::go_duration::go_duration;
use leasehold_policy::identity::{Identity, node_of};
use leasehold_policy::lease_name::{LeaseKind, LeaseName, LeasePrefix, is_dns1123_label};
use leasehold_policy::tags::Tags;
use proptest::prelude::*;

const VARS: &[&str] = &[
    "ENV_ENABLE_ELECTION",
    "ENV_NAMESPACE",
    "ENV_ELECTION_NODE_WHITELIST",
    "ENV_ENABLE_ELECTION_NAMESPACE_TAG",
    "ENV_GLOBAL_ELECTION_TAGS",
    "ENV_GLOBAL_ENV_TAGS",
    "ENV_GLOBAL_HOST_TAGS",
    "ENV_GLOBAL_TAGS",
    "ENV_CLUSTER_NAME_K8S",
    "LEASEHOLD_LEASE_NAMESPACE",
    "LEASEHOLD_LEASE_PREFIX",
    "LEASEHOLD_LEASE_DURATION",
    "LEASEHOLD_RENEW_DEADLINE",
    "LEASEHOLD_LEASE_RENEW_DEADLINE",
    "LEASEHOLD_RETRY_PERIOD",
    "LEASEHOLD_TAKEOVER_SPREAD",
    "LEASEHOLD_TASK_SETTLE",
    "LEASEHOLD_MEMBER_DURATION",
    "LEASEHOLD_MEMBER_RENEW",
    "LEASEHOLD_LISTEN",
    "LEASEHOLD_PROBE_LISTEN",
    "LEASEHOLD_API_TOKEN",
    "LEASEHOLD_LOG_FORMAT",
    "POD_NAMESPACE",
];

const TOML_KEYS: &[&str] = &[
    "[election]\nenable",
    "[election]\nnamespace",
    "[election]\nnode_whitelist",
    "[election]\nenable_namespace_tag",
    "[election.tags]\nk",
    "[global_host_tags]\nhost",
    "[lease]\nduration",
    "[lease]\nrenew_deadline",
    "[lease]\nretry_period",
    "[lease]\nprefix",
    "[lease]\nnamespace",
    "[api]\nlisten",
    "[api]\ntoken",
    "[[task]]\nname",
    "[[task]]\ncommand",
    "[[task]]\ngrace",
    "[[task]]\nmode",
    "[lease]\ndurration",
];

/// Values that look like what people write, plus arbitrary text.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_owned()),
        Just("15s".to_owned()),
        Just("500ms".to_owned()),
        Just("a=b,c=d".to_owned()),
        Just("[\"x\"]".to_owned()),
        Just("127.0.0.1:0".to_owned()),
        "[a-z0-9=,:\\[\\]\". -]{0,12}",
        any::<String>(),
    ]
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_owned()),
        Just("3".to_owned()),
        Just("\"15s\"".to_owned()),
        Just("[\"x\", \"y\"]".to_owned()),
        Just("{ a = \"b\" }".to_owned()),
        "\"[a-z0-9=, ]{0,8}\"",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn value_parsers_never_panic(s in any::<String>()) {
        let _ = values::parse_bool("K", &s);
        let _ = values::parse_duration("K", &s);
        let _ = values::parse_lease_seconds("K", &s);
        let _ = values::parse_whitelist("K", &s);
        let _ = values::parse_tags("K", &s);
        let _ = values::parse_addr("K", &s);
        let _ = values::parse_log_format("K", &s);
        let _ = values::parse_task_mode("K", &s);
        let _ = values::parse_namespaces("K", &s);
        let _ = values::parse_kube_namespace("K", &s);
        let _ = values::parse_prefix("K", &s);
        let _ = values::parse_token("K", &s);
        let _ = Tags::parse_datakit(&s);
        let _ = Tags::parse_env(&s);
        let _ = Identity::parse(&s);
        let _ = node_of(&s);
        let _ = LeasePrefix::new(&s);
    }

    #[test]
    fn config_from_any_env_never_panics(
        vars in proptest::collection::btree_map(proptest::sample::select(VARS), value(), 0..8)
    ) {
        let env: BTreeMap<String, String> =
            vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let _ = Config::load(&Sources { env: &env, toml: None, service_account_namespace: None });
    }

    #[test]
    fn config_from_any_toml_never_panics(text in any::<String>()) {
        let env = BTreeMap::new();
        let _ = Config::load(&Sources { env: &env, toml: Some(&text), service_account_namespace: Some("x") });
    }

    #[test]
    fn config_from_toml_like_text_never_panics(
        entries in proptest::collection::vec((proptest::sample::select(TOML_KEYS), toml_value()), 0..6)
    ) {
        let text: String = entries.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        let env = BTreeMap::new();
        let _ = Config::load(&Sources { env: &env, toml: Some(&text), service_account_namespace: None });
    }

    #[test]
    fn env_tags_round_trip(map in proptest::collection::btree_map(".{1,8}", ".{1,8}", 0..6)) {
        let tags: Tags = map.into_iter().collect();
        prop_assert_eq!(Tags::parse_env(&tags.to_env_string()).unwrap(), tags);
    }

    #[test]
    fn identities_round_trip(node in "[a-z0-9._-]{1,20}", instance in "[a-f0-9-]{1,36}") {
        let id = Identity::new(&node, &instance).unwrap();
        prop_assert_eq!(Identity::parse(&id.to_string()).unwrap(), id.clone());
        let holder = id.to_string();
        prop_assert_eq!(node_of(&holder), node.as_str());
    }

    #[test]
    fn lease_names_are_always_labels(raw in any::<String>(), prefix in "([a-z0-9][a-z0-9-]{0,20})?") {
        let prefix = LeasePrefix::new(&prefix).unwrap();
        for kind in LeaseKind::ALL {
            let n = LeaseName::build(kind, &prefix, &raw);
            prop_assert!(is_dns1123_label(n.name()), "{:?} -> {:?}", raw, n.name());
            prop_assert_eq!(n.raw(), raw.as_str());
            prop_assert_eq!(LeaseName::build(kind, &prefix, &raw), n.clone());
            prop_assert!(n.check_existing(&n.labels(), &n.annotations()).is_ok());
        }
    }

    #[test]
    fn go_duration_never_panics_and_ends_in_a_unit(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let s = go_duration(Duration::new(secs, nanos));
        prop_assert!(s.ends_with('s'));
    }
}
