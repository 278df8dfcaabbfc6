//! Watch semantics against the real server code: resume from a resourceVersion, 410 for one that fell out of the
//! history window, silence beyond the current one (and 504 for a list there), bookmarks, and an object leaving a
//! label selection showing up as DELETED.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use leasehold_apiserver::Options;
use serde_json::json;
use support::{WatchReader, get, lease, send};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
const WAIT: Duration = Duration::from_secs(10);

fn rv_of(v: &serde_json::Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn watch_resumes_after_a_resource_version_without_replaying_older_changes() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    let first = send(
        &base,
        "POST",
        LEASES,
        &token,
        "application/json",
        &lease("a", "n1"),
    )
    .await
    .json();
    let second = send(
        &base,
        "POST",
        LEASES,
        &token,
        "application/json",
        &lease("b", "n1"),
    )
    .await
    .json();
    let mut w = WatchReader::open(
        &base,
        &format!("{LEASES}?watch=1&resourceVersion={}", rv_of(&first)),
        &token,
    )
    .await;
    assert_eq!(w.code, 200);
    let ev = w.next(WAIT).await.unwrap();
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("b"))
    );
    assert_eq!(rv_of(&ev["object"]), rv_of(&second));
    let mut updated = second.clone();
    updated["spec"]["holderIdentity"] = json!("n2");
    send(
        &base,
        "PUT",
        &format!("{LEASES}/b"),
        &token,
        "application/json",
        &updated,
    )
    .await;
    let ev = w.next(WAIT).await.unwrap();
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(ev["object"]["spec"]["holderIdentity"], "n2");
}

#[tokio::test]
async fn watch_without_resource_version_starts_with_the_current_objects() {
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
        &lease("a", "n1"),
    )
    .await;
    let mut w = WatchReader::open(&base, &format!("{LEASES}?watch=1"), &token).await;
    let ev = w.next(WAIT).await.unwrap();
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("a"))
    );
}

#[tokio::test]
async fn watch_from_before_the_history_window_gets_410_expired() {
    let server = leasehold_apiserver::start(Options {
        history_window: 3,
        ..Options::default()
    })
    .await
    .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    let first = send(
        &base,
        "POST",
        LEASES,
        &token,
        "application/json",
        &lease("a", "n"),
    )
    .await
    .json();
    for name in ["b", "c", "d", "e"] {
        send(
            &base,
            "POST",
            LEASES,
            &token,
            "application/json",
            &lease(name, "n"),
        )
        .await;
    }
    let mut w = WatchReader::open(
        &base,
        &format!("{LEASES}?watch=1&resourceVersion={}", rv_of(&first)),
        &token,
    )
    .await;
    let ev = w.next(WAIT).await.unwrap();
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
    assert!(w.ends_within(WAIT).await, "the stream ends after the error");
}

#[tokio::test]
async fn beyond_the_current_resource_version_a_watch_waits_for_it_and_a_list_answers_504() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    let future = server.resource_version() + 5;
    let list = get(&base, &format!("{LEASES}?resourceVersion={future}"), &token).await;
    assert_eq!(list.code, 504);
    assert_eq!(list.json()["reason"], "Timeout");
    assert_eq!(list.headers.get("retry-after").unwrap(), "1");
    let mut w = WatchReader::open(
        &base,
        &format!("{LEASES}?watch=1&resourceVersion={future}"),
        &token,
    )
    .await;
    send(
        &base,
        "POST",
        LEASES,
        &token,
        "application/json",
        &lease("early", "n"),
    )
    .await;
    // Once the server passes `future`, later changes flow; the one at or below it never does.
    for i in 0..5 {
        send(
            &base,
            "POST",
            LEASES,
            &token,
            "application/json",
            &lease(&format!("fill{i}"), "n"),
        )
        .await;
    }
    let ev = w.next(WAIT).await.unwrap();
    let rv: u64 = rv_of(&ev["object"]).parse().unwrap();
    assert!(rv > future, "first event at {rv} must be beyond {future}");
    assert_ne!(ev["object"]["metadata"]["name"], "early");
}

#[tokio::test]
async fn bookmarks_arrive_at_the_configured_interval_only_when_allowed() {
    let server = leasehold_apiserver::start(Options {
        bookmark_interval: Duration::from_millis(200),
        ..Options::default()
    })
    .await
    .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    let rv = server.resource_version();
    let mut w = WatchReader::open(
        &base,
        &format!("{LEASES}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true"),
        &token,
    )
    .await;
    let ev = w.next(WAIT).await.unwrap();
    assert_eq!(ev["type"], "BOOKMARK");
    assert_eq!(ev["object"]["kind"], "Lease");
    assert_eq!(ev["object"]["metadata"]["resourceVersion"], rv.to_string());
    let mut quiet = WatchReader::open(
        &base,
        &format!("{LEASES}?watch=1&resourceVersion={rv}"),
        &token,
    )
    .await;
    assert!(
        quiet.next(Duration::from_millis(800)).await.is_none(),
        "no bookmark without allowWatchBookmarks"
    );
}

#[tokio::test]
async fn an_object_leaving_a_label_selection_is_deleted_for_that_watch() {
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
        &lease("l", "n"),
    )
    .await
    .json();
    let sel = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dleasehold";
    let mut w = WatchReader::open(
        &base,
        &format!("{LEASES}?watch=1&{sel}&resourceVersion={}", rv_of(&created)),
        &token,
    )
    .await;
    let patch = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": null}}});
    let ans = send(
        &base,
        "PATCH",
        &format!("{LEASES}/l"),
        &token,
        "application/merge-patch+json",
        &patch,
    )
    .await;
    assert_eq!(ans.code, 200, "{}", ans.text);
    let ev = w.next(WAIT).await.unwrap();
    assert_eq!(ev["type"], "DELETED");
    // The object still exists: a GET shows it, without the label.
    let live = get(&base, &format!("{LEASES}/l"), &token).await.json();
    assert!(
        live["metadata"]["labels"]
            .get("app.kubernetes.io/managed-by")
            .is_none()
    );
    let back = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "leasehold"}}});
    send(
        &base,
        "PATCH",
        &format!("{LEASES}/l"),
        &token,
        "application/merge-patch+json",
        &back,
    )
    .await;
    let ev = w.next(WAIT).await.unwrap();
    assert_eq!(ev["type"], "ADDED");
}

#[tokio::test]
async fn timeout_seconds_ends_the_stream() {
    let server = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let (base, token) = (server.url(), server.admin_token());
    let mut w = WatchReader::open(
        &base,
        &format!(
            "{LEASES}?watch=1&resourceVersion={}&timeoutSeconds=1",
            server.resource_version()
        ),
        &token,
    )
    .await;
    assert!(
        w.ends_within(WAIT).await,
        "the server closes the stream after timeoutSeconds"
    );
}
