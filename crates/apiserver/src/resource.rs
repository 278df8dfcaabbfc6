//! The resources the stand-in serves, and what differs between them.
//!
//! The server is generic over these descriptors: the same create/update/patch/delete/list/watch code serves
//! Leases, Events (through two API groups over one store) and Namespaces. What a real server keeps in
//! per-resource strategies (validation, defaulting, field selectors, printer columns) hangs off [`ResourceType`].

/// Which representation an Event view speaks; Leases and Namespaces have just one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The object is served exactly as stored.
    Native,
    /// Core v1 `Event`, converted from the `events.k8s.io/v1` form that is stored.
    CoreEvent,
}

/// One served resource: its group/version/kind, scope and storage bucket.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, "" for core.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// Plural resource name used in paths and RBAC.
    pub plural: &'static str,
    /// Singular name, for discovery.
    pub singular: &'static str,
    /// Kind of one object.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Storage bucket; two views of one bucket share objects and resourceVersions.
    pub store: &'static str,
    /// How the stored object is presented.
    pub view: View,
    /// Short names for discovery (`ev`).
    pub short_names: &'static [&'static str],
    /// The storageVersionHash the real server reports.
    pub storage_hash: &'static str,
    /// Field selectors the resource accepts (beyond which a list answers 400).
    pub field_selectors: &'static [&'static str],
    /// The internal Go package of the kind, for the "cannot be handled as" message.
    pub internal_group: &'static str,
}

impl ResourceType {
    /// `plural.group` (or just `plural` for core), as used in most messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind.group` (or just `Kind` for core), as used in validation messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The `apiVersion` objects of this resource carry.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind of the list type.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The verbs advertised in discovery; every served resource supports all of them.
    pub fn verbs(&self) -> &'static [&'static str] {
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// `coordination.k8s.io/v1` Leases.
pub static LEASES: ResourceType = ResourceType {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    singular: "lease",
    kind: "Lease",
    namespaced: true,
    store: "leases",
    view: View::Native,
    short_names: &[],
    storage_hash: "gqkMMb/YqFM=",
    field_selectors: &["metadata.name", "metadata.namespace"],
    internal_group: "coordination",
};

/// `events.k8s.io/v1` Events, what kube-runtime's Recorder writes.
pub static EVENTS: ResourceType = ResourceType {
    group: "events.k8s.io",
    version: "v1",
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    store: "events",
    view: View::Native,
    short_names: &["ev"],
    storage_hash: "r2yiGXH7wu8=",
    field_selectors: &[
        "metadata.name",
        "metadata.namespace",
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "regarding.apiVersion",
        "regarding.resourceVersion",
        "regarding.fieldPath",
        "reason",
        "reportingController",
        "type",
    ],
    internal_group: "core",
};

/// Core v1 Events: the same store, as `kubectl describe` reads it.
pub static CORE_EVENTS: ResourceType = ResourceType {
    group: "",
    version: "v1",
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    store: "events",
    view: View::CoreEvent,
    short_names: &["ev"],
    storage_hash: "r2yiGXH7wu8=",
    field_selectors: &[
        "metadata.name",
        "metadata.namespace",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ],
    internal_group: "core",
};

/// Core v1 Namespaces (cluster-scoped).
pub static NAMESPACES: ResourceType = ResourceType {
    group: "",
    version: "v1",
    plural: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    namespaced: false,
    store: "namespaces",
    view: View::Native,
    short_names: &["ns"],
    storage_hash: "Q3oi5N2YM8M=",
    field_selectors: &["metadata.name", "status.phase"],
    internal_group: "core",
};

/// Every served resource, in discovery order.
pub static ALL: [&ResourceType; 4] = [&NAMESPACES, &CORE_EVENTS, &LEASES, &EVENTS];

/// Finds the resource served at `group/version/plural`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    ALL.iter()
        .copied()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}
