//! Bearer-token authentication data and RBAC authorization, modelled on kube-apiserver's
//! `--token-auth-file` and its RBAC authorizer (v1.28).
//!
//! [`parse_token_file`] reads the token CSV; [`Authorizer::from_yaml`] loads Role, ClusterRole,
//! RoleBinding and ClusterRoleBinding manifests; [`Authorizer::authorize`] decides one request
//! and, on denial, returns the exact message the real server puts into its 403 Status. Nothing
//! here does I/O: the server reads the files and passes their text in.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::go_text::go_quote;
use crate::selector::LabelSelector;

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

// ---------------------------------------------------------------------------------------------
// Users and the token file.
// ---------------------------------------------------------------------------------------------

/// An authenticated user, as the authenticator hands it to the authorizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name RBAC subjects of kind `User` are compared with, and that deny messages show.
    pub name: String,
    /// The user's uid from the token file (informational; RBAC does not use it).
    pub uid: String,
    /// The groups RBAC subjects of kind `Group` are compared with. `system:authenticated` need
    /// not be listed: [`Authorizer::authorize`] treats every user as a member.
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
const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The user a request with no credentials is served as, when anonymous auth is on (kube-apiserver's default).
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The anonymous user's only group.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group that bypasses RBAC (kube-apiserver's privileged group).
const MASTERS_GROUP: &str = "system:masters";

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

/// Parses kube-apiserver's `--token-auth-file` CSV: `token,user,uid,"group1,group2"`.
///
/// The groups column is optional and split on commas (empty names dropped); extra columns are
/// ignored. Fields follow CSV quoting (`"..."`, `""` for a quote, quoted fields may span lines);
/// spaces are kept, as Go's CSV reader keeps them. Blank lines and lines starting with `#` are
/// skipped. Unlike kube-apiserver, which only logs a warning, an empty token or a token listed
/// twice is an error: a pure function has nowhere to warn, and either is a mistake in a test
/// fixture. Tokens come back in file order.
pub fn parse_token_file(text: &str) -> Result<Vec<(String, UserInfo)>, RbacError> {
    let mut out: Vec<(String, UserInfo)> = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (line, record) in csv_records(text)? {
        if record.len() < 3 {
            return Err(RbacError::TokenFile {
                line,
                reason: format!(
                    "must have at least 3 columns (token, user name, user uid), found {}",
                    record.len()
                ),
            });
        }
        let token = record[0].clone();
        if token.is_empty() {
            return Err(RbacError::TokenFile {
                line,
                reason: "empty token".to_string(),
            });
        }
        if let Some(first) = first_line.get(&token) {
            return Err(RbacError::TokenFile {
                line,
                reason: format!("duplicate token (first defined on line {first})"),
            });
        }
        first_line.insert(token.clone(), line);
        let groups = record
            .get(3)
            .map(|g| {
                g.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        out.push((
            token,
            UserInfo {
                name: record[1].clone(),
                uid: record[2].clone(),
                groups,
            },
        ));
    }
    Ok(out)
}

/// Splits CSV text into records with their starting line numbers, with Go `encoding/csv` rules
/// (strict quotes), skipping blank lines and `#` comment lines.
fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, RbacError> {
    let chars: Vec<char> = text.chars().collect();
    let mut records = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let start_line = line;
        // Blank line (LF or CRLF) or comment line: skip to the next line.
        let rest_is_newline =
            chars[i] == '\n' || (chars[i] == '\r' && chars.get(i + 1) == Some(&'\n'));
        if rest_is_newline || chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            i += 1;
            line += 1;
            continue;
        }
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            if chars.get(i) == Some(&'"') {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(RbacError::TokenFile {
                                line: start_line,
                                reason:
                                    "extraneous or missing \" in quoted-field (quote not closed)"
                                        .to_string(),
                            });
                        }
                        Some('"') if chars.get(i + 1) == Some(&'"') => {
                            field.push('"');
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            if *c == '\n' {
                                line += 1;
                            }
                            field.push(*c);
                            i += 1;
                        }
                    }
                }
                match chars.get(i) {
                    None | Some(',') | Some('\n') => {}
                    Some('\r') if matches!(chars.get(i + 1), None | Some('\n')) => {}
                    Some(_) => {
                        return Err(RbacError::TokenFile {
                            line,
                            reason: "extraneous or missing \" in quoted-field".to_string(),
                        });
                    }
                }
            } else {
                while let Some(c) = chars.get(i) {
                    match c {
                        ',' | '\n' => break,
                        '\r' if matches!(chars.get(i + 1), None | Some('\n')) => break,
                        '"' => {
                            return Err(RbacError::TokenFile {
                                line,
                                reason: "bare \" in non-quoted field".to_string(),
                            });
                        }
                        c => {
                            field.push(*c);
                            i += 1;
                        }
                    }
                }
            }
            fields.push(field);
            match chars.get(i) {
                Some(',') => i += 1,
                Some('\r') => {
                    i += 2;
                    line += 1;
                    break;
                }
                Some('\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        records.push((start_line, fields));
    }
    Ok(records)
}

// ---------------------------------------------------------------------------------------------
// Requests and decisions.
// ---------------------------------------------------------------------------------------------

/// What a request asks for, as the RBAC authorizer sees it (kube-apiserver's `RequestInfo`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestAttributes<'a> {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; for
    /// non-resource requests the lower-cased HTTP method.
    pub verb: &'a str,
    /// `""` for the core group, e.g. `coordination.k8s.io`.
    pub api_group: &'a str,
    /// Plural resource, e.g. `leases`.
    pub resource: &'a str,
    /// e.g. `status`, or `""`.
    pub subresource: &'a str,
    /// `""` = cluster-scoped or all namespaces. Note that kube-apiserver sets this to the
    /// namespace's own name for requests on `/api/v1/namespaces/<name>`.
    pub namespace: &'a str,
    /// Object name, `""` for list/watch/create.
    pub name: &'a str,
    /// False for non-resource URLs like `/version`, `/api`, `/openapi/v2`.
    pub resource_request: bool,
    /// The request path; used only for non-resource requests.
    pub path: &'a str,
}

/// The authorizer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request must be answered 403 Forbidden.
    Deny {
        /// The Status `message`, exactly as kube-apiserver words it, e.g. `leases.coordination.k8s.io
        /// is forbidden: User "x" cannot list resource "leases" in API group
        /// "coordination.k8s.io" in the namespace "ref"`.
        message: String,
    },
}

// ---------------------------------------------------------------------------------------------
// RBAC model.
// ---------------------------------------------------------------------------------------------

/// One `PolicyRule`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PolicyRule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

