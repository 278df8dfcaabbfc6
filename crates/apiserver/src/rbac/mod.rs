//! Bearer-token authentication data and RBAC authorization, modelled on kube-apiserver's
//! `--token-auth-file` and its RBAC authorizer (v1.28).
//!
//! [`parse_token_file`] reads the token CSV; [`Authorizer::from_yaml`] loads Role, ClusterRole,
//! RoleBinding and ClusterRoleBinding manifests; [`Authorizer::authorize`] decides one request
//! and, on denial, returns the exact message the real server puts into its 403 Status. Nothing
//! here does I/O: the server reads the files and passes their text in.
//!
//! The module is split by concern: `users` holds [`UserInfo`] and the well-known users and groups,
//! `token_file` parses the token CSV, `attributes` holds what the authorizer is asked and answers, `model` the
//! loaded RBAC objects, `authorize` the [`Authorizer`] itself, `load` and `manifest` read and check the
//! manifests, and `bootstrap` holds kube-apiserver's built-in policy.

mod attributes;
mod authorize;
mod bootstrap;
mod load;
mod manifest;
mod model;
mod token_file;
mod users;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use attributes::{Decision, RequestAttributes};
pub use authorize::Authorizer;
pub use token_file::parse_token_file;
pub use users::{ANONYMOUS_USER, UNAUTHENTICATED_GROUP, UserInfo, service_account_user};

/// Why a token file or an RBAC manifest was rejected. Each message names where the problem is
/// (line number, or source label and document index) and what is wrong, so an operator can fix
/// the file without guessing.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// A line of the token CSV is malformed (bad quoting, too few columns, empty or duplicate
    /// token).
    #[error("token file line {line}: {reason}")]
    TokenFile {
        /// 1-based line number where the record starts.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A manifest is not valid YAML. `document` counts non-empty documents from 1; parsing stops
    /// at a syntax error.
    #[error("{label}: document {document}: invalid YAML: {source}")]
    Yaml {
        /// The label the caller gave the text, usually its file path.
        label: String,
        /// 1-based index of the document that failed.
        document: usize,
        /// The YAML parser's error, with its line and column.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A document is valid YAML but not a valid RBAC object (missing field, wrong type,
    /// unsupported kind in a roleRef or subject, ...).
    #[error("{label}: document {document}{item}: {reason}")]
    InvalidObject {
        /// The label the caller gave the text, usually its file path.
        label: String,
        /// 1-based index of the document.
        document: usize,
        /// `", item N"` when the object came from a `kind: List`, otherwise empty.
        item: String,
        /// What is wrong, naming the object's kind and name when known.
        reason: String,
    },
}
