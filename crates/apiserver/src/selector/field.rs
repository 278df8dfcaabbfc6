//! Field selectors: [`FieldSelector`], parsed as `fields.ParseSelector` does (terms, operators and `\`
//! escapes) and checked against the fields a resource supports. Separate from label selectors, with which it
//! shares only the error type.

use super::SelectorError;

/// One term of a field selector: `field=value` (`==` is the same) or `field!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    equal: bool,
}

/// A parsed field selector (`metadata.name=l1,metadata.namespace!=kube-system`).
///
/// It exists so list and watch can filter by `?fieldSelector=` like a real apiserver, and so the
/// server can take the `metadata.name=x` fast path via [`FieldSelector::exact`]. The default value
/// has no terms and matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// In the order apimachinery keeps them: sorted by the raw term text.
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses a field selector as `fields.ParseSelector` does, then checks every field against
    /// `allowed`, the field names the resource supports (e.g. `["metadata.name",
    /// "metadata.namespace"]`), as the apiserver's field-label conversion does.
    ///
    /// Terms are separated by unescaped commas; in values, `\\`, `\,` and `\=` stand for `\`, `,`
    /// and `=`. Syntax errors are reported before unknown fields, like the real server; an unknown
    /// field gives `"spec.x" is not a known field selector: only "metadata.name", ...`.
    pub fn parse(s: &str, allowed: &[&str]) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, equal, rhs)) = split_term(part) else {
                return Err(SelectorError::Field(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_value(rhs)?;
            terms.push(FieldTerm {
                field: field.to_string(),
                value,
                equal,
            });
        }
        for t in &terms {
            if !allowed.contains(&t.field.as_str()) {
                return Err(SelectorError::UnknownField {
                    field: t.field.clone(),
                    allowed: allowed.iter().map(|a| (*a).to_string()).collect(),
                });
            }
        }
        Ok(FieldSelector { terms })
    }

    /// Tells whether an object is selected; `get(field)` returns the object's value for a field
    /// (`""` when absent), so the selector needs no knowledge of the object's type.
    pub fn matches(&self, get: impl Fn(&str) -> String) -> bool {
        self.terms
            .iter()
            .all(|t| (get(&t.field) == t.value) == t.equal)
    }

    /// The value this selector pins `field` to with `=`/`==`, if any, so the server can look one
    /// object up by name instead of scanning (apimachinery's `RequiresExactMatch`).
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equal && t.field == field)
            .map(|t| t.value.as_str())
    }

    /// True when the selector has no terms, so callers can skip filtering entirely.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Splits on commas that are not escaped with a backslash; the escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at the first operator (`!=`, `==` or `=`, tried in that order at each position).
/// Returns the field, whether the operator is an equality, and the raw value.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, equal) in [("!=", false), ("==", true), ("=", true)] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], equal, rhs));
            }
        }
    }
    None
}

/// Removes `\` escapes from a field selector value, rejecting unknown escapes and bare `,`/`=`
/// with apimachinery's messages (which print the bare rune as its code point).
fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if matches!(c, '\\' | ',' | '=') {
                out.push(c);
                in_slash = false;
                continue;
            }
            return Err(SelectorError::Field(format!(
                "invalid field selector: invalid escape sequence: \\{c}"
            )));
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: unescapedRune character in value: {}",
                    c as u32
                )));
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::Field(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}