impl PolicyRule {
    /// The RBAC authorizer's `RuleAllows`.
    fn allows(&self, a: &RequestAttributes<'_>) -> bool {
        let verb_ok = self.verbs.iter().any(|v| v == "*" || v == a.verb);
        if !verb_ok {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || u == a.path
                    || (u.ends_with('*') && a.path.starts_with(u.trim_end_matches('*')))
            });
        }
        let combined = if a.subresource.is_empty() {
            a.resource.to_string()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        self.api_groups.iter().any(|g| g == "*" || g == a.api_group)
            && self.resources.iter().any(|r| {
                r == "*"
                    || *r == combined
                    || (!a.subresource.is_empty()
                        && r.len() == a.subresource.len() + 2
                        && r.starts_with("*/")
                        && r.ends_with(a.subresource))
            })
            && (self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == a.name))
    }

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], urls: &[&str]) -> Self {
        let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_string()).collect();
        PolicyRule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            resource_names: Vec::new(),
            non_resource_urls: v(urls),
        }
    }
}

/// A binding subject, checked at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Subject {
    User(String),
    Group(String),
    /// `namespace` is `None` when the manifest left it to default to the binding's namespace.
    ServiceAccount {
        namespace: Option<String>,
        name: String,
    },
}

impl Subject {
    /// The RBAC authorizer's `appliesToUser`. `namespace` is the binding's namespace for a
    /// RoleBinding and empty for a ClusterRoleBinding.
    fn applies_to(&self, user: &UserInfo, namespace: &str) -> bool {
        match self {
            Subject::User(n) => user.name == *n,
            Subject::Group(g) => {
                (g == AUTHENTICATED_GROUP && !user.is_anonymous())
                    || user.groups.iter().any(|x| x == g)
            }
            Subject::ServiceAccount {
                namespace: ns,
                name,
            } => {
                let ns = ns.as_deref().unwrap_or(namespace);
                !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{name}")
            }
        }
    }
}

/// What a binding grants: a Role in the binding's namespace, or a ClusterRole.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RoleRef {
    Role(String),
    ClusterRole(String),
}

#[derive(Clone, Debug)]
struct Binding {
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

/// A loaded ClusterRole: its own rules, its labels (for aggregation) and its aggregation rule.
#[derive(Clone, Debug, Default)]
struct ClusterRole {
    rules: Vec<PolicyRule>,
    labels: BTreeMap<String, String>,
    aggregation: Option<Vec<LabelSelector>>,
}

#[derive(Clone, Debug, Default)]
struct Policy {
    /// Keyed by (namespace, name).
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    /// Effective rules (after aggregation), keyed by name.
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// In load order (built-in defaults first), like the lister's order.
    cluster_role_bindings: Vec<Binding>,
    /// Keyed by namespace, in load order.
    role_bindings: HashMap<String, Vec<Binding>>,
}

/// Decides requests the way kube-apiserver's authorizer chain does with
/// `--authorization-mode=RBAC`: `system:masters` is always allowed, then RBAC.
///
/// Besides the loaded manifests it carries kube-apiserver's bootstrap policy that matters here:
/// ClusterRoles `cluster-admin` (bound to `system:masters`), `system:discovery` and
/// `system:public-info-viewer` (discovery and health URLs, bound to `system:authenticated`) and
/// `system:basic-user` (self subject access/rules reviews). Manifests that define a ClusterRole
/// of the same name add to its rules, as the bootstrap reconciler would.
#[derive(Clone, Debug)]
pub struct Authorizer {
    /// `None` = allow every authenticated request.
    policy: Option<Policy>,
}

impl Authorizer {
    /// Allows every request of every authenticated user, for servers started without RBAC
    /// manifests (kube-apiserver's `--authorization-mode=AlwaysAllow`).
    pub fn allow_all() -> Self {
        Authorizer { policy: None }
    }

    /// Loads Role, ClusterRole, RoleBinding and ClusterRoleBinding objects
    /// (`rbac.authorization.k8s.io/v1`) from multi-document YAML texts, given as
    /// `(label, text)` pairs where the label (usually the file path) is only used in errors.
    ///
    /// Documents of other kinds (Namespace, ServiceAccount, DaemonSet, ... as in a kustomize
    /// output) are skipped; `kind: List` (or any `*List`) is unpacked. Namespaced objects without
    /// `metadata.namespace` go to `default`, as `kubectl apply` would put them. Objects are checked
    /// like the API server's validation would (names, roleRef kind and apiGroup, subject kinds,
    /// rule shape) so a broken manifest fails here rather than silently granting nothing.
    /// ClusterRole `aggregationRule`s are resolved over all loaded ClusterRoles. A later
    /// definition of the same object replaces an earlier one.
    pub fn from_yaml(sources: &[(&str, &str)]) -> Result<Self, RbacError> {
        let mut loader = Loader::default();
        for (label, text) in sources {
            let mut reader = text.as_bytes();
            let docs = serde_saphyr::read::<_, Value>(&mut reader);
            for (i, doc) in docs.enumerate() {
                let document = i + 1;
                let doc = doc.map_err(|source| RbacError::Yaml {
                    label: (*label).to_string(),
                    document,
                    source: Box::new(source),
                })?;
                let at = Where {
                    label,
                    document,
                    item: None,
                };
                loader.object(&at, &doc)?;
            }
        }
        Ok(Authorizer {
            policy: Some(loader.finish()),
        })
    }

