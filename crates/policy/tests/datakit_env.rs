//! DataKit compatibility: each DataKit variable with the examples DataKit documents (its
//! DaemonSet manifest, election and env-var pages), and where leasehold is deliberately
//! stricter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use leasehold_policy::config::{Config, ConfigError, Sources};
use leasehold_policy::tags::Tags;
use leasehold_policy::{Eligibility, identity};

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = env(pairs);
    Config::load(&Sources {
        env: &env,
        toml: None,
        service_account_namespace: None,
    })
}

/// (variable, value, expected tags).
type TagCase = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs.iter().copied().collect()
}

#[test]
fn enable_election_values() {
    // DataKit's manifests say `enable`, its docs `on`; leasehold also takes the usual words.
    let table: &[(&str, Option<bool>)] = &[
        ("enable", Some(true)),
        ("on", Some(true)),
        ("true", Some(true)),
        ("1", Some(true)),
        ("yes", Some(true)),
        ("TRUE", Some(true)),
        ("", Some(false)), // empty = unset, as in DataKit
        // DataKit treats any non-empty value as true; leasehold reads the word.
        ("false", Some(false)),
        ("off", Some(false)),
        ("disable", Some(false)),
        ("0", Some(false)),
        ("no", Some(false)),
        // Anything else is an error here (DataKit would enable election).
        ("enabled", None),
        ("y", None),
        ("2", None),
    ];
    for (value, want) in table {
        let got = load(&[("ENV_ENABLE_ELECTION", value)]);
        match want {
            Some(b) => assert_eq!(got.unwrap().election.enabled, *b, "{value:?}"),
            None => assert_eq!(
                got.unwrap_err(),
                ConfigError::Bool {
                    key: "ENV_ENABLE_ELECTION".into(),
                    value: (*value).into()
                },
                "{value:?}"
            ),
        }
    }
}

#[test]
fn namespace_values() {
    let table: &[(&str, &[&str])] = &[
        ("dk-namespace-example", &["dk-namespace-example"]),
        ("k8s-containerd", &["k8s-containerd"]),
        ("", &["default"]),
        ("default", &["default"]),
        ("a,b", &["a", "b"]),
        (" a , b ,", &["a", "b"]),
    ];
    for (value, want) in table {
        let c = load(&[("ENV_NAMESPACE", value)]).unwrap();
        assert_eq!(c.election.namespaces, *want, "{value:?}");
    }
}

