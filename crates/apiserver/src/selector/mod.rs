//! Kubernetes label and field selectors, parsed and matched the way apimachinery's
//! `labels.Parse` and `fields.ParseSelector` do (kube-apiserver v1.28 behaviour).
//!
//! The entry points are [`LabelSelector::parse`] and [`FieldSelector::parse`]. Both are pure: they
//! only look at the string they are given. Every error's `Display` is the exact text a real
//! kube-apiserver puts into the `message` of its 400 `BadRequest` Status, so the server can forward
//! it unchanged and clients (kubectl, kube-rs) show what they would show against a real cluster.
//!
//! This file holds the error type; `validation` holds apimachinery's label key and value checks, `label` the
//! [`LabelSelector`] and its requirements, `label_parser` the lexer and parser for its grammar, and `field` the
//! [`FieldSelector`].

mod field;
mod label;
mod label_parser;
mod validation;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use field::FieldSelector;
pub use label::LabelSelector;

use crate::go_text::go_quote;

/// Why a label or field selector was rejected.
///
/// `Display` is exactly the message kube-apiserver answers with (in a 400 `BadRequest` Status), so
/// the server can put `err.to_string()` into the Status body as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector is malformed: a lexer/parser error (`found '==', expected: ...`) or an
    /// invalid key or value (`unable to parse requirement: ...`), worded as apimachinery words it.
    #[error("{0}")]
    Label(String),
    /// The field selector is malformed: a term without an operator, or a bad `\` escape.
    #[error("{0}")]
    Field(String),
    /// The field selector names a field the resource cannot be selected by.
    #[error(
        "{} is not a known field selector: only {}",
        go_quote(field),
        quote_list(allowed)
    )]
    UnknownField {
        /// The field the client asked for, e.g. `spec.holderIdentity`.
        field: String,
        /// The fields the resource supports, in the order the server listed them.
        allowed: Vec<String>,
    },
}

/// Formats a list of names the way the real server does in the unknown-field message:
/// each Go-quoted, joined by `", "`.
fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| go_quote(s))
        .collect::<Vec<_>>()
        .join(", ")
}