    /// Decides one request for `user`.
    ///
    /// Every user counts as a member of `system:authenticated`. On denial the message is the
    /// one kube-apiserver sends, including its `: RBAC: ...` suffix when a binding that applies to
    /// the user refers to a Role or ClusterRole that does not exist.
    pub fn authorize(&self, user: &UserInfo, attrs: &RequestAttributes<'_>) -> Decision {
        let Some(policy) = &self.policy else {
            // Without manifests every authenticated user may do everything; the anonymous user, as under a real
            // server's default RBAC, nothing.
            if user.is_anonymous() {
                return Decision::Deny {
                    message: forbidden_message(user, attrs, ""),
                };
            }
            return Decision::Allow;
        };
        if user.groups.iter().any(|g| g == MASTERS_GROUP) {
            return Decision::Allow;
        }
        let mut errors: Vec<String> = Vec::new();
        let mut check = |bindings: &[Binding], namespace: &str| -> bool {
            for b in bindings {
                if !b.subjects.iter().any(|s| s.applies_to(user, namespace)) {
                    continue;
                }
                let rules = match &b.role_ref {
                    RoleRef::Role(name) => policy.roles.get(&(namespace.to_string(), name.clone())),
                    RoleRef::ClusterRole(name) => policy.cluster_roles.get(name),
                };
                match rules {
                    Some(rules) => {
                        if rules.iter().any(|r| r.allows(attrs)) {
                            return true;
                        }
                    }
                    None => errors.push(match &b.role_ref {
                        RoleRef::Role(n) => {
                            format!("role.rbac.authorization.k8s.io {} not found", go_quote(n))
                        }
                        RoleRef::ClusterRole(n) => format!(
                            "clusterrole.rbac.authorization.k8s.io {} not found",
                            go_quote(n)
                        ),
                    }),
                }
            }
            false
        };
        if check(&policy.cluster_role_bindings, "") {
            return Decision::Allow;
        }
        if !attrs.namespace.is_empty()
            && let Some(bindings) = policy.role_bindings.get(attrs.namespace)
            && check(bindings, attrs.namespace)
        {
            return Decision::Allow;
        }
        let reason = match errors.len() {
            0 => String::new(),
            1 => format!("RBAC: {}", errors[0]),
            _ => {
                let mut uniq: Vec<String> = Vec::new();
                for e in errors {
                    if !uniq.contains(&e) {
                        uniq.push(e);
                    }
                }
                if uniq.len() == 1 {
                    format!("RBAC: {}", uniq[0])
                } else {
                    format!("RBAC: [{}]", uniq.join(", "))
                }
            }
        };
        Decision::Deny {
            message: forbidden_message(user, attrs, &reason),
        }
    }
}

/// kube-apiserver's 403 message: `responsewriters.forbiddenMessage` wrapped by
/// `errors.NewForbidden`, with the authorizer's reason appended when there is one.
fn forbidden_message(user: &UserInfo, a: &RequestAttributes<'_>, reason: &str) -> String {
    let who = go_quote(&user.name);
    let mut msg = if !a.resource_request {
        format!("User {who} cannot {} path {}", a.verb, go_quote(a.path))
    } else {
        let resource = if a.subresource.is_empty() {
            a.resource.to_string()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        if a.namespace.is_empty() {
            format!(
                "User {who} cannot {} resource {} in API group {} at the cluster scope",
                a.verb,
                go_quote(&resource),
                go_quote(a.api_group)
            )
        } else {
            format!(
                "User {who} cannot {} resource {} in API group {} in the namespace {}",
                a.verb,
                go_quote(&resource),
                go_quote(a.api_group),
                go_quote(a.namespace)
            )
        }
    };
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    let (group, resource) = if a.resource_request {
        (a.api_group, a.resource)
    } else {
        ("", "")
    };
    if group.is_empty() && resource.is_empty() {
        return format!("forbidden: {msg}");
    }
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    if a.name.is_empty() {
        format!("{qualified} is forbidden: {msg}")
    } else {
        format!("{qualified} {} is forbidden: {msg}", go_quote(a.name))
    }
}

// ---------------------------------------------------------------------------------------------
// Loading manifests.
// ---------------------------------------------------------------------------------------------

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Where a document came from, for error messages.
struct Where<'a> {
    label: &'a str,
    document: usize,
    item: Option<usize>,
}

impl Where<'_> {
    fn err(&self, reason: impl Into<String>) -> RbacError {
        RbacError::InvalidObject {
            label: self.label.to_string(),
            document: self.document,
            item: self.item.map(|i| format!(", item {i}")).unwrap_or_default(),
            reason: reason.into(),
        }
    }
}

#[derive(Default)]
struct Loader {
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: BTreeMap<String, ClusterRole>,
    /// Keyed by name so that a later definition replaces an earlier one; the Vec keeps order.
    cluster_role_bindings: Vec<(String, Binding)>,
    role_bindings: Vec<((String, String), Binding)>,
}

impl Loader {
    fn object(&mut self, at: &Where<'_>, doc: &Value) -> Result<(), RbacError> {
        let Value::Object(obj) = doc else {
            return Err(at.err(format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                json_type(doc)
            )));
        };
        let kind = match obj.get("kind") {
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            _ => return Err(at.err("Object 'Kind' is missing")),
        };
        let api_version = match obj.get("apiVersion") {
            Some(Value::String(v)) => v.clone(),
            _ => String::new(),
        };
        if kind.ends_with("List")
            && let Some(items) = obj.get("items")
        {
            let Value::Array(items) = items else {
                return Err(at.err(format!(
                    "{kind}: items: expected a list, found {}",
                    json_type(items)
                )));
            };
            for (i, item) in items.iter().enumerate() {
                let inner = Where {
                    label: at.label,
                    document: at.document,
                    item: Some(i + 1),
                };
                self.object(&inner, item)?;
            }
            return Ok(());
        }
        if !matches!(
            kind.as_str(),
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
        ) {
            return Ok(());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        if group != RBAC_GROUP {
            // Same kind name in another API group (e.g. a CRD): not ours.
            return Ok(());
        }
        if version != "v1" {
            return Err(at.err(format!(
                "no matches for kind {} in version {}: only rbac.authorization.k8s.io/v1 is served",
                go_quote(&kind),
                go_quote(&api_version)
            )));
        }
        let meta = get_obj(obj, "metadata", "").map_err(|e| at.err(format!("{kind}: {e}")))?;
        let name = match meta.map(|m| get_str(m, "name", "metadata")).transpose() {
            Ok(Some(Some(n))) if !n.is_empty() => n,
            Ok(_) => {
                return Err(at.err(format!(
                    "{kind}: metadata.name: Required value: name is required"
                )));
            }
            Err(e) => return Err(at.err(format!("{kind}: {e}"))),
        };
        let here = |e: String| at.err(format!("{kind} {}: {e}", go_quote(&name)));
        let namespace = || -> Result<String, RbacError> {
            let ns = meta
                .map(|m| get_str(m, "namespace", "metadata"))
                .transpose()
                .map_err(&here)?
                .flatten()
                .unwrap_or_default();
            if ns.is_empty() {
                Ok("default".to_string())
            } else if is_dns1123_label(&ns) {
                Ok(ns)
            } else {
                Err(here(format!(
                    "metadata.namespace: Invalid value: {}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                    go_quote(&ns)
                )))
            }
        };
        match kind.as_str() {
            "Role" | "ClusterRole" => {
                let cluster = kind == "ClusterRole";
                let mut rules = Vec::new();
                for (i, item) in get_list(obj, "rules", "")
                    .map_err(&here)?
                    .iter()
                    .enumerate()
                {
                    let path = format!("rules[{i}]");
                    let r = as_obj(item, &path).map_err(&here)?;
                    let rule = PolicyRule {
                        verbs: get_strings(r, "verbs", &path).map_err(&here)?,
                        api_groups: get_strings(r, "apiGroups", &path).map_err(&here)?,
                        resources: get_strings(r, "resources", &path).map_err(&here)?,
                        resource_names: get_strings(r, "resourceNames", &path).map_err(&here)?,
                        non_resource_urls: get_strings(r, "nonResourceURLs", &path)
                            .map_err(&here)?,
                    };
                    validate_rule(&rule, cluster).map_err(|e| here(format!("{path}.{e}")))?;
                    rules.push(rule);
                }
                if !cluster {
                    let ns = namespace()?;
                    self.roles.insert((ns, name), rules);
                    return Ok(());
                }
                let labels = match meta {
                    Some(m) => get_string_map(m, "labels", "metadata").map_err(&here)?,
                    None => BTreeMap::new(),
                };
                let aggregation = match get_obj(obj, "aggregationRule", "").map_err(&here)? {
                    None => None,
                    Some(agg) => {
                        let mut selectors = Vec::new();
                        let list = get_list(agg, "clusterRoleSelectors", "aggregationRule")
                            .map_err(&here)?;
                        for (i, item) in list.iter().enumerate() {
                            let path = format!("aggregationRule.clusterRoleSelectors[{i}]");
                            selectors.push(label_selector(item, &path).map_err(&here)?);
                        }
                        Some(selectors)
                    }
                };
                self.cluster_roles.insert(
                    name,
                    ClusterRole {
                        rules,
                        labels,
                        aggregation,
                    },
                );
            }
            _ => {
                let cluster = kind == "ClusterRoleBinding";
                let Some(rr) = get_obj(obj, "roleRef", "").map_err(&here)? else {
                    return Err(here("roleRef: Required value".to_string()));
                };
                let rr_group = get_str(rr, "apiGroup", "roleRef")
                    .map_err(&here)?
                    .unwrap_or_default();
                let rr_kind = get_str(rr, "kind", "roleRef")
                    .map_err(&here)?
                    .unwrap_or_default();
                let rr_name = get_str(rr, "name", "roleRef")
                    .map_err(&here)?
                    .unwrap_or_default();
                if rr_group != RBAC_GROUP {
                    return Err(here(format!(
                        "roleRef.apiGroup: Unsupported value: {}: supported values: \"rbac.authorization.k8s.io\"",
                        go_quote(&rr_group)
                    )));
                }
                let role_ref = match (rr_kind.as_str(), cluster) {
                    ("ClusterRole", _) => RoleRef::ClusterRole(rr_name.clone()),
                    ("Role", false) => RoleRef::Role(rr_name.clone()),
                    (k, true) => {
                        return Err(here(format!(
                            "roleRef.kind: Unsupported value: {}: supported values: \"ClusterRole\"",
                            go_quote(k)
                        )));
                    }
                    (k, false) => {
                        return Err(here(format!(
                            "roleRef.kind: Unsupported value: {}: supported values: \"Role\", \"ClusterRole\"",
                            go_quote(k)
                        )));
                    }
                };
                if rr_name.is_empty() {
                    return Err(here("roleRef.name: Required value".to_string()));
                }
                let mut subjects = Vec::new();
                for (i, item) in get_list(obj, "subjects", "")
                    .map_err(&here)?
                    .iter()
                    .enumerate()
                {
                    let path = format!("subjects[{i}]");
                    subjects.push(subject(item, &path, cluster).map_err(&here)?);
                }
                let b = Binding { role_ref, subjects };
                if cluster {
                    self.cluster_role_bindings.retain(|(n, _)| *n != name);
                    self.cluster_role_bindings.push((name, b));
                } else {
                    let key = (namespace()?, name);
                    self.role_bindings.retain(|(k, _)| *k != key);
                    self.role_bindings.push((key, b));
                }
            }
        }
        Ok(())
    }

