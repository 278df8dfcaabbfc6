//! The `leasehold-apiserver` binary: flags, the kubeconfig it writes, the token file, RBAC manifests, and a clean
//! exit on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::get;

fn token_from_kubeconfig(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .map(|t| t.trim_matches('"').to_string())
        .expect("kubeconfig has a token")
}

fn server_from_kubeconfig(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("kubeconfig has a server")
        .to_string()
}

#[tokio::test]
async fn the_binary_writes_a_working_kubeconfig_and_enforces_tokens_and_rbac() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "viewer-token,viewer,v1,\"\"\n").unwrap();
    let rbac = dir.path().join("rbac.yaml");
    std::fs::write(
        &rbac,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: view-leases}\nrules:\n- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [list]}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: viewer}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view-leases}\nsubjects: [{kind: User, name: viewer}]\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leasehold-apiserver"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .arg("--token-file")
        .arg(&tokens)
        .arg("--rbac")
        .arg(&rbac)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert_eq!(server_from_kubeconfig(&text), url);
    let admin = token_from_kubeconfig(&text);
    assert_eq!(
        get(&url, "/api/v1/namespaces/default", &admin).await.code,
        200
    );
    assert_eq!(
        get(&url, "/apis/coordination.k8s.io/v1/leases", "viewer-token")
            .await
            .code,
        200
    );
    assert_eq!(
        get(&url, "/api/v1/namespaces", "viewer-token").await.code,
        403
    );
    assert_eq!(get(&url, "/api/v1/namespaces", "unknown").await.code, 401);
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success(), "SIGTERM exits 0");
}

#[test]
fn a_bad_token_file_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "only-a-token\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_leasehold-apiserver"))
        .args(["--listen", "127.0.0.1:0", "--token-file"])
        .arg(&tokens)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token-file") && err.contains("line 1"),
        "{err}"
    );
}
