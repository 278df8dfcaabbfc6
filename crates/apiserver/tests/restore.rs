//! The "restore from backup" fault over TCP: a snapshot, later writes, and an etcd-like restore that brings back
//! the snapshot's objects with their uids and older resourceVersions, through the library handle and through the
//! admin endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use leasehold_apiserver::Options;
use serde_json::{Value, json};
use support::{WatchReader, get, lease, send};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
const WAIT: Duration = Duration::from_secs(10);

fn with_holder(obj: &Value, holder: &str) -> Value {
    let mut next = obj.clone();
    next["spec"]["holderIdentity"] = json!(holder);
    next
}

async fn put(base: &str, token: &str, obj: &Value) -> support::Answer {
    let path = format!("{LEASES}/{}", obj["metadata"]["name"].as_str().unwrap());
    send(base, "PUT", &path, token, "application/json", obj).await
}

/// A POST whose answer may be lost because the request drops every connection, its own included.
async fn post_may_drop(base: &str, path: &str, token: &str, body: &Value) -> Option<u16> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = tokio::time::timeout(WAIT, client.request(req))
        .await
        .ok()?
        .ok()?;
    let code = resp.status().as_u16();
    resp.into_body().collect().await.ok()?;
    Some(code)
}

#[tokio::test]
async fn a_restore_brings_back_the_snapshot_with_its_uids_and_older_resource_versions() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    let created = send(
        &base,
        "POST",
        LEASES,
        &token,
        "application/json",
        &lease("l", "one"),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.text);
    let created = created.json();
    let snapshot = server.snapshot();
    let snap_rv = created["metadata"]["resourceVersion"].clone();
    assert_eq!(
        snapshot.resource_version().to_string(),
        snap_rv.as_str().unwrap()
    );
    let mut w = WatchReader::open(
        &base,
        &format!(
            "{LEASES}?watch=1&resourceVersion={}",
            snap_rv.as_str().unwrap()
        ),
        &token,
    )
    .await;
    let two = put(&base, &token, &with_holder(&created, "two")).await;
    assert_eq!(two.code, 200, "{}", two.text);
    let three = put(&base, &token, &with_holder(&two.json(), "three")).await;
    assert_eq!(three.code, 200, "{}", three.text);
    let three = three.json();
    server.restore(&snapshot).await;
    assert!(w.ends_within(WAIT).await, "a restore drops open watches");
    let got = get(&base, &format!("{LEASES}/l"), &token).await.json();
    assert_eq!(got["spec"]["holderIdentity"], "one");
    assert_eq!(got["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(got["metadata"]["resourceVersion"], snap_rv);
    assert_eq!(server.resource_version(), snapshot.resource_version());
    // The client's newer resourceVersion is a conflict now; the restored one is current.
    let stale = put(&base, &token, &with_holder(&three, "four")).await;
    assert_eq!(stale.code, 409, "{}", stale.text);
    let fresh = put(&base, &token, &with_holder(&got, "four")).await;
    assert_eq!(fresh.code, 200, "{}", fresh.text);
    assert_eq!(
        fresh.json()["metadata"]["resourceVersion"],
        two.json()["metadata"]["resourceVersion"],
        "writes continue from the snapshot's resourceVersion, repeating one clients saw"
    );
}

#[tokio::test]
async fn the_admin_endpoint_takes_snapshots_and_restores_them() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, admin) = (server.url(), server.admin_token());
    let created = send(
        &base,
        "POST",
        LEASES,
        &admin,
        "application/json",
        &lease("l", "one"),
    )
    .await
    .json();
    let snap = send(
        &base,
        "POST",
        "/leasehold-admin/snapshot",
        &admin,
        "application/json",
        &json!({}),
    )
    .await;
    assert_eq!(snap.code, 200, "{}", snap.text);
    let snap = snap.json();
    assert_eq!(
        snap["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    assert_eq!(
        put(&base, &admin, &with_holder(&created, "two")).await.code,
        200
    );
    let unknown = send(
        &base,
        "POST",
        "/leasehold-admin/restore",
        &admin,
        "application/json",
        &json!({"id": 99}),
    )
    .await;
    assert_eq!(unknown.code, 404, "{}", unknown.text);
    let user = server.add_user("user", &[]);
    let denied = send(
        &base,
        "POST",
        "/leasehold-admin/snapshot",
        &user,
        "application/json",
        &json!({}),
    )
    .await;
    assert_eq!(denied.code, 403);
    // The restore drops every connection, the admin request's own too, so its answer may be lost.
    let answer = post_may_drop(
        &base,
        "/leasehold-admin/restore",
        &admin,
        &json!({"id": snap["id"]}),
    )
    .await;
    assert!(matches!(answer, None | Some(200)), "{answer:?}");
    let got = get(&base, &format!("{LEASES}/l"), &admin).await.json();
    assert_eq!(got["spec"]["holderIdentity"], "one");
    assert_eq!(got["metadata"]["resourceVersion"], snap["resourceVersion"]);
}