    /// Adds the bootstrap policy, resolves aggregation and indexes bindings.
    fn finish(self) -> Policy {
        let mut cluster_roles = self.cluster_roles;
        for (name, rules) in bootstrap_cluster_roles() {
            let entry = cluster_roles.entry(name.to_string()).or_default();
            for r in rules {
                if !entry.rules.contains(&r) {
                    entry.rules.push(r);
                }
            }
        }
        // Aggregation, iterated to a fixed point so that aggregated roles that are themselves
        // selected (admin <- edit <- view) end up with everything, as the controller converges.
        let mut effective: BTreeMap<String, Vec<PolicyRule>> = cluster_roles
            .iter()
            .map(|(n, r)| (n.clone(), r.rules.clone()))
            .collect();
        for _ in 0..=cluster_roles.len() {
            let mut changed = false;
            for (name, role) in &cluster_roles {
                let Some(selectors) = &role.aggregation else {
                    continue;
                };
                let mut rules: Vec<PolicyRule> = Vec::new();
                for (other, other_role) in &cluster_roles {
                    if other == name || !selectors.iter().any(|s| s.matches(&other_role.labels)) {
                        continue;
                    }
                    for r in effective.get(other).into_iter().flatten() {
                        if !rules.contains(r) {
                            rules.push(r.clone());
                        }
                    }
                }
                if effective.get(name) != Some(&rules) {
                    effective.insert(name.clone(), rules);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut cluster_role_bindings = bootstrap_cluster_role_bindings();
        cluster_role_bindings.extend(self.cluster_role_bindings.into_iter().map(|(_, b)| b));
        let mut role_bindings: HashMap<String, Vec<Binding>> = HashMap::new();
        for ((ns, _), b) in self.role_bindings {
            role_bindings.entry(ns).or_default().push(b);
        }
        Policy {
            roles: self.roles,
            cluster_roles: effective.into_iter().collect(),
            cluster_role_bindings,
            role_bindings,
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// `path.key`, or just `key` at the top level: the field paths used in error messages.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn as_obj<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, String> {
    match v {
        Value::Object(o) => Ok(o),
        other => Err(format!(
            "{path}: expected a mapping, found {}",
            json_type(other)
        )),
    }
}

/// An optional mapping field (`null` counts as absent).
fn get_obj<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_obj(v, &join(path, key)).map(Some),
    }
}

/// An optional list field (`null` counts as empty).
fn get_list<'a>(o: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a [Value], String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(format!(
            "{}: expected a list, found {}",
            join(path, key),
            json_type(other)
        )),
    }
}

/// An optional string field (`null` counts as absent).
fn get_str(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "{}: expected a string, found {}",
            join(path, key),
            json_type(other)
        )),
    }
}

/// An optional list-of-strings field.
fn get_strings(o: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<String>, String> {
    let path = join(path, key);
    let list = match o.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(format!(
                "{path}: expected a list of strings, found {}",
                json_type(other)
            ));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!(
                "{path}[{i}]: expected a string, found {}",
                json_type(other)
            )),
        })
        .collect()
}

/// An optional string-to-string mapping field (labels, matchLabels).
fn get_string_map(
    o: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<BTreeMap<String, String>, String> {
    let path = join(path, key);
    let Some(m) =
        get_obj(o, key, "").map_err(|_| format!("{path}: expected a mapping of strings"))?
    else {
        return Ok(BTreeMap::new());
    };
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!(
                "{path}.{k}: expected a string, found {}",
                json_type(other)
            )),
        })
        .collect()
}