#[test]
fn whitelist_values() {
    let table: &[(&str, &[&str])] = &[
        (r#"["node-a", "node-b"]"#, &["node-a", "node-b"]),
        ("node-a,node-b", &["node-a", "node-b"]),
        ("node-a, node-b", &["node-a", "node-b"]),
        ("[]", &[]),
        ("", &[]),
    ];
    for (value, want) in table {
        let c = load(&[
            ("ENV_ENABLE_ELECTION", "on"),
            ("ENV_ELECTION_NODE_WHITELIST", value),
        ])
        .unwrap();
        assert_eq!(c.election.node_whitelist.entries(), *want, "{value:?}");
    }
    let c = load(&[
        ("ENV_ENABLE_ELECTION", "on"),
        ("ENV_ELECTION_NODE_WHITELIST", r#"["node-a", "node-b"]"#),
    ])
    .unwrap();
    assert_eq!(c.eligibility("node-a"), Eligibility::Eligible);
    assert_eq!(c.eligibility("node-c"), Eligibility::Banned);
    let c = load(&[("ENV_ELECTION_NODE_WHITELIST", "node-a")]).unwrap();
    assert_eq!(c.eligibility("node-c"), Eligibility::Disabled);
}

#[test]
fn namespace_tag_values() {
    for (value, want) in [
        ("true", true),
        ("on", true),
        ("enable", true),
        ("false", false),
    ] {
        let c = load(&[
            ("ENV_ENABLE_ELECTION", "enable"),
            ("ENV_ENABLE_ELECTION_NAMESPACE_TAG", value),
        ])
        .unwrap();
        assert_eq!(c.election.namespace_tag, want, "{value:?}");
    }
    let err = load(&[("ENV_ENABLE_ELECTION_NAMESPACE_TAG", "x")]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ENV_ENABLE_ELECTION_NAMESPACE_TAG=\"x\" is not a boolean")
    );
}

#[test]
fn election_tag_values() {
    let table: &[TagCase] = &[
        (
            "ENV_GLOBAL_ELECTION_TAGS",
            "tag1=val,tag2=val2",
            &[("tag1", "val"), ("tag2", "val2")],
        ),
        (
            "ENV_GLOBAL_ELECTION_TAGS",
            "cluster_name_k8s=k8s-prod",
            &[("cluster_name_k8s", "k8s-prod")],
        ),
        // The deprecated name still works (DataKit's manifests use it).
        (
            "ENV_GLOBAL_ENV_TAGS",
            "cluster_name_k8s=k8s-prod",
            &[("cluster_name_k8s", "k8s-prod")],
        ),
    ];
    for (var, value, want) in table {
        let c = load(&[(var, value)]).unwrap();
        assert_eq!(c.election.tags, tags(want), "{var}={value}");
    }
    // The current name wins over the deprecated one, as in DataKit.
    let c = load(&[
        ("ENV_GLOBAL_ELECTION_TAGS", "a=1"),
        ("ENV_GLOBAL_ENV_TAGS", "b=2"),
    ])
    .unwrap();
    assert_eq!(c.election.tags, tags(&[("a", "1")]));
    // Malformed parts are errors, not dropped.
    let err = load(&[("ENV_GLOBAL_ELECTION_TAGS", "tag1=val,tag2")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ENV_GLOBAL_ELECTION_TAGS=\"tag1=val,tag2\": part \"tag2\" has no '='; write \
         comma-separated key=value pairs like project=web,cluster=prod"
    );
}

#[test]
fn host_tag_values() {
    let table: &[TagCase] = &[
        (
            "ENV_GLOBAL_HOST_TAGS",
            "tag1=val,tag2=val2",
            &[("tag1", "val"), ("tag2", "val2")],
        ),
        (
            "ENV_GLOBAL_HOST_TAGS",
            "host=__datakit_hostname,host_ip=__datakit_ip,cluster_name_k8s=k8s-prod",
            &[
                ("host", "__datakit_hostname"),
                ("host_ip", "__datakit_ip"),
                ("cluster_name_k8s", "k8s-prod"),
            ],
        ),
        ("ENV_GLOBAL_TAGS", "a=b", &[("a", "b")]),
    ];
    for (var, value, want) in table {
        let c = load(&[(var, value)]).unwrap();
        assert_eq!(c.global_host_tags, tags(want), "{var}={value}");
    }
    let err = load(&[("ENV_GLOBAL_HOST_TAGS", "a=1=2")]).unwrap_err();
    assert!(matches!(err, ConfigError::Tags { ref key, .. } if key == "ENV_GLOBAL_HOST_TAGS"));
}

#[test]
fn cluster_name_goes_to_both_tag_sets_unless_set() {
    let c = load(&[("ENV_CLUSTER_NAME_K8S", "prod")]).unwrap();
    assert_eq!(c.election.tags, tags(&[("cluster_name_k8s", "prod")]));
    assert_eq!(c.global_host_tags, tags(&[("cluster_name_k8s", "prod")]));
    let c = load(&[
        ("ENV_CLUSTER_NAME_K8S", "prod"),
        ("ENV_GLOBAL_ELECTION_TAGS", "cluster_name_k8s=explicit"),
    ])
    .unwrap();
    assert_eq!(c.election.tags, tags(&[("cluster_name_k8s", "explicit")]));
    assert_eq!(c.global_host_tags, tags(&[("cluster_name_k8s", "prod")]));
}

#[test]
fn node_name_variables() {
    // DataKit's manifest sets ENV_K8S_NODE_NAME from spec.nodeName.
    let table: &[(&[(&str, &str)], &str)] = &[
        (&[("ENV_K8S_NODE_NAME", "node-1")], "node-1"),
        (
            &[
                ("ENV_K8S_CLUSTER_NODE_NAME", "prod-node-1"),
                ("ENV_K8S_NODE_NAME", "node-1"),
            ],
            "prod-node-1",
        ),
        (&[("NODE_NAME", "legacy")], "legacy"),
        (&[("ENV_HOSTNAME", "override")], "override"),
        (&[], "MacBook-Pro.local"),
    ];
    for (vars, want) in table {
        let r = identity::resolve(&env(vars), "MacBook-Pro.local", "nonce").unwrap();
        assert_eq!(r.identity.node(), *want);
    }
}

#[test]
fn datakit_daemonset_manifest_loads() {
    // The env block of DataKit's documented DaemonSet, plus the downward-API variables.
    let c = load(&[
        ("HOST_IP", "10.0.0.7"),
        ("ENV_K8S_NODE_NAME", "node-1"),
        ("ENV_DATAWAY", "https://openway.guance.com?token=XXXXXX"),
        (
            "ENV_GLOBAL_HOST_TAGS",
            "host=__datakit_hostname,host_ip=__datakit_ip,cluster_name_k8s=k8s-prod",
        ),
        (
            "ENV_DEFAULT_ENABLED_INPUTS",
            "cpu,disk,diskio,mem,swap,system,hostobject,net,host_processes,container",
        ),
        ("ENV_ENABLE_ELECTION", "enable"),
        ("ENV_GLOBAL_ENV_TAGS", "cluster_name_k8s=k8s-prod"),
        ("ENV_HTTP_LISTEN", "0.0.0.0:9529"),
        ("ENV_NAMESPACE", "k8s-containerd"),
        ("POD_NAMESPACE", "datakit"),
    ])
    .unwrap();
    assert!(c.election.enabled);
    assert_eq!(c.election.namespaces, ["k8s-containerd"]);
    assert_eq!(c.lease.namespace, "datakit");
    assert_eq!(c.election.tags, tags(&[("cluster_name_k8s", "k8s-prod")]));
    assert_eq!(c.election_leases()[0].name(), "leasehold-k8s-containerd");
}
