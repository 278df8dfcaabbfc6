//! Authentication (token file, 401, the anonymous user) and RBAC (Role/RoleBinding from YAML, 403 with the real message shape).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use leasehold_apiserver::Options;
use leasehold_apiserver::rbac::parse_token_file;
use support::{get, lease, request, send};

const TOKENS: &str = "agent-token,system:serviceaccount:agents:leasehold,uid-1,\"\"\nreader-token,reader,uid-2,\"readers\"\n";

const RBAC: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: leasehold, namespace: agents}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: leasehold, namespace: agents}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch, create, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: leasehold, namespace: agents}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: leasehold}
subjects:
- {kind: ServiceAccount, name: leasehold, namespace: agents}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: lease-reader}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: readers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lease-reader}
subjects:
- {kind: Group, name: readers, apiGroup: rbac.authorization.k8s.io}
"#;

async fn server() -> leasehold_apiserver::Server {
    let server = leasehold_apiserver::start(Options {
        tokens: parse_token_file(TOKENS).unwrap(),
        rbac: vec![("rbac.yaml".into(), RBAC.into())],
        ..Options::default()
    })
    .await
    .unwrap();
    support::create_namespace(&server.url(), &server.admin_token(), "agents").await;
    server
}

/// RBAC that lets `group` list Leases everywhere.
fn lease_listers(group: &str) -> String {
    format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: lease-lister}}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: lease-listers}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lease-lister}}
subjects:
- {{kind: Group, name: "{group}", apiGroup: rbac.authorization.k8s.io}}
"#
    )
}

#[tokio::test]
async fn no_credentials_is_the_anonymous_user_refused_with_403_and_an_unknown_token_gets_401() {
    // As a real kube-apiserver with anonymous auth on (its default) answers.
    let server = server().await;
    let none = request(
        &server.url(),
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/agents/leases",
        None,
        None,
        None,
        None,
    )
    .await;
    assert_eq!(none.code, 403);
    assert_eq!(none.json()["reason"], "Forbidden");
    assert_eq!(
        none.json()["message"],
        "leases.coordination.k8s.io is forbidden: User \"system:anonymous\" cannot list resource \"leases\" in API \
         group \"coordination.k8s.io\" in the namespace \"agents\""
    );
    assert_eq!(
        get(&server.url(), "/api/v1/namespaces", "nope").await.code,
        401
    );
    // Bindings to system:authenticated do not reach the anonymous user; bindings to system:unauthenticated do.
    let path = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    for (group, code) in [
        ("system:authenticated", 403),
        ("system:unauthenticated", 200),
    ] {
        let server = leasehold_apiserver::start(Options {
            rbac: vec![("rbac.yaml".into(), lease_listers(group))],
            ..Options::default()
        })
        .await
        .unwrap();
        let anon = request(&server.url(), "GET", path, None, None, None, None).await;
        assert_eq!(anon.code, code, "anonymous, with list granted to {group}");
    }
}

#[tokio::test]
async fn without_rbac_manifests_anonymous_is_refused_and_with_anonymous_auth_off_it_gets_401() {
    let allow_all = leasehold_apiserver::start(Options::default())
        .await
        .unwrap();
    let anon = request(
        &allow_all.url(),
        "GET",
        "/api/v1/namespaces",
        None,
        None,
        None,
        None,
    )
    .await;
    assert_eq!(anon.code, 403);
    assert_eq!(
        anon.json()["message"],
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" \
         at the cluster scope"
    );
    let version = request(&allow_all.url(), "GET", "/version", None, None, None, None).await;
    assert_eq!(version.code, 200, "/version needs no credentials");
    let strict = leasehold_apiserver::start(Options {
        anonymous_auth: false,
        ..Options::default()
    })
    .await
    .unwrap();
    let none = request(
        &strict.url(),
        "GET",
        "/api/v1/namespaces",
        None,
        None,
        None,
        None,
    )
    .await;
    assert_eq!(none.code, 401);
    assert_eq!(none.json()["message"], "Unauthorized");
}