/// A `metav1.LabelSelector` (`matchLabels`, `matchExpressions`) as a [`LabelSelector`].
fn label_selector(v: &Value, path: &str) -> Result<LabelSelector, String> {
    let o = as_obj(v, path)?;
    let match_labels = get_string_map(o, "matchLabels", path)?;
    let mut exprs = Vec::new();
    for (i, e) in get_list(o, "matchExpressions", path)?.iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let e = as_obj(e, &p)?;
        exprs.push((
            get_str(e, "key", &p)?.unwrap_or_default(),
            get_str(e, "operator", &p)?.unwrap_or_default(),
            get_strings(e, "values", &p)?,
        ));
    }
    LabelSelector::from_match(&match_labels, &exprs).map_err(|e| format!("{path}: {e}"))
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let end_ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.len() <= 63
        && b.first().is_some_and(end_ok)
        && b.last().is_some_and(end_ok)
        && b.iter().all(|c| end_ok(c) || *c == b'-')
}

/// The API server's `ValidatePolicyRule`, with its wording.
fn validate_rule(r: &PolicyRule, cluster: bool) -> Result<(), String> {
    if r.verbs.is_empty() {
        return Err("verbs: Required value: verbs must contain at least one value".to_string());
    }
    if !r.non_resource_urls.is_empty() {
        if !cluster {
            return Err(
                "nonResourceURLs: Invalid value: namespaced rules cannot apply to non-resource URLs"
                    .to_string(),
            );
        }
        if !r.api_groups.is_empty() || !r.resources.is_empty() || !r.resource_names.is_empty() {
            return Err(
                "nonResourceURLs: Invalid value: rules cannot apply to both regular resources and non-resource URLs"
                    .to_string(),
            );
        }
        return Ok(());
    }
    if r.api_groups.is_empty() {
        return Err(
            "apiGroups: Required value: resource rules must supply at least one api group"
                .to_string(),
        );
    }
    if r.resources.is_empty() {
        return Err(
            "resources: Required value: resource rules must supply at least one resource"
                .to_string(),
        );
    }
    Ok(())
}

/// Checks one binding subject like the API server's `ValidateRoleBindingSubject`.
fn subject(v: &Value, path: &str, cluster: bool) -> Result<Subject, String> {
    let o = as_obj(v, path)?;
    let kind = get_str(o, "kind", path)?.unwrap_or_default();
    let name = get_str(o, "name", path)?.unwrap_or_default();
    let group = get_str(o, "apiGroup", path)?.unwrap_or_default();
    let namespace = get_str(o, "namespace", path)?.filter(|n| !n.is_empty());
    if name.is_empty() {
        return Err(format!("{path}.name: Required value"));
    }
    match kind.as_str() {
        "ServiceAccount" => {
            if !group.is_empty() {
                return Err(format!(
                    "{path}.apiGroup: Unsupported value: {}: supported values: \"\"",
                    go_quote(&group)
                ));
            }
            if cluster && namespace.is_none() {
                return Err(format!("{path}.namespace: Required value"));
            }
            Ok(Subject::ServiceAccount { namespace, name })
        }
        "User" | "Group" => {
            // An omitted apiGroup is accepted: the API server defaults it for these kinds.
            if !group.is_empty() && group != RBAC_GROUP {
                return Err(format!(
                    "{path}.apiGroup: Unsupported value: {}: supported values: \"rbac.authorization.k8s.io\"",
                    go_quote(&group)
                ));
            }
            Ok(if kind == "User" {
                Subject::User(name)
            } else {
                Subject::Group(name)
            })
        }
        other => Err(format!(
            "{path}.kind: Unsupported value: {}: supported values: \"ServiceAccount\", \"User\", \"Group\"",
            go_quote(other)
        )),
    }
}

