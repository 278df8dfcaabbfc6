//! [`Schema`]: what the field manager needs to know about a type beyond its JSON (atomic, struct and ignored
//! paths), with the schemas of the served types. Separate because it is per-type data the other parts consult.

/// What the field manager needs to know about a type beyond its JSON: which paths are owned whole and which
/// are structs. Paths are lists of field names from the object's root, e.g. `["spec"]`.
///
/// The default (empty) schema treats every map but the root and `metadata` as a free-form map, so adding one
/// owns its `"."`; fine for unknown types, wrong for Go structs, hence the per-type constructors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Paths owned whole (`+structType=atomic` / `+mapType=atomic`): one leaf, whatever is inside.
    atomic: Vec<Vec<String>>,
    /// Paths of non-pointer struct fields: always present in the type's zero value, so never a member of a set
    /// themselves (no `"."`), and their own children are fields rather than map keys.
    structs: Vec<Vec<String>>,
    /// Paths the field manager ignores on this endpoint (the strategy's reset fields, e.g. `status` on the main
    /// resource of a Namespace): never owned, never compared.
    pub(super) ignored: Vec<Vec<String>>,
}

impl Schema {
    /// An empty schema: no atomic paths, no structs besides the root and `metadata`, nothing ignored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an atomic path, owned whole like a scalar (`"f:regarding":{}`), e.g. `&["regarding"]`.
    #[must_use]
    pub fn with_atomic(mut self, path: &[&str]) -> Self {
        self.atomic.push(owned_path(path));
        self
    }

    /// Adds a non-pointer struct path (e.g. a Lease's `spec`), which never gets `"."` when created.
    #[must_use]
    pub fn with_struct(mut self, path: &[&str]) -> Self {
        self.structs.push(owned_path(path));
        self
    }

    /// Adds a path the field manager ignores (the strategy resets it), e.g. `status` on a main resource.
    #[must_use]
    pub fn with_ignored(mut self, path: &[&str]) -> Self {
        self.ignored.push(owned_path(path));
        self
    }

    /// `coordination.k8s.io/v1` Lease: `spec` is a struct; no atomic fields.
    pub fn lease() -> Self {
        Self::new().with_struct(&["spec"])
    }

    /// `events.k8s.io/v1` Event: `regarding`, `related`, `series` and `deprecatedSource` are owned whole
    /// (corpus step 51 shows `"f:regarding":{}`).
    pub fn event() -> Self {
        Self::new()
            .with_atomic(&["regarding"])
            .with_atomic(&["related"])
            .with_atomic(&["series"])
            .with_atomic(&["deprecatedSource"])
    }

    /// Core `v1` Event, for writes through `/api/v1/.../events`: `involvedObject` and `related` are atomic
    /// ObjectReferences, `source` is a struct.
    pub fn core_event() -> Self {
        Self::new()
            .with_atomic(&["involvedObject"])
            .with_atomic(&["related"])
            .with_struct(&["source"])
    }

    /// `v1` Namespace main resource: `spec` and `status` are structs, and `status` is ignored (only the
    /// `/status` subresource owns it on the real server).
    pub fn namespace() -> Self {
        Self::new()
            .with_struct(&["spec"])
            .with_struct(&["status"])
            .with_ignored(&["status"])
    }

    /// Whether the value at `path` is owned whole.
    pub(super) fn is_atomic(&self, path: &[String]) -> bool {
        self.atomic.iter().any(|p| p.as_slice() == path)
    }

    /// Whether the map at `path` is a struct: the root, `metadata`, or a declared struct path.
    pub(super) fn is_struct(&self, path: &[String]) -> bool {
        path.is_empty()
            || (path.len() == 1 && path[0] == "metadata")
            || self.structs.iter().any(|p| p.as_slice() == path)
    }
}

fn owned_path(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| (*s).to_owned()).collect()
}
