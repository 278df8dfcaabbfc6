//! The stand-in and `leasehold-core` agree on Kubernetes names and labels. They are written apart on purpose: the
//! stand-in plays a real kube-apiserver, so it must not share the product's code, and `leasehold-core` is what the
//! product checks before it writes. Random names and labels, tilted towards the edges (case, dots, dashes, slashes,
//! the length limits), must be accepted by a create exactly when the core's rule accepts them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use leasehold_apiserver::Options;
use leasehold_core::names;
use proptest::prelude::*;
use serde_json::json;
use support::send;

/// Strings near the rules' edges: the characters they allow and a few they refuse, around both length limits.
fn arb_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-z0-9]{1,8}",
        2 => Just("-".to_string()),
        2 => Just(".".to_string()),
        1 => "[A-Z_/ ]",
        1 => Just("a".repeat(60)),
    ];
    prop_oneof![
        8 => prop::collection::vec(piece, 0..8).prop_map(|p| p.concat()),
        1 => (250usize..256).prop_map(|n| "a".repeat(n)),
        1 => (60usize..66).prop_map(|n| format!("a{}", "b".repeat(n))),
    ]
}

/// Label keys: a name, or a prefix and a name.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        arb_name(),
        (arb_name(), arb_name()).prop_map(|(prefix, name)| format!("{prefix}/{name}")),
    ]
}

/// Label values use the name's characters too, with `_` allowed inside.
fn arb_value() -> impl Strategy<Value = String> {
    prop_oneof![arb_name(), "[a-zA-Z0-9_.-]{0,70}"]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn a_create_is_accepted_exactly_when_the_core_rules_accept_it(
        names_to_try in prop::collection::vec(arb_name(), 12),
        labels in prop::collection::vec((arb_key(), arb_value()), 12),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let server = leasehold_apiserver::start(Options::default()).await.unwrap();
            let (base, token) = (server.url(), server.admin_token());
            let path = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
            let lease = |name: &str, labels: serde_json::Value| json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": { "name": name, "labels": labels },
            });
            for name in &names_to_try {
                let ans = send(&base, "POST", path, &token, "application/json", &lease(name, json!({}))).await;
                let core = names::is_dns1123_subdomain(name);
                prop_assert!(matches!(ans.code, 201 | 409 | 422), "{name:?}: {} {}", ans.code, ans.text);
                prop_assert_eq!(ans.code != 422, core, "name {:?}: the stand-in answered {} {}", name, ans.code, ans.text);
            }
            for (i, (key, value)) in labels.iter().enumerate() {
                let ans = send(&base, "POST", path, &token, "application/json", &lease(&format!("l{i}"), json!({ key: value }))).await;
                let core = names::is_qualified_name(key) && names::is_label_value(value);
                prop_assert!(matches!(ans.code, 201 | 422), "{key:?}={value:?}: {} {}", ans.code, ans.text);
                prop_assert_eq!(ans.code == 201, core, "label {:?}={:?}: the stand-in answered {} {}", key, value, ans.code, ans.text);
            }
            Ok(())
        })?;
    }
}