/// The part of kube-apiserver's bootstrap ClusterRoles that applies to this server.
fn bootstrap_cluster_roles() -> Vec<(&'static str, Vec<PolicyRule>)> {
    vec![
        (
            "cluster-admin",
            vec![
                PolicyRule::rule(&["*"], &["*"], &["*"], &[]),
                PolicyRule::rule(&["*"], &[], &[], &["*"]),
            ],
        ),
        (
            "system:discovery",
            vec![PolicyRule::rule(
                &["get"],
                &[],
                &[],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        (
            "system:public-info-viewer",
            vec![PolicyRule::rule(
                &["get"],
                &[],
                &[],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        (
            "system:basic-user",
            vec![
                PolicyRule::rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &[],
                ),
                PolicyRule::rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &[],
                ),
            ],
        ),
    ]
}

/// kube-apiserver's bootstrap ClusterRoleBindings for the roles above.
fn bootstrap_cluster_role_bindings() -> Vec<Binding> {
    let to = |role: &str, groups: &[&str]| Binding {
        role_ref: RoleRef::ClusterRole(role.to_string()),
        subjects: groups
            .iter()
            .map(|g| Subject::Group((*g).to_string()))
            .collect(),
    };
    vec![
        to("cluster-admin", &[MASTERS_GROUP]),
        to("system:discovery", &[AUTHENTICATED_GROUP]),
        to(
            "system:public-info-viewer",
            &[AUTHENTICATED_GROUP, "system:unauthenticated"],
        ),
        to("system:basic-user", &[AUTHENTICATED_GROUP]),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.to_string(),
            uid: String::new(),
            groups: groups.iter().map(|g| (*g).to_string()).collect(),
        }
    }

    fn res<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        ns: &'a str,
    ) -> RequestAttributes<'a> {
        RequestAttributes {
            verb,
            api_group: group,
            resource,
            namespace: ns,
            resource_request: true,
            ..Default::default()
        }
    }

    fn path<'a>(verb: &'a str, p: &'a str) -> RequestAttributes<'a> {
        RequestAttributes {
            verb,
            path: p,
            resource_request: false,
            ..Default::default()
        }
    }

    fn load(yaml: &str) -> Authorizer {
        Authorizer::from_yaml(&[("rbac.yaml", yaml)]).unwrap_or_else(|e| panic!("load: {e}"))
    }

    fn load_err(yaml: &str) -> String {
        match Authorizer::from_yaml(&[("rbac.yaml", yaml)]) {
            Ok(_) => panic!("should fail"),
            Err(e) => e.to_string(),
        }
    }

    fn allowed(a: &Authorizer, u: &UserInfo, r: &RequestAttributes<'_>) -> bool {
        a.authorize(u, r) == Decision::Allow
    }

    fn denied(a: &Authorizer, u: &UserInfo, r: &RequestAttributes<'_>) -> String {
        match a.authorize(u, r) {
            Decision::Allow => panic!("{r:?} should be denied for {u:?}"),
            Decision::Deny { message } => message,
        }
    }

    const LEASE_ROLE: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: ref
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: agent
  namespace: ref
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: lease-rw
  namespace: ref
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get", "list", "watch", "create", "update", "patch"]
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    resourceNames: ["only-this"]
    verbs: ["delete"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: lease-rw
  namespace: ref
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: lease-rw
subjects:
  - kind: User
    apiGroup: rbac.authorization.k8s.io
    name: lease-agent
  - kind: ServiceAccount
    name: agent
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: ref
spec:
  template:
    spec:
      containers: [{name: a, image: x}]
"#;

    #[test]
    fn corpus_deny_message() {
        let a = load("");
        let msg = denied(
            &a,
            &user("lease-agent", &[]),
            &res("list", "coordination.k8s.io", "leases", "ref"),
        );
        assert_eq!(
            msg,
            "leases.coordination.k8s.io is forbidden: User \"lease-agent\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"ref\""
        );
    }

    #[test]
    fn deny_message_shapes() {
        let a = load("");
        let x = user("x", &[]);
        assert_eq!(
            denied(&a, &x, &res("list", "", "namespaces", "")),
            "namespaces is forbidden: User \"x\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        );
        let mut r = res("get", "", "secrets", "ns");
        r.name = "s1";
        assert_eq!(
            denied(&a, &x, &r),
            "secrets \"s1\" is forbidden: User \"x\" cannot get resource \"secrets\" in API group \"\" in the namespace \"ns\""
        );
        let mut r = res("get", "coordination.k8s.io", "leases", "ref");
        r.subresource = "status";
        r.name = "l1";
        assert_eq!(
            denied(&a, &x, &r),
            "leases.coordination.k8s.io \"l1\" is forbidden: User \"x\" cannot get resource \"leases/status\" in API group \"coordination.k8s.io\" in the namespace \"ref\""
        );
        assert_eq!(
            denied(&a, &x, &path("get", "/foo")),
            "forbidden: User \"x\" cannot get path \"/foo\""
        );
        assert_eq!(
            denied(&a, &x, &path("post", "/version")),
            "forbidden: User \"x\" cannot post path \"/version\""
        );
    }

    #[test]
    fn role_binding_allows_in_its_namespace_only() {
        let a = load(LEASE_ROLE);
        let u = user("lease-agent", &[]);
        for verb in ["get", "list", "watch", "create", "update", "patch"] {
            assert!(
                allowed(&a, &u, &res(verb, "coordination.k8s.io", "leases", "ref")),
                "{verb}"
            );
        }
        assert!(allowed(&a, &u, &res("create", "", "events", "ref")));
        assert!(!allowed(&a, &u, &res("list", "", "events", "ref")));
        assert!(!allowed(
            &a,
            &u,
            &res("list", "coordination.k8s.io", "leases", "other")
        ));
        assert!(
            !allowed(&a, &u, &res("list", "coordination.k8s.io", "leases", "")),
            "all-namespace list needs a ClusterRoleBinding"
        );
        assert!(
            !allowed(&a, &u, &res("list", "apps", "leases", "ref")),
            "group must match"
        );
        assert!(!allowed(
            &a,
            &user("someone-else", &[]),
            &res("list", "coordination.k8s.io", "leases", "ref")
        ));
    }

    #[test]
    fn resource_names_restrict_by_name() {
        let a = load(LEASE_ROLE);
        let u = user("lease-agent", &[]);
        let mut r = res("delete", "coordination.k8s.io", "leases", "ref");
        r.name = "only-this";
        assert!(allowed(&a, &u, &r));
        r.name = "another";
        assert!(!allowed(&a, &u, &r));
        r.name = "";
        assert!(
            !allowed(&a, &u, &r),
            "deletecollection-like requests without a name are not covered"
        );
    }

    #[test]
    fn service_account_subjects() {
        let a = load(LEASE_ROLE);
        let sa = service_account_user("ref", "agent");
        assert_eq!(sa.name, "system:serviceaccount:ref:agent");
        assert_eq!(
            sa.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:ref",
                "system:authenticated"
            ]
        );
        assert!(allowed(
            &a,
            &sa,
            &res("get", "coordination.k8s.io", "leases", "ref")
        ));
        // Same SA name in another namespace is a different user.
        let other = service_account_user("other", "agent");
        assert!(!allowed(
            &a,
            &other,
            &res("get", "coordination.k8s.io", "leases", "ref")
        ));

        let a = load(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: lease-reader}
rules:
- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: sa-lease-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lease-reader}
subjects:
- {kind: ServiceAccount, name: agent, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: all-sas-in-ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lease-reader}
subjects:
- {kind: Group, apiGroup: rbac.authorization.k8s.io, name: "system:serviceaccounts:team"}
"#,
        );
        let sa = service_account_user("kube-system", "agent");
        assert!(allowed(
            &a,
            &sa,
            &res("list", "coordination.k8s.io", "leases", "")
        ));
        assert!(allowed(
            &a,
            &sa,
            &res("list", "coordination.k8s.io", "leases", "anything")
        ));
        assert!(!allowed(
            &a,
            &sa,
            &res("create", "coordination.k8s.io", "leases", "anything")
        ));
        let team = service_account_user("team", "whoever");
        assert!(allowed(
            &a,
            &team,
            &res("watch", "coordination.k8s.io", "leases", "x")
        ));
    }

    #[test]
    fn role_binding_to_cluster_role_is_scoped_to_its_namespace() {
        let a = load(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: lease-admin}
rules:
- {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: b, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lease-admin}
subjects:
- {kind: Group, apiGroup: rbac.authorization.k8s.io, name: devs}
"#,
        );
        let dev = user("d", &["devs"]);
        assert!(allowed(
            &a,
            &dev,
            &res("delete", "coordination.k8s.io", "leases", "team-a")
        ));
        assert!(allowed(&a, &dev, &res("create", "", "events", "team-a")));
        assert!(!allowed(
            &a,
            &dev,
            &res("delete", "coordination.k8s.io", "leases", "team-b")
        ));
        assert!(!allowed(&a, &dev, &res("list", "", "namespaces", "")));
    }

    #[test]
    fn wildcards_and_subresources() {
        let a = load(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: c}
rules:
- {apiGroups: [coordination.k8s.io], resources: [leases/status], verbs: [update]}
- {apiGroups: ["*"], resources: ["*/scale"], verbs: [get]}
- {apiGroups: [""], resources: [events], verbs: ["*"]}
- {nonResourceURLs: ["/metrics", "/debug/*"], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: c}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: c}
subjects: [{kind: User, name: u, apiGroup: rbac.authorization.k8s.io}]
"#,
        );
        let u = user("u", &[]);
        let mut r = res("update", "coordination.k8s.io", "leases", "ns");
        assert!(!allowed(&a, &u, &r), "leases/status does not grant leases");
        r.subresource = "status";
        assert!(allowed(&a, &u, &r));
        let mut r = res("get", "apps", "deployments", "ns");
        r.subresource = "scale";
        assert!(allowed(&a, &u, &r), "*/scale matches any resource's scale");
        r.subresource = "status";
        assert!(!allowed(&a, &u, &r));
        for verb in ["get", "create", "deletecollection"] {
            assert!(allowed(&a, &u, &res(verb, "", "events", "x")));
        }
        assert!(!allowed(
            &a,
            &u,
            &res("get", "events.k8s.io", "events", "x")
        ));
        assert!(allowed(&a, &u, &path("get", "/metrics")));
        assert!(!allowed(&a, &u, &path("get", "/metrics/x")));
        assert!(allowed(&a, &u, &path("get", "/debug/pprof/heap")));
        assert!(!allowed(&a, &u, &path("post", "/debug/pprof")));
    }

    #[test]
    fn masters_bypass_rbac() {
        let a = load(LEASE_ROLE);
        let admin = user("admin", &["system:masters"]);
        assert!(allowed(&a, &admin, &res("delete", "", "namespaces", "")));
        assert!(allowed(&a, &admin, &path("post", "/anything")));
    }

    #[test]
    fn discovery_is_always_allowed() {
        let a = load(LEASE_ROLE);
        let nobody = user("nobody", &[]);
        for p in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/coordination.k8s.io/v1",
            "/version",
            "/openapi/v2",
            "/openapi/v3/apis/x",
            "/healthz",
            "/readyz",
            "/livez",
        ] {
            assert!(allowed(&a, &nobody, &path("get", p)), "{p}");
        }
        assert!(!allowed(&a, &nobody, &path("get", "/metrics")));
        assert!(!allowed(&a, &nobody, &path("get", "/apisx")));
        assert!(!allowed(&a, &nobody, &path("post", "/api")));
        let mut r = res(
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
        );
        r.resource_request = true;
        assert!(allowed(&a, &nobody, &r), "system:basic-user");
    }

    #[test]
    fn allow_all_allows_everything() {
        let a = Authorizer::allow_all();
        assert!(allowed(
            &a,
            &user("x", &[]),
            &res("delete", "", "namespaces", "")
        ));
        assert!(allowed(&a, &user("x", &[]), &path("post", "/x")));
    }

    #[test]
    fn authenticated_group_binding_applies_to_everyone() {
        let a = load(
            r#"
kind: ClusterRoleBinding
apiVersion: rbac.authorization.k8s.io/v1
metadata: {name: all}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ns-reader}
subjects: [{kind: Group, name: "system:authenticated", apiGroup: rbac.authorization.k8s.io}]
---
kind: ClusterRole
apiVersion: rbac.authorization.k8s.io/v1
metadata: {name: ns-reader}
rules: [{apiGroups: [""], resources: [namespaces], verbs: [get, list]}]
"#,
        );
        assert!(allowed(
            &a,
            &user("anyone", &[]),
            &res("list", "", "namespaces", "")
        ));
    }

    #[test]
    fn missing_role_adds_rbac_reason() {
        let a = load(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: b, namespace: ref}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: missing}
