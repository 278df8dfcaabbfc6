//! Field ownership: `metadata.managedFields` bookkeeping after writes, and server-side apply.
//!
//! Entry points: [`record_update`] after a create, update or patch, and [`apply`] for
//! `application/apply-patch+yaml`. Both follow what kube-apiserver does through
//! structured-merge-diff (SMD), checked against `reference/lease-api-corpus.jsonl`:
//!
//! - A manager owns a set of field paths, written as FieldsV1 (`{"f:spec":{"f:holderIdentity":{}}}`).
//!   Maps are granular: each key is its own field. Arrays and the [`Schema`]'s atomic paths are owned whole.
//! - Only what a client may set counts: everything except `apiVersion` and `kind`, and in `metadata` only
//!   `labels`, `annotations`, `ownerReferences`, `finalizers` and `generateName`. Nulls, empty maps and empty
//!   arrays count as unset, like Go's `omitempty`.
//! - A map node is itself a member of a set (FieldsV1 `".":{}`) when an Update *creates* it (the real server
//!   compares against the type's zero value, where `labels` is absent but `spec` is an empty struct), and, in an
//!   apply, when it is an object-valued entry of a free-form map. Struct-typed fields ([`Schema::with_struct`])
//!   never get `"."`: that is why Update entries show `"f:labels":{".":{},...}` while `"f:spec"` has no `"."`, and
//!   Apply entries show no `"."` at all for labels.
//! - Entries are written back sorted like the real server: by operation (`Apply` before `Update`), then time
//!   (whole seconds), then manager name, then apiVersion.
//!
//! The entry points are in `writes`; `conflicts` holds the error and conflict types and the conflict message,
//! `schema` the per-type [`Schema`], `set` field paths and sets (FieldsV1), `view` the tracked view of an
//! object and how two views compare and merge, and `entries` reading and writing `metadata.managedFields`.

mod conflicts;
mod entries;
mod schema;
mod set;
mod view;
mod writes;

pub use conflicts::{ApplyError, Conflict, Operation};
pub use schema::Schema;
pub use writes::{apply, conflict_causes, manager_from_user_agent, record_update};
