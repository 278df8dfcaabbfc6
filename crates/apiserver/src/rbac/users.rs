//! Users as the authenticator hands them to the authorizer: [`UserInfo`], the well-known users and groups
//! RBAC treats specially, and the user a service account's token stands for. Separate from the token file parser
//! because the authorizer and the server use these without ever reading a token file.

/// An authenticated user, as the authenticator hands it to the authorizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name RBAC subjects of kind `User` are compared with, and that deny messages show.
    pub name: String,
    /// The user's uid from the token file (informational; RBAC does not use it).
    pub uid: String,
    /// The groups RBAC subjects of kind `Group` are compared with. `system:authenticated` need
    /// not be listed: [`Authorizer::authorize`](super::Authorizer::authorize) treats every user as a member.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// `system:anonymous`, whom a request with no credentials is served as when anonymous auth is on.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS_USER.into(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
        }
    }

    /// Whether this is the anonymous user: not a member of `system:authenticated`.
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS_USER && self.groups.iter().any(|g| g == UNAUTHENTICATED_GROUP)
    }
}

/// The group every authenticated user belongs to.
pub(super) const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The user a request with no credentials is served as, when anonymous auth is on (kube-apiserver's default).
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The anonymous user's only group.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group that bypasses RBAC (kube-apiserver's privileged group).
pub(super) const MASTERS_GROUP: &str = "system:masters";

/// The user a service account's token authenticates as: `system:serviceaccount:<ns>:<name>`, in
/// groups `system:serviceaccounts`, `system:serviceaccounts:<ns>` and `system:authenticated`,
/// exactly as kube-apiserver's service account authenticator builds it, so that RBAC subjects of
/// kind `ServiceAccount` and those groups match.
pub fn service_account_user(namespace: &str, name: &str) -> UserInfo {
    UserInfo {
        name: format!("system:serviceaccount:{namespace}:{name}"),
        uid: String::new(),
        groups: vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{namespace}"),
            AUTHENTICATED_GROUP.to_string(),
        ],
    }
}