subjects: [{kind: User, name: u, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: c}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: u, apiGroup: rbac.authorization.k8s.io}]
"#,
        );
        let u = user("u", &[]);
        assert_eq!(
            denied(&a, &u, &res("list", "coordination.k8s.io", "leases", "ref")),
            "leases.coordination.k8s.io is forbidden: User \"u\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"ref\": RBAC: [clusterrole.rbac.authorization.k8s.io \"view\" not found, role.rbac.authorization.k8s.io \"missing\" not found]"
        );
        assert_eq!(
            denied(&a, &u, &res("list", "", "namespaces", "")),
            "namespaces is forbidden: User \"u\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io \"view\" not found"
        );
        // Bindings that do not apply to the user add nothing.
        assert_eq!(
            denied(&a, &user("v", &[]), &res("list", "", "namespaces", "")),
            "namespaces is forbidden: User \"v\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        );
    }

    #[test]
    fn list_kind_is_unpacked_and_namespace_defaults() {
        let a = load(
            r#"
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: r}
  rules: [{apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: r}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
  subjects: [{kind: User, name: u, apiGroup: rbac.authorization.k8s.io}]
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: x}
  data: {a: b}
"#,
        );
        let u = user("u", &[]);
        assert!(allowed(
            &a,
            &u,
            &res("get", "coordination.k8s.io", "leases", "default")
        ));
        assert!(!allowed(
            &a,
            &u,
            &res("get", "coordination.k8s.io", "leases", "other")
        ));
    }

    #[test]
    fn multiple_sources_and_later_definitions_win() {
        let first = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: c}
rules: [{apiGroups: [""], resources: [events], verbs: [get]}]
"#;
        let second = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: c}
