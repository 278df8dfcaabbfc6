//! Bad input never crashes the server: malformed bodies, oversize bodies, unknown paths, and random requests.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use leasehold_apiserver::Options;
use proptest::prelude::*;
use support::{get, request};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

#[tokio::test]
async fn a_body_over_3_mib_gets_413() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    let ans = request(
        &server.url(),
        "POST",
        LEASES,
        Some(&server.admin_token()),
        Some("application/json"),
        None,
        Some(big),
    )
    .await;
    assert_eq!(ans.code, 413);
    assert_eq!(ans.json()["kind"], "Status");
}

#[tokio::test]
async fn unknown_paths_get_a_404_status() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    for path in [
        "/nothing",
        "/apis/no.such.group/v1",
        "/apis/coordination.k8s.io/v1/namespaces/default/nopes",
        "/api/v2",
    ] {
        let ans = get(&server.url(), path, &server.admin_token()).await;
        assert_eq!(ans.code, 404, "{path}");
        assert_eq!(ans.json()["kind"], "Status", "{path}");
    }
}

#[tokio::test]
async fn malformed_yaml_and_mismatched_kinds_are_bad_requests() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    let yaml = b"apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: [unclosed\n".to_vec();
    let ans = request(
        &base,
        "POST",
        LEASES,
        Some(&token),
        Some("application/yaml"),
        None,
        Some(yaml),
    )
    .await;
    assert_eq!(ans.code, 400, "{}", ans.text);
    let good_yaml = b"apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: from-yaml\nspec:\n  holderIdentity: a\n".to_vec();
    let ans = request(
        &base,
        "POST",
        LEASES,
        Some(&token),
        Some("application/yaml"),
        None,
        Some(good_yaml),
    )
    .await;
    assert_eq!(ans.code, 201, "{}", ans.text);
    let wrong_version =
        br#"{"apiVersion":"coordination.k8s.io/v2","kind":"Lease","metadata":{"name":"x"}}"#
            .to_vec();
    let ans = request(
        &base,
        "POST",
        LEASES,
        Some(&token),
        Some("application/json"),
        None,
        Some(wrong_version),
    )
    .await;
    assert_eq!(ans.code, 400);
    let no_kind = br#"{"metadata":{"name":"x"}}"#.to_vec();
    let ans = request(
        &base,
        "POST",
        LEASES,
        Some(&token),
        Some("application/json"),
        None,
        Some(no_kind),
    )
    .await;
    assert_eq!(ans.code, 400);
    assert!(
        ans.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Object 'Kind' is missing")
    );
}

#[tokio::test]
async fn a_server_side_apply_without_a_name_takes_it_from_the_url() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let body =
        b"apiVersion: coordination.k8s.io/v1\nkind: Lease\nspec:\n  holderIdentity: a\n".to_vec();
    let path = format!("{LEASES}/from-url?fieldManager=m");
    let ans = request(
        &server.url(),
        "PATCH",
        &path,
        Some(&server.admin_token()),
        Some("application/apply-patch+yaml"),
        None,
        Some(body),
    )
    .await;
    assert_eq!(ans.code, 201, "{}", ans.text);
    assert_eq!(ans.json()["metadata"]["name"], "from-url");
    let other =
        b"apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: other}\n".to_vec();
    let ans = request(
        &server.url(),
        "PATCH",
        &path,
        Some(&server.admin_token()),
        Some("application/apply-patch+yaml"),
        None,
        Some(other),
    )
    .await;
    assert_eq!(ans.code, 400, "a different name is still refused");
}

fn arb_method() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PUT"),
        Just("PATCH"),
        Just("DELETE")
    ]
}

fn arb_content_type() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("application/json"),
        Just("application/yaml"),
        Just("application/merge-patch+json"),
        Just("application/strategic-merge-patch+json"),
        Just("application/json-patch+json"),
        Just("application/apply-patch+yaml"),
        Just("text/plain"),
    ]
}

fn arb_path() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        Just("leases".to_string()),
        Just("l1".to_string()),
        Just("namespaces".to_string()),
        Just("default".to_string()),
        Just("events".to_string()),
        "[a-zA-Z0-9%._~-]{0,12}",
    ];
    let query = prop_oneof![
        Just(String::new()),
        Just("?watch=1&timeoutSeconds=1".to_string()),
        Just("?fieldManager=m&force=true".to_string()),
        "\\?[a-zA-Z=&%0-9]{0,30}",
    ];
    (
        prop_oneof![
            Just("/apis/coordination.k8s.io/v1"),
            Just("/api/v1"),
            Just("/apis/events.k8s.io/v1"),
            Just("")
        ],
        prop::collection::vec(seg, 0..5),
        query,
    )
        .prop_map(|(prefix, segs, q)| format!("{prefix}/{}{q}", segs.join("/")))
}

fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    let json_like = prop_oneof![
        Just(br#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l1"},"spec":{"leaseDurationSeconds":"x"}}"#.to_vec()),
        Just(br#"[{"op":"remove","path":"/metadata"}]"#.to_vec()),
        Just(br#"{"metadata":{"labels":{"a":1}},"spec":null}"#.to_vec()),
        Just(br#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l1","resourceVersion":"x","uid":7}}"#.to_vec()),
    ];
    prop_oneof![json_like, prop::collection::vec(any::<u8>(), 0..200)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    /// Random methods, paths, content types and bodies: every answer is a well-formed HTTP response below 500
    /// (injected faults aside), and the server keeps answering afterwards.
    #[test]
    fn random_requests_never_crash_the_server(
        reqs in prop::collection::vec((arb_method(), arb_path(), arb_content_type(), arb_body()), 1..8)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let server = leasehold_apiserver::start(Options::default()).await.unwrap();
            let (base, token) = (server.url(), server.admin_token());
            for (method, path, ct, body) in reqs {
                let ans = request(&base, method, &path, Some(&token), Some(ct), None, Some(body)).await;
                prop_assert!(ans.code < 500, "{method} {path} ({ct}) answered {}: {}", ans.code, ans.text);
            }
            prop_assert_eq!(get(&base, "/version", &token).await.code, 200);
            Ok(())
        })?;
    }
}
