//! Unit tests of the authorizer and manifest loading, through the module's public API: deny messages, bindings,
//! subjects, aggregation, bootstrap policy and load errors. The token file's tests are next to its parser.

use super::*;
use proptest::prelude::*;

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.to_string(),
        uid: String::new(),
        groups: groups.iter().map(|g| (*g).to_string()).collect(),
    }
}

fn res<'a>(verb: &'a str, group: &'a str, resource: &'a str, ns: &'a str) -> RequestAttributes<'a> {
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

proptest! {
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