rules: [{apiGroups: [""], resources: [events], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: c}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: c}
subjects: [{kind: User, name: u, apiGroup: rbac.authorization.k8s.io}]
"#;
        let a = Authorizer::from_yaml(&[("a.yaml", first), ("b.yaml", second)]).unwrap();
        let u = user("u", &[]);
        assert!(allowed(&a, &u, &res("list", "", "events", "x")));
        assert!(!allowed(&a, &u, &res("get", "", "events", "x")));
    }

    #[test]
    fn cluster_role_aggregation() {
        let a = load(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agg}
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {rbac.example.com/aggregate-to-agg: "true"}
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: part
  labels: {rbac.example.com/aggregate-to-agg: "true"}
rules: [{apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: not-part}
rules: [{apiGroups: [""], resources: [events], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: agg}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agg}
subjects: [{kind: User, name: u, apiGroup: rbac.authorization.k8s.io}]
"#,
        );
        let u = user("u", &[]);
        assert!(allowed(
            &a,
            &u,
            &res("get", "coordination.k8s.io", "leases", "x")
        ));
        assert!(!allowed(&a, &u, &res("get", "", "events", "x")));
    }

    #[test]
    fn other_kinds_and_groups_are_skipped() {
        let a = load(
            r#"
# a kustomize-like output
apiVersion: v1
kind: Namespace
metadata: {name: leasehold}
---
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: leasehold, namespace: leasehold}
---
apiVersion: example.com/v1
kind: Role
metadata: {name: not-rbac}
spec: {whatever: true}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: leasehold, namespace: leasehold}
spec: {}
"#,
        );
        assert!(!allowed(
            &a,
            &user("u", &[]),
            &res("get", "", "events", "x")
        ));
    }

    #[test]
    fn bad_yaml_names_source_and_document() {
        let err = Authorizer::from_yaml(&[
            (
                "ok.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
            ),
            (
                "deploy/rbac.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [unclosed\n",
            ),
        ])
        .err()
        .unwrap();
        let msg = err.to_string();
        assert!(
            msg.starts_with("deploy/rbac.yaml: document 2: invalid YAML: "),
            "{msg}"
        );
        assert!(matches!(err, RbacError::Yaml { document: 2, .. }));
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn invalid_objects_name_source_document_and_problem() {
        let binding = |role_ref: &str, subjects: &str| {
            format!(
                "apiVersion: v1\nkind: Namespace\nmetadata: {{name: a}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: b, namespace: ns}}\nroleRef: {role_ref}\nsubjects: {subjects}\n"
            )
        };
        let users = "[{kind: User, name: u, apiGroup: rbac.authorization.k8s.io}]";
        let cases: Vec<(String, &str)> = vec![
            (binding("{apiGroup: rbac.authorization.k8s.io, kind: Pod, name: r}", users),
             "rbac.yaml: document 2: RoleBinding \"b\": roleRef.kind: Unsupported value: \"Pod\": supported values: \"Role\", \"ClusterRole\""),
            (binding("{apiGroup: example.com, kind: Role, name: r}", users),
             "rbac.yaml: document 2: RoleBinding \"b\": roleRef.apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\""),
            (binding("{apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}", "[{kind: Robot, name: x}]"),
             "rbac.yaml: document 2: RoleBinding \"b\": subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\""),
            (binding("{apiGroup: rbac.authorization.k8s.io, kind: Role}", users),
             "rbac.yaml: document 2: RoleBinding \"b\": roleRef.name: Required value"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: c}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\n".to_string(),
             "rbac.yaml: document 1: ClusterRoleBinding \"c\": roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\""),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: c}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: r}\nsubjects: [{kind: ServiceAccount, name: sa}]\n".to_string(),
             "rbac.yaml: document 1: ClusterRoleBinding \"c\": subjects[0].namespace: Required value"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {namespace: x}\n".to_string(),
             "rbac.yaml: document 1: Role: metadata.name: Required value: name is required"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules: [{apiGroups: [\"\"], resources: [pods]}]\n".to_string(),
             "rbac.yaml: document 1: Role \"r\": rules[0].verbs: Required value: verbs must contain at least one value"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules: [{nonResourceURLs: [/x], verbs: [get]}]\n".to_string(),
             "rbac.yaml: document 1: Role \"r\": rules[0].nonResourceURLs: Invalid value: namespaced rules cannot apply to non-resource URLs"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\nrules: [{resources: [pods], verbs: [get]}]\n".to_string(),
             "rbac.yaml: document 1: ClusterRole \"r\": rules[0].apiGroups: Required value: resource rules must supply at least one api group"),
            ("apiVersion: rbac.authorization.k8s.io/v1beta1\nkind: Role\nmetadata: {name: r}\n".to_string(),
             "rbac.yaml: document 1: no matches for kind \"Role\" in version \"rbac.authorization.k8s.io/v1beta1\": only rbac.authorization.k8s.io/v1 is served"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules: {verbs: [get]}\n".to_string(),
             "rbac.yaml: document 1: Role \"r\": rules: expected a list, found a mapping"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules: [{verbs: get}]\n".to_string(),
             "rbac.yaml: document 1: Role \"r\": rules[0].verbs: expected a list of strings, found a string"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b, namespace: Bad_NS}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\n".to_string(),
             "rbac.yaml: document 1: RoleBinding \"b\": metadata.namespace: Invalid value: \"Bad_NS\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: c}\n".to_string(),
             "rbac.yaml: document 1: ClusterRoleBinding \"c\": roleRef: Required value"),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: agg}\naggregationRule:\n  clusterRoleSelectors:\n  - matchExpressions: [{key: a, operator: Near}]\n".to_string(),
             "rbac.yaml: document 1: ClusterRole \"agg\": aggregationRule.clusterRoleSelectors[0]: \"Near\" is not a valid label selector operator"),
            ("just a string\n".to_string(),
             "rbac.yaml: document 1: expected a Kubernetes object (a mapping with apiVersion and kind), found a string"),
            ("metadata: {name: x}\n".to_string(),
             "rbac.yaml: document 1: Object 'Kind' is missing"),
            ("kind: List\napiVersion: v1\nitems:\n- kind: Role\n  apiVersion: rbac.authorization.k8s.io/v1\n  metadata: {name: ok}\n- kind: Role\n  apiVersion: rbac.authorization.k8s.io/v1\n".to_string(),
             "rbac.yaml: document 1, item 2: Role: metadata.name: Required value: name is required"),
        ];
        for (yaml, want) in cases {
            assert_eq!(load_err(&yaml), want, "yaml:\n{yaml}");
        }
    }

    #[test]
    fn token_file_parses_like_kube_apiserver() {
        let text = "# comment\n\nt1,alice,uid-1\r\nt2,bob,uid-2,\"system:masters,devs\"\n\"t,3\",\"c \"\"q\"\"\",u3,solo,extra\nt4,dave,u4,\n";
        let got = parse_token_file(text).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[0],
            (
                "t1".into(),
                UserInfo {
                    name: "alice".into(),
                    uid: "uid-1".into(),
                    groups: vec![]
                }
            )
        );
        assert_eq!(got[1].1.groups, vec!["system:masters", "devs"]);
        assert_eq!(got[2].0, "t,3");
        assert_eq!(got[2].1.name, "c \"q\"");
        assert_eq!(got[2].1.groups, vec!["solo"]);
        assert_eq!(got[3].1.groups, Vec::<String>::new());
        assert!(parse_token_file("").unwrap().is_empty());
        assert_eq!(parse_token_file("a,b,c").unwrap().len(), 1);
    }

    #[test]
    fn token_file_errors_name_the_line() {
        let cases = [
            (
                "t1,a,u\nt2,b\n",
                "token file line 2: must have at least 3 columns (token, user name, user uid), found 2",
            ),
            ("# c\n,a,u\n", "token file line 2: empty token"),
            (
                "t,a,u\n\nt,b,u\n",
                "token file line 3: duplicate token (first defined on line 1)",
            ),
            (
                "t,a\"b,u\n",
                "token file line 1: bare \" in non-quoted field",
            ),
            (
                "t,\"a\"b,u\n",
                "token file line 1: extraneous or missing \" in quoted-field",
            ),
            (
                "x,y,z\nt,\"a,u\n",
                "token file line 2: extraneous or missing \" in quoted-field (quote not closed)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_token_file(text).unwrap_err().to_string(),
                want,
                "{text:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn token_file_never_panics(s in "[a-z,\"#\r\n ]{0,60}") {
            let _ = parse_token_file(&s);
        }

        #[test]
        fn token_file_never_panics_any(s in ".{0,60}") {
            let _ = parse_token_file(&s);
        }

        #[test]
        fn from_yaml_never_panics(s in "[a-z:{}\\[\\],\\- \n]{0,80}") {
            let _ = Authorizer::from_yaml(&[("p", &s)]);
        }

        #[test]
        fn masters_always_allowed(verb in "[a-z]{1,8}", ns in "[a-z]{0,5}", group in "[a-z.]{0,8}") {
            let a = Authorizer::from_yaml(&[]).unwrap();
            let u = user("m", &["system:masters"]);
            prop_assert!(allowed(&a, &u, &res(&verb, &group, "leases", &ns)));
        }

        #[test]
        fn deny_message_names_user_and_verb(name in "[a-z:-]{1,12}", verb in "[a-z]{1,8}") {
            let a = Authorizer::from_yaml(&[]).unwrap();
            let msg = denied(&a, &user(&name, &[]), &res(&verb, "", "secrets", "ns"));
            let expected = format!("User \"{name}\" cannot {verb} resource \"secrets\"");
            prop_assert!(msg.contains(&expected));
        }
    }
}
