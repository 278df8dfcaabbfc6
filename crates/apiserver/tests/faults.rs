//! Every fault mode and the per-user counters, through the library handle and through the admin endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use leasehold_apiserver::{ErrorInjection, Options, PartitionMode};
use serde_json::json;
use support::{WatchReader, get, lease, send};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_partitioned_user_hangs_until_healed_while_others_are_served() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let base = server.url();
    let cut = server.add_user("cut", &[]);
    let other = server.add_user("other", &[]);
    server
        .faults()
        .partition("cut", PartitionMode::HangRequests);
    let pending = tokio::spawn({
        let (base, cut) = (base.clone(), cut.clone());
        async move { get(&base, LEASES, &cut).await.code }
    });
    while server.faults().hung_requests() == 0 {
        tokio::task::yield_now().await;
    }
    // The server keeps serving others; the cut user's request is still waiting once theirs is answered.
    assert_eq!(get(&base, LEASES, &other).await.code, 200);
    assert_eq!(get(&base, LEASES, &other).await.code, 200);
    assert!(!pending.is_finished(), "a partitioned request must hang");
    server.faults().heal("cut");
    assert_eq!(
        tokio::time::timeout(WAIT, pending).await.unwrap().unwrap(),
        200
    );
}

#[tokio::test]
async fn a_frozen_watch_stays_open_and_silent_then_resumes_without_loss() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let base = server.url();
    let frozen = server.add_user("frozen", &[]);
    let witness = server.add_user("witness", &[]);
    let rv = server.resource_version();
    let path = format!("{LEASES}?watch=1&resourceVersion={rv}");
    let mut a = WatchReader::open(&base, &path, &frozen).await;
    let mut b = WatchReader::open(&base, &path, &witness).await;
    server
        .faults()
        .partition("frozen", PartitionMode::FreezeWatches);
    // Writes still work for the frozen user: only its watch is cut.
    let created = send(
        &base,
        "POST",
        LEASES,
        &frozen,
        "application/json",
        &lease("x", "n"),
    )
    .await;
    assert_eq!(created.code, 201);
    let seen = b.next(WAIT).await.unwrap();
    assert_eq!(seen["type"], "ADDED");
    assert!(
        a.next(Duration::from_millis(300)).await.is_none(),
        "a frozen watch delivers nothing"
    );
    server.faults().heal("frozen");
    let late = a.next(WAIT).await.unwrap();
    assert_eq!(late["object"]["metadata"]["name"], "x");
}

#[tokio::test]
async fn latency_delays_every_request() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    server.faults().latency(Some(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(get(&base, LEASES, &token).await.code, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    server.faults().latency(None);
}

#[tokio::test]
async fn injected_429s_carry_retry_after_and_expire_after_their_count() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    server.faults().inject(ErrorInjection {
        code: 429,
        retry_after_seconds: Some(7),
        count: Some(2),
        ..Default::default()
    });
    for _ in 0..2 {
        let ans = get(&base, LEASES, &token).await;
        assert_eq!(ans.code, 429);
        assert_eq!(ans.headers.get("retry-after").unwrap(), "7");
        assert_eq!(ans.json()["details"]["retryAfterSeconds"], 7);
        assert_eq!(ans.json()["reason"], "TooManyRequests");
    }
    assert_eq!(get(&base, LEASES, &token).await.code, 200);
}

#[tokio::test]
async fn injected_500s_can_target_one_user() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let base = server.url();
    let victim = server.add_user("victim", &[]);
    let bystander = server.add_user("bystander", &[]);
    server.faults().inject(ErrorInjection {
        code: 500,
        user: Some("victim".into()),
        fraction: Some(1.0),
        ..Default::default()
    });
    let ans = get(&base, LEASES, &victim).await;
    assert_eq!(ans.code, 500);
    assert_eq!(ans.json()["reason"], "InternalError");
    assert_eq!(get(&base, LEASES, &bystander).await.code, 200);
    server.faults().clear_errors();
    assert_eq!(get(&base, LEASES, &victim).await.code, 200);
}

#[tokio::test]
async fn closing_watches_ends_every_stream() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    let mut w = WatchReader::open(
        &base,
        &format!(
            "{LEASES}?watch=1&resourceVersion={}",
            server.resource_version()
        ),
        &token,
    )
    .await;
    server.faults().close_watches();
    assert!(w.ends_within(WAIT).await);
}