#[tokio::test]
async fn a_service_account_may_do_exactly_what_its_role_grants() {
    let server = server().await;
    let base = server.url();
    let leases = "/apis/coordination.k8s.io/v1/namespaces/agents/leases";
    let created = send(
        &base,
        "POST",
        leases,
        "agent-token",
        "application/json",
        &lease("l", "n"),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.text);
    assert_eq!(
        get(&base, &format!("{leases}/l"), "agent-token").await.code,
        200
    );
    let del = request(
        &base,
        "DELETE",
        &format!("{leases}/l"),
        Some("agent-token"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(del.code, 403);
    assert_eq!(
        del.json()["message"],
        "leases.coordination.k8s.io \"l\" is forbidden: User \"system:serviceaccount:agents:leasehold\" cannot delete resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"agents\""
    );
    assert_eq!(del.json()["reason"], "Forbidden");
}

#[tokio::test]
async fn other_namespaces_secrets_and_cluster_scope_are_forbidden() {
    let server = server().await;
    let base = server.url();
    let other = get(
        &base,
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        "agent-token",
    )
    .await;
    assert_eq!(other.code, 403);
    assert_eq!(
        other.json()["message"],
        "leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:agents:leasehold\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\""
    );
    let secret = get(&base, "/api/v1/namespaces/agents/secrets/s", "agent-token").await;
    assert_eq!(
        secret.code, 403,
        "a secret is forbidden before it is unknown"
    );
    let cluster = get(&base, "/api/v1/namespaces", "agent-token").await;
    assert_eq!(cluster.code, 403);
    // Discovery stays open to every authenticated user.
    assert_eq!(
        get(&base, "/apis/coordination.k8s.io/v1", "agent-token")
            .await
            .code,
        200
    );
}

#[tokio::test]
async fn group_bindings_apply_to_token_file_groups() {
    let server = server().await;
    let base = server.url();
    assert_eq!(
        get(
            &base,
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            "reader-token"
        )
        .await
        .code,
        200
    );
    let write = send(
        &base,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        "reader-token",
        "application/json",
        &lease("x", "n"),
    )
    .await;
    assert_eq!(write.code, 403);
}

#[tokio::test]
async fn masters_bypass_rbac() {
    let server = server().await;
    let del = request(
        &server.url(),
        "DELETE",
        "/api/v1/namespaces/agents",
        Some(&server.admin_token()),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(del.code, 200, "{}", del.text);
}

#[tokio::test]
async fn a_put_that_creates_needs_create_as_well_as_update() {
    let rbac = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: updater, namespace: default}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: updater, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: updater}
subjects:
- {kind: User, name: updater, apiGroup: rbac.authorization.k8s.io}
"#;
    let server = leasehold_apiserver::start(Options {
        tokens: parse_token_file("u-token,updater,u1,\"\"\n").unwrap(),
        rbac: vec![("rbac.yaml".into(), rbac.into())],
        ..Options::default()
    })
    .await
    .unwrap();
    let path = "/apis/coordination.k8s.io/v1/namespaces/default/leases/fresh";
    let denied = send(
        &server.url(),
        "PUT",
        path,
        "u-token",
        "application/json",
        &lease("fresh", "n"),
    )
    .await;
    assert_eq!(denied.code, 403, "{}", denied.text);
    assert!(
        denied.json()["message"]
            .as_str()
            .unwrap()
            .contains("cannot create resource \"leases\"")
    );
    // Once it exists, the same user may update it.
    let created = send(
        &server.url(),
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        &server.admin_token(),
        "application/json",
        &lease("fresh", "n"),
    )
    .await
    .json();
    let ok = send(
        &server.url(),
        "PUT",
        path,
        "u-token",
        "application/json",
        &created,
    )
    .await;
    assert_eq!(ok.code, 200, "{}", ok.text);
}
