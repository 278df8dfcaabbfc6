//! What an apply can fail with: [`ApplyError`], the [`Conflict`]s it lists with the [`Operation`] their owner
//! wrote with, and the real server's conflict message. Separate from the field bookkeeping, which only produces
//! these values.

use crate::go_text::go_quote;

/// Errors of [`apply`](super::apply): each one is a Status the server answers with (see [`ApplyError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The apply changes fields that other managers own, and `force` was not set. The message is the real
    /// server's, word for word (`Apply failed with 1 conflict: conflict with "mgr-one": .spec.holderIdentity`).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The apply body carries `metadata.managedFields`; the real server refuses it with this message (400).
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsSet,
    /// The apply body's `apiVersion` is not the version of the endpoint it was sent to (400).
    #[error(
        "Incorrect version specified in apply patch. Specified patch version: {specified}, expected: {expected}"
    )]
    VersionMismatch {
        /// The body's `apiVersion` (empty when missing).
        specified: String,
        /// The endpoint's group/version, e.g. `coordination.k8s.io/v1`.
        expected: String,
    },
    /// The apply body is not a JSON object; worded like the real server's YAML decoding error (400).
    #[error(
        "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {found} into Go value of type map[string]interface {{}}"
    )]
    NotAnObject {
        /// Go's name for the JSON type found: `array`, `string`, `number`, `bool`.
        found: &'static str,
    },
}

impl ApplyError {
    /// The HTTP status code of the Status to answer: 409 for conflicts, 400 otherwise.
    pub fn code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            _ => 400,
        }
    }

    /// The Status `reason`: `Conflict` for conflicts (with causes of type `FieldManagerConflict`, see
    /// [`conflict_causes`](super::conflict_causes)), `BadRequest` otherwise.
    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::Conflicts(_) => "Conflict",
            _ => "BadRequest",
        }
    }
}

/// One conflict of an apply: a field whose value the apply changes while another manager owns it.
///
/// It keeps the owner's operation and apiVersion because the real message names an Update owner as
/// `"kubectl" using coordination.k8s.io/v1`, and an Apply owner only by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owning manager, e.g. `mgr-one`.
    pub manager: String,
    /// The owner's operation.
    pub operation: Operation,
    /// The owner entry's apiVersion.
    pub api_version: String,
    /// The field, written like the real server: `.spec.holderIdentity`.
    pub field: String,
}

impl Conflict {
    /// The owner as the real server prints it: Go-quoted name, plus ` using <apiVersion>` for Update owners.
    pub(super) fn owner(&self) -> String {
        match self.operation {
            Operation::Apply => go_quote(&self.manager),
            Operation::Update => format!("{} using {}", go_quote(&self.manager), self.api_version),
        }
    }

    /// Sort key that groups conflicts like the real server, which sorts by its JSON manager identifier
    /// (`{"manager":"m","operation":"Apply"}`); the trailing quote keeps `a` before `ab` as in that string.
    pub(super) fn group_key(&self) -> (String, &'static str, &str) {
        (
            format!("{}\"", self.manager),
            self.operation.as_str(),
            &self.api_version,
        )
    }
}

/// The kind of write that gave a manager its fields, as written in a managedFields entry's `operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Create, update (PUT) or any non-apply patch.
    Update,
    /// Server-side apply.
    Apply,
}

impl Operation {
    /// The wire spelling, `Update` or `Apply`, used in entries and in conflict messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Update => "Update",
            Operation::Apply => "Apply",
        }
    }

    /// Parses the wire spelling; anything else is `None` (such entries never match a new operation).
    pub(super) fn parse(s: &str) -> Option<Self> {
        match s {
            "Update" => Some(Operation::Update),
            "Apply" => Some(Operation::Apply),
            _ => None,
        }
    }
}

/// Builds the real server's conflict message (fieldmanager's `getConflictMessage`), conflicts already sorted.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.owner(),
            only.field
        );
    }
    let mut lines: Vec<String> = Vec::new();
    let mut current: Option<(String, &'static str, &str)> = None;
    for c in conflicts {
        let key = c.group_key();
        if current.as_ref() != Some(&key) {
            lines.push(format!("conflicts with {}:", c.owner()));
            current = Some(key);
        }
        lines.push(format!("- {}", c.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}
