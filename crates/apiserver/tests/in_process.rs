//! The server in process, through `ApiService`, with real kube-rs clients on tokio's paused clock in a
//! current-thread runtime, as the deterministic simulation uses it: no sockets, no real time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::Client;
use kube::api::{Api, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use leasehold_apiserver::{InProcess, Options, PartitionMode, in_process};
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

/// Long enough for anything that should happen; on the paused clock a miss fails at once, not after a wait.
const WAIT: Duration = Duration::from_secs(10);

fn lease(name: &str, holder: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    }
}

fn holder(l: &Lease) -> &str {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or("")
}

fn with_holder(l: &Lease, h: &str) -> Lease {
    let mut next = l.clone();
    next.spec
        .get_or_insert_with(Default::default)
        .holder_identity = Some(h.into());
    next
}

fn rv(l: &Lease) -> String {
    l.metadata.resource_version.clone().unwrap()
}

/// A kube client for a new user `name`.
fn client(server: &InProcess, name: &str) -> Client {
    Client::new(server.service(&server.add_user(name, &[])), "default")
}

fn leases(server: &InProcess, name: &str) -> Api<Lease> {
    Api::default_namespaced(client(server, name))
}

fn api_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Sends one raw request through the service, for paths kube has no typed call for.
async fn raw(
    server: &InProcess,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    use tower::Service;
    let mut svc = server.service(token);
    std::future::poll_fn(|cx| <_ as Service<http::Request<Full<Bytes>>>>::poll_ready(&mut svc, cx))
        .await
        .unwrap();
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = svc.call(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(start_paused = true)]
async fn kube_clients_create_get_and_watch_leases_over_the_service() {
    let server = in_process(Options::default()).unwrap();
    let a = leases(&server, "a");
    let b = leases(&server, "b");
    let created = a
        .create(&PostParams::default(), &lease("l", "a"))
        .await
        .unwrap();
    let got = a.get("l").await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert_eq!(holder(&got), "a");
    let mut events = a
        .watch(&WatchParams::default(), &rv(&got))
        .await
        .unwrap()
        .boxed();
    b.replace("l", &PostParams::default(), &with_holder(&got, "b"))
        .await
        .unwrap();
    match timeout(WAIT, events.try_next()).await.unwrap().unwrap() {
        Some(WatchEvent::Modified(l)) => assert_eq!(holder(&l), "b"),
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    // Discovery documents name a plausible address.
    let versions = client(&server, "c").list_core_api_versions().await.unwrap();
    assert_eq!(
        versions.server_address_by_client_cidrs[0].server_address,
        server.server_address()
    );
    assert_eq!(server.server_address(), "127.0.0.1:6443");
}

#[tokio::test(start_paused = true)]
async fn a_partition_hangs_a_request_until_healed() {
    let server = in_process(Options::default()).unwrap();
    let cut = leases(&server, "cut");
    let other = leases(&server, "other");
    server
        .faults()
        .partition("cut", PartitionMode::HangRequests);
    let pending = tokio::spawn(async move { cut.get_opt("x").await });
    while server.faults().hung_requests() == 0 {
        tokio::task::yield_now().await;
    }
    // An hour of paused time later it still hangs, while other users are served.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(other.list(&ListParams::default()).await.is_ok());
    assert!(!pending.is_finished(), "a partitioned request must hang");
    server.faults().heal("cut");
    let answer = timeout(WAIT, pending).await.unwrap().unwrap().unwrap();
    assert!(answer.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_restart_ends_an_open_watch_and_fails_a_hung_request() {
    let server = in_process(Options::default()).unwrap();
    let watcher = leases(&server, "watcher");
    let cut = leases(&server, "cut");
    let mut events = watcher
        .watch(
            &WatchParams::default(),
            &server.resource_version().to_string(),
        )
        .await
        .unwrap()
        .boxed();
    server
        .faults()
        .partition("cut", PartitionMode::HangRequests);
    let pending = tokio::spawn({
        let cut = cut.clone();
        async move { cut.get_opt("x").await }
    });
    while server.faults().hung_requests() == 0 {
        tokio::task::yield_now().await;
    }
    // Both stay open (and silent) until the restart.
    assert!(
        timeout(Duration::from_secs(60), events.try_next())
            .await
            .is_err()
    );
    assert!(!pending.is_finished());
    server.restart(true).await;
    // The watch body ends, as a dropped connection's would.
    let end = timeout(WAIT, events.try_next()).await.unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    // The hung request fails with a transport error, not an HTTP answer.
    let err = timeout(WAIT, pending).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(err, kube::Error::Service(_)), "{err:?}");
    assert_eq!(server.faults().hung_requests(), 0);
    // Requests and watches made after the restart work.
    server.faults().heal("cut");
    assert!(cut.get_opt("x").await.unwrap().is_none());
    let mut renewed = watcher
        .watch(
            &WatchParams::default(),
            &server.resource_version().to_string(),
        )
        .await
        .unwrap()
        .boxed();
    cut.create(&PostParams::default(), &lease("x", "cut"))
        .await
        .unwrap();
    let ev = timeout(WAIT, renewed.try_next()).await.unwrap().unwrap();
    assert!(matches!(ev, Some(WatchEvent::Added(_))), "{ev:?}");
    drop(events);
    // The ended watch stopped with its body, though its ended stream was still held at the write: only the new
    // watch counted an event.
    assert_eq!(server.counters().watch_events("watcher"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_restart_fails_a_request_waiting_in_injected_latency() {
    let server = in_process(Options::default()).unwrap();
    let a = leases(&server, "a");
    server.faults().latency(Some(Duration::from_secs(30)));
    let started = Instant::now();
    let pending = tokio::spawn({
        let a = a.clone();
        async move { a.get_opt("x").await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart(true).await;
    let err = timeout(WAIT, pending).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(err, kube::Error::Service(_)), "{err:?}");
    // Latency runs on tokio time: with the paused clock a request takes exactly the injected delay.
    assert!(started.elapsed() < Duration::from_secs(30));
    let started = Instant::now();
    assert!(a.get_opt("x").await.unwrap().is_none());
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn counters_count_each_service_user_separately() {
    let server = in_process(Options::default()).unwrap();
    let a = leases(&server, "a");
    let b = leases(&server, "b");
    let writes_before = server.counters().writes();
    assert!(a.get_opt("missing").await.unwrap().is_none());
    assert!(a.get_opt("missing").await.unwrap().is_none());
    b.create(&PostParams::default(), &lease("l", "b"))
        .await
        .unwrap();
    a.get("l").await.unwrap();
    let c = server.counters();
    assert_eq!(c.requests("a", "get"), 3);
    assert_eq!(
        c.requests_where(Some("a"), Some("get"), Some("leases"), Some(404)),
        2
    );
    assert_eq!(c.requests("b", "create"), 1);
    assert_eq!(c.requests("b", "get"), 0);
    assert_eq!(c.writes() - writes_before, 1);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_token_is_answered_401_and_a_large_body_413() {
    let server = in_process(Options::default()).unwrap();
    let stranger =
        Api::<Lease>::default_namespaced(Client::new(server.service("nobody"), "default"));
    let err = stranger.get_opt("x").await.unwrap_err();
    assert_eq!(api_code(&err), Some(401), "{err:?}");
    let big = json!({ "pad": "x".repeat(4 * 1024 * 1024) });
    let (code, _) = raw(
        &server,
        &server.admin_token(),
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        big,
    )
    .await;
    assert_eq!(code, 413);
}

#[tokio::test(start_paused = true)]
async fn a_restore_rewinds_objects_and_resource_versions_for_kube_clients() {
    let server = in_process(Options::default()).unwrap();
    let a = leases(&server, "a");
    let created = a
        .create(&PostParams::default(), &lease("l", "one"))
        .await
        .unwrap();
    let snapshot = server.snapshot();
    assert_eq!(snapshot.resource_version().to_string(), rv(&created));
    let events = a
        .watch(&WatchParams::default(), &rv(&created))
        .await
        .unwrap()
        .boxed();
    let two = a
        .replace("l", &PostParams::default(), &with_holder(&created, "two"))
        .await
        .unwrap();
    let three = a
        .replace("l", &PostParams::default(), &with_holder(&two, "three"))
        .await
        .unwrap();
    server.restore(&snapshot).await;
    // The open watch ends (after the two MODIFIED events it had already queued).
    let rest: Vec<_> = timeout(WAIT, events.collect::<Vec<_>>()).await.unwrap();
    assert!(rest.len() <= 2, "{rest:?}");
    let got = a.get("l").await.unwrap();
    assert_eq!(holder(&got), "one");
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert_eq!(rv(&got), rv(&created));
    let stale = a
        .replace("l", &PostParams::default(), &with_holder(&three, "four"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&stale), Some(409), "{stale:?}");
    let again = a
        .replace("l", &PostParams::default(), &with_holder(&got, "four"))
        .await
        .unwrap();
    // resourceVersions repeat with different content, as on a restored cluster.
    assert_eq!(rv(&again), rv(&two));
    // Beyond the current resourceVersion: a list answers 504, a watch waits 3 s and ends with a 504 ERROR.
    let beyond = ListParams {
        resource_version: Some(rv(&three)),
        ..Default::default()
    };
    let err = a.list(&beyond).await.unwrap_err();
    assert_eq!(api_code(&err), Some(504), "{err:?}");
    let started = Instant::now();
    let mut resumed = a
        .watch(&WatchParams::default(), &rv(&three))
        .await
        .unwrap()
        .boxed();
    match timeout(WAIT, resumed.try_next()).await.unwrap().unwrap() {
        Some(WatchEvent::Error(s)) if s.code == 504 => {}
        other => panic!("expected a 504 ERROR event, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(
        timeout(WAIT, resumed.try_next())
            .await
            .unwrap()
            .unwrap()
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn the_admin_endpoint_snapshots_and_restores_through_the_service() {
    let server = in_process(Options::default()).unwrap();
    let admin = server.admin_token();
    let a = leases(&server, "a");
    let created = a
        .create(&PostParams::default(), &lease("l", "one"))
        .await
        .unwrap();
    let (code, snap) = raw(
        &server,
        &admin,
        "POST",
        "/leasehold-admin/snapshot",
        json!({}),
    )
    .await;
    assert_eq!(code, 200, "{snap}");
    assert_eq!(snap["resourceVersion"], rv(&created));
    a.replace("l", &PostParams::default(), &with_holder(&created, "two"))
        .await
        .unwrap();
    let (code, body) = raw(
        &server,
        &admin,
        "POST",
        "/leasehold-admin/restore",
        json!({"id": 7}),
    )
    .await;
    assert_eq!((code, &body["reason"]), (404, &json!("NotFound")), "{body}");
    let (code, body) = raw(
        &server,
        &admin,
        "POST",
        "/leasehold-admin/restore",
        json!({"id": snap["id"]}),
    )
    .await;
    // In process the admin request's own answer survives the connections it drops.
    assert_eq!(code, 200, "{body}");
    assert_eq!(holder(&a.get("l").await.unwrap()), "one");
    assert_eq!(server.resource_version().to_string(), rv(&created));
}
