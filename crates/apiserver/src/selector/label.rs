//! Label selectors: [`LabelSelector`], its requirements and operators, how they match a label set, and
//! apimachinery's `NewRequirement` checks. The grammar is parsed in `label_parser`.

use std::collections::BTreeMap;

use super::SelectorError;
use super::label_parser::Parser;
use super::validation::{aggregate, field_invalid, label_value_errors, qualified_name_errors};
use crate::go_text::go_quote;

/// The operator of one label requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One comma-separated term of a label selector, e.g. `tier in (a,b)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Requirement {
    key: String,
    op: Op,
    /// Sorted and deduplicated, as apimachinery stores them.
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let got = labels.get(&self.key);
        let has = |v: &String| self.values.iter().any(|x| x == v);
        match self.op {
            Op::In | Op::Equals | Op::DoubleEquals => got.is_some_and(has),
            Op::NotIn | Op::NotEquals => !got.is_some_and(has),
            Op::Exists => got.is_some(),
            Op::DoesNotExist => got.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let Some(have) = got.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let Some(want) = self.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// A parsed label selector (`app=web,tier in (a,b),!legacy`): a conjunction of requirements.
///
/// It exists so that list and watch can filter by `?labelSelector=` exactly as a real apiserver
/// does, including which strings are rejected and with which message. The default value has no
/// requirements and matches every object, like an absent or empty `labelSelector`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Sorted by key, as apimachinery sorts them.
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses a label selector with apimachinery's grammar and error messages.
    ///
    /// Accepts `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, and apimachinery's
    /// `k>5` / `k<5` (integer comparison), separated by commas, with spaces, tabs and newlines
    /// tolerated between tokens. The empty string selects everything. Keys must be qualified
    /// names (optional DNS-subdomain prefix and `/`), values valid label values (at most 63
    /// characters). On error, `Display` of the returned [`SelectorError`] is the real server's
    /// message, e.g. `found '==', expected: !, identifier, or 'end of string'`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser::new(s);
        let mut requirements = parser.parse().map_err(SelectorError::Label)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// Tells whether an object with these labels is selected: every requirement must hold.
    ///
    /// As in apimachinery, `!=` and `notin` also select objects that lack the key, and `>`/`<`
    /// never select an object whose value is not an integer.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the selector has no requirements, so callers can skip filtering entirely.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Builds a selector from a `metav1.LabelSelector` (`matchLabels` plus `matchExpressions`
    /// with operators `In`, `NotIn`, `Exists`, `DoesNotExist`), validating keys and values the
    /// way `LabelSelectorAsSelector` does. Used for ClusterRole aggregation rules.
    pub(crate) fn from_match(
        match_labels: &BTreeMap<String, String>,
        match_expressions: &[(String, String, Vec<String>)],
    ) -> Result<Self, SelectorError> {
        let check_key = |key: &str| {
            let errs = qualified_name_errors(key);
            if errs.is_empty() {
                Ok(())
            } else {
                Err(SelectorError::Label(field_invalid(
                    "key",
                    key,
                    &errs.join("; "),
                )))
            }
        };
        let mut requirements = Vec::new();
        for (k, v) in match_labels {
            check_key(k)?;
            requirements.push(new_requirement(k.clone(), Op::Equals, vec![v.clone()])?);
        }
        for (key, operator, values) in match_expressions {
            let op = match operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => {
                    return Err(SelectorError::Label(format!(
                        "{} is not a valid label selector operator",
                        go_quote(other)
                    )));
                }
            };
            let mut vals: Vec<String> = values.clone();
            vals.sort();
            vals.dedup();
            if matches!(op, Op::In | Op::NotIn) && vals.is_empty() {
                return Err(SelectorError::Label(
                    "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
                        .to_string(),
                ));
            }
            if matches!(op, Op::Exists | Op::DoesNotExist) && !vals.is_empty() {
                return Err(SelectorError::Label(
                    "values: Invalid value: values set must be empty for exists and does not exist"
                        .to_string(),
                ));
            }
            check_key(key)?;
            requirements.push(new_requirement(key.clone(), op, vals)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }
}

/// apimachinery's `NewRequirement` checks that can still fail after parsing: integer values for
/// `>`/`<`, and label-value syntax.
pub(super) fn new_requirement(
    key: String,
    op: Op,
    values: Vec<String>,
) -> Result<Requirement, SelectorError> {
    let mut errs = Vec::new();
    if matches!(op, Op::GreaterThan | Op::LessThan) {
        for (i, v) in values.iter().enumerate() {
            if v.parse::<i64>().is_err() {
                errs.push(field_invalid(
                    &format!("values[{i}]"),
                    v,
                    "for 'Gt', 'Lt' operators, the value must be an integer",
                ));
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let v_errs = label_value_errors(v);
        if !v_errs.is_empty() {
            errs.push(field_invalid(
                &format!("values[{i}][{key}]"),
                v,
                &v_errs.join("; "),
            ));
        }
    }
    if errs.is_empty() {
        Ok(Requirement { key, op, values })
    } else {
        Err(SelectorError::Label(aggregate(errs)))
    }
}