#[tokio::test]
async fn restart_keeping_state_drops_connections_but_not_objects() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    send(
        &base,
        "POST",
        LEASES,
        &token,
        "application/json",
        &lease("kept", "n"),
    )
    .await;
    let rv = server.resource_version();
    let mut w = WatchReader::open(
        &base,
        &format!("{LEASES}?watch=1&resourceVersion={rv}"),
        &token,
    )
    .await;
    server.restart(true).await;
    assert!(w.ends_within(WAIT).await, "a restart drops open watches");
    assert_eq!(
        get(&base, &format!("{LEASES}/kept"), &token).await.code,
        200
    );
    assert_eq!(server.resource_version(), rv);
}

#[tokio::test]
async fn restart_wiping_state_goes_back_below_seen_resource_versions() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    for i in 0..3 {
        send(
            &base,
            "POST",
            LEASES,
            &token,
            "application/json",
            &lease(&format!("l{i}"), "n"),
        )
        .await;
    }
    let seen = server.resource_version();
    server.restart(false).await;
    assert_eq!(get(&base, &format!("{LEASES}/l0"), &token).await.code, 404);
    assert!(server.resource_version() < seen);
    // A watch resumed from a version seen before the wipe ends with the real server's "Too large resource
    // version" ERROR event once the store has not reached it for 3 s, so that clients relist.
    let mut resumed = WatchReader::open(
        &base,
        &format!("{LEASES}?watch=1&resourceVersion={seen}"),
        &token,
    )
    .await;
    let started = Instant::now();
    let ev = resumed.next(WAIT).await.expect("an ERROR event");
    assert_eq!(ev["type"], "ERROR", "{ev}");
    assert_eq!(ev["object"]["code"], 504, "{ev}");
    assert!(
        ev["object"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Too large resource version")),
        "{ev}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it waits first"
    );
    assert!(resumed.ends_within(WAIT).await);
    // The initial namespaces are back, so agents can write again.
    assert_eq!(
        send(
            &base,
            "POST",
            LEASES,
            &token,
            "application/json",
            &lease("again", "n")
        )
        .await
        .code,
        201
    );
}

#[tokio::test]
async fn counters_split_requests_by_user_verb_and_code_and_count_watch_events() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let base = server.url();
    let a = server.add_user("a", &[]);
    let b = server.add_user("b", &[]);
    let writes_before = server.counters().writes();
    for _ in 0..3 {
        get(&base, &format!("{LEASES}/missing"), &a).await;
    }
    let mut w = WatchReader::open(
        &base,
        &format!(
            "{LEASES}?watch=1&resourceVersion={}",
            server.resource_version()
        ),
        &b,
    )
    .await;
    send(
        &base,
        "POST",
        LEASES,
        &b,
        "application/json",
        &lease("c", "n"),
    )
    .await;
    w.next(WAIT).await.unwrap();
    let c = server.counters();
    assert_eq!(c.requests("a", "get"), 3);
    assert_eq!(
        c.requests_where(Some("a"), Some("get"), Some("leases"), Some(404)),
        3
    );
    assert_eq!(c.requests("b", "create"), 1);
    assert_eq!(c.requests("b", "watch"), 1);
    assert_eq!(c.requests("a", "*"), 3);
    assert_eq!(c.writes() - writes_before, 1);
    assert_eq!(c.watch_events("b"), 1);
    assert_eq!(c.watch_events("a"), 0);
}

#[tokio::test]
async fn the_admin_endpoint_drives_faults_over_http_for_admins_only() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, admin) = (server.url(), server.admin_token());
    let created = send(
        &base,
        "POST",
        "/leasehold-admin/users",
        &admin,
        "application/json",
        &json!({"name": "remote"}),
    )
    .await;
    assert_eq!(created.code, 200, "{}", created.text);
    let token = created.json()["token"].as_str().unwrap().to_string();
    assert_eq!(get(&base, LEASES, &token).await.code, 200);
    let denied = send(
        &base,
        "POST",
        "/leasehold-admin/close-watches",
        &token,
        "application/json",
        &json!({}),
    )
    .await;
    assert_eq!(denied.code, 403);
    let injected = send(
        &base,
        "POST",
        "/leasehold-admin/errors",
        &admin,
        "application/json",
        &json!({"code": 500, "count": 1, "user": "remote"}),
    )
    .await;
    assert_eq!(injected.code, 200, "{}", injected.text);
    assert_eq!(get(&base, LEASES, &token).await.code, 500);
    assert_eq!(get(&base, LEASES, &token).await.code, 200);
    let counters = get(&base, "/leasehold-admin/counters", &admin).await.json();
    assert_eq!(counters["requests"]["remote list leases 500"], 1);
    assert_eq!(counters["requests"]["remote list leases 200"], 2);
    let bad = send(
        &base,
        "POST",
        "/leasehold-admin/partition",
        &admin,
        "application/json",
        &json!({"user": "x", "mode": "sideways"}),
    )
    .await;
    assert_eq!(bad.code, 400);
}
