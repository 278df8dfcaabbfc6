//! The kubeconfig the server writes for clients: kubectl and kube-rs use it as-is.

use base64::Engine;

/// Renders a kubeconfig for `server` (the URL), authenticating with `token`, trusting `ca_pem` when TLS is on.
pub fn render(server: &str, user: &str, token: &str, ca_pem: Option<&str>) -> String {
    let ca = ca_pem
        .map(|pem| {
            format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            )
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: leasehold\n  cluster:\n    server: {server}\n{ca}contexts:\n- name: leasehold\n  context:\n    cluster: leasehold\n    user: {user:?}\n    namespace: default\ncurrent-context: leasehold\nusers:\n- name: {user:?}\n  user:\n    token: {token:?}\npreferences: {{}}\n"
    )
}
