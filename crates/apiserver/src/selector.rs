//! Kubernetes label and field selectors, parsed and matched the way apimachinery's
//! `labels.Parse` and `fields.ParseSelector` do (kube-apiserver v1.28 behaviour).
//!
//! The entry points are [`LabelSelector::parse`] and [`FieldSelector::parse`]. Both are pure: they
//! only look at the string they are given. Every error's `Display` is the exact text a real
//! kube-apiserver puts into the `message` of its 400 `BadRequest` Status, so the server can forward
//! it unchanged and clients (kubectl, kube-rs) show what they would show against a real cluster.

use crate::go_text::go_quote;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

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

// ---------------------------------------------------------------------------------------------
// Validation of label keys and values (apimachinery pkg/util/validation), with its wording.
// ---------------------------------------------------------------------------------------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MAX: usize = 63;
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MAX: usize = 253;

/// apimachinery's `RegexError`: the message, examples and the regex, in its exact layout
/// (including its double spaces before "or").
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut s = String::from(msg);
    if examples.is_empty() {
        let _ = write!(s, " (regex used for validation is '{fmt}')");
        return s;
    }
    s.push_str(" (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        let _ = write!(s, "'{e}', ");
    }
    let _ = write!(s, "regex used for validation is '{fmt}')");
    s
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`, the shape of a label key's name part and of a
/// non-empty label value.
fn is_qualified_name_shape(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`.
fn is_dns1123_subdomain_shape(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let ok_end = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                ok_end(f) && ok_end(l) && b.iter().all(|c| ok_end(c) || *c == b'-')
            }
            _ => false,
        }
    })
}

fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if !is_dns1123_subdomain_shape(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// apimachinery's `IsQualifiedName`: the problems with a label key, each as one sentence.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let examples = ["MyName", "my.name", "123-abc"];
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in dns1123_subdomain_errors(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &examples)
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!(
            "name part must be no more than {QUALIFIED_NAME_MAX} characters"
        ));
    }
    if !is_qualified_name_shape(name) {
        errs.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &examples)
        ));
    }
    errs
}

/// apimachinery's `IsValidLabelValue`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(format!("must be no more than {LABEL_VALUE_MAX} characters"));
    }
    if !value.is_empty() && !is_qualified_name_shape(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// A `field.Invalid` error rendered as `<path>: Invalid value: "<value>": <detail>`.
fn field_invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", go_quote(value))
}

/// Renders a list of errors as apimachinery's aggregate does: one error alone, several as
/// `[a, b]`, duplicates dropped.
fn aggregate(errs: Vec<String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    if seen.len() == 1 {
        seen.pop().unwrap_or_default()
    } else {
        format!("[{}]", seen.join(", "))
    }
}

// ---------------------------------------------------------------------------------------------
// Label selectors.
// ---------------------------------------------------------------------------------------------

/// The operator of one label requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
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
struct Requirement {
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
fn new_requirement(key: String, op: Op, values: Vec<String>) -> Result<Requirement, SelectorError> {
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

/// Lexer tokens, as in apimachinery's label selector lexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// The tokens that have a fixed spelling.
fn keyword(s: &[u8]) -> Option<Tok> {
    Some(match s {
        b")" => Tok::ClosedPar,
        b"," => Tok::Comma,
        b"!" => Tok::DoesNotExist,
        b"==" => Tok::DoubleEquals,
        b"=" => Tok::Equals,
        b">" => Tok::GreaterThan,
        b"in" => Tok::In,
        b"<" => Tok::LessThan,
        b"!=" => Tok::NotEquals,
        b"notin" => Tok::NotIn,
        b"(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// A byte-level lexer that reproduces apimachinery's, quirks included (a NUL byte reads as the
/// end of input), so that the same inputs give the same tokens and so the same errors.
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    /// The next byte, or 0 at the end of input.
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(b) => {
                self.pos += 1;
                *b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn scan_id_or_keyword(&mut self) -> (Tok, String) {
        let mut buf = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            buf.push(ch);
        }
        let lit = String::from_utf8_lossy(&buf).into_owned();
        match keyword(&buf) {
            Some(tok) => (tok, lit),
            None => (Tok::Identifier, lit),
        }
    }

    fn scan_special_symbol(&mut self) -> (Tok, String) {
        let mut buf = Vec::new();
        let mut last: Option<(Tok, String)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special(ch) {
                self.unread();
                break;
            }
            buf.push(ch);
            if let Some(tok) = keyword(&buf) {
                last = Some((tok, String::from_utf8_lossy(&buf).into_owned()));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        match last {
            Some(item) => item,
            None => (
                Tok::Error,
                format!(
                    "error expected: keyword found '{}'",
                    String::from_utf8_lossy(&buf)
                ),
            ),
        }
    }

    fn lex(&mut self) -> (Tok, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            (Tok::EndOfString, String::new())
        } else if is_special(ch) {
            self.unread();
            self.scan_special_symbol()
        } else {
            self.unread();
            self.scan_id_or_keyword()
        }
    }
}

/// Whether `in`/`notin` are keywords (after a key) or plain identifiers (everywhere else).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

/// apimachinery's recursive-descent label selector parser, with its error wording.
struct Parser {
    items: Vec<(Tok, String)>,
    position: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn new(s: &str) -> Self {
        let mut lexer = Lexer {
            s: s.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let (tok, lit) = lexer.lex();
            let end = tok == Tok::EndOfString;
            items.push((tok, lit));
            if end {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn token_at(&self, i: usize, ctx: Ctx) -> (Tok, String) {
        let (tok, lit) = self
            .items
            .get(i)
            .cloned()
            .unwrap_or((Tok::EndOfString, String::new()));
        let tok = match (ctx, tok) {
            (Ctx::Values, Tok::In | Tok::NotIn) => Tok::Identifier,
            (_, t) => t,
        };
        (tok, lit)
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        self.token_at(self.position, ctx)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let item = self.token_at(self.position, ctx);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::EndOfString => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!("found '{l}', expected: ',' or 'end of string'"));
                        }
                    }
                }
                Tok::EndOfString => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, op) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Op::Exists | Op::DoesNotExist)) = op {
            return new_requirement(key, op, Vec::new()).map_err(|e| e.to_string());
        }
        let op = self.parse_operator()?;
        let values = match op {
            Op::In | Op::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(key, op, values.into_iter().collect()).map_err(|e| e.to_string())
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Op>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            op = Some(Op::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let errs = qualified_name_errors(&lit);
        if !errs.is_empty() {
            return Err(field_invalid("<nil>", &lit, &errs.join("; ")));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if matches!(next, Tok::EndOfString | Tok::Comma) && op != Some(Op::DoesNotExist) {
            op = Some(Op::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Op, String> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::In => Op::In,
            Tok::Equals => Op::Equals,
            Tok::DoubleEquals => Op::DoubleEquals,
            Tok::GreaterThan => Op::GreaterThan,
            Tok::LessThan => Op::LessThan,
            Tok::NotIn => Op::NotIn,
            Tok::NotEquals => Op::NotEquals,
            _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
        })
    }

    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let s = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Ctx::Values);
                if tok != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut s = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    s.insert(lit);
                    let (tok2, lit2) = self.lookahead(Ctx::Values);
                    match tok2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s),
                        _ => return Err(format!("found '{lit2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.insert(String::new());
                    }
                    let (tok2, _) = self.lookahead(Ctx::Values);
                    if tok2 == Tok::ClosedPar {
                        s.insert(String::new());
                        return Ok(s);
                    }
                    if tok2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        s.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if matches!(tok, Tok::EndOfString | Tok::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            Ok(BTreeSet::from([lit]))
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors.
// ---------------------------------------------------------------------------------------------

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn label_err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(v) => panic!("{s:?} should fail, parsed as {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    const LEASES: &[&str] = &["metadata.name", "metadata.namespace"];

    fn field_err(s: &str) -> String {
        match FieldSelector::parse(s, LEASES) {
            Ok(v) => panic!("{s:?} should fail, parsed as {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        for s in ["", "   ", "\t\n"] {
            let l = sel(s);
            assert!(l.is_empty());
            assert!(l.matches(&labels(&[])));
            assert!(l.matches(&labels(&[("a", "b")])));
        }
        assert!(LabelSelector::default().matches(&labels(&[("x", "y")])));
        assert!(LabelSelector::default().is_empty());
    }

    #[test]
    fn equality_operators() {
        for s in ["app=web", "app==web", " app = web ", "app\t==\tweb"] {
            let l = sel(s);
            assert!(!l.is_empty());
            assert!(l.matches(&labels(&[("app", "web")])), "{s}");
            assert!(!l.matches(&labels(&[("app", "db")])), "{s}");
            assert!(!l.matches(&labels(&[])), "{s}");
        }
        let ne = sel("app!=web");
        assert!(!ne.matches(&labels(&[("app", "web")])));
        assert!(ne.matches(&labels(&[("app", "db")])));
        assert!(
            ne.matches(&labels(&[])),
            "!= selects objects without the key"
        );
    }

    #[test]
    fn empty_value_equality() {
        let l = sel("app=");
        assert!(l.matches(&labels(&[("app", "")])));
        assert!(!l.matches(&labels(&[])));
        assert!(!l.matches(&labels(&[("app", "x")])));
        let l = sel("app=,b");
        assert!(l.matches(&labels(&[("app", ""), ("b", "1")])));
    }

    #[test]
    fn set_operators() {
        let l = sel("tier in (a, b)");
        assert!(l.matches(&labels(&[("tier", "a")])));
        assert!(l.matches(&labels(&[("tier", "b")])));
        assert!(!l.matches(&labels(&[("tier", "c")])));
        assert!(!l.matches(&labels(&[])));
        let l = sel("tier notin (a,b)");
        assert!(!l.matches(&labels(&[("tier", "a")])));
        assert!(l.matches(&labels(&[("tier", "c")])));
        assert!(
            l.matches(&labels(&[])),
            "notin selects objects without the key"
        );
        // Empty sets and empty members, as apimachinery allows.
        assert!(sel("x in ()").matches(&labels(&[("x", "")])));
        assert!(sel("x in (a,,b)").matches(&labels(&[("x", "")])));
        assert!(sel("x in (,a)").matches(&labels(&[("x", "")])));
        assert!(sel("x in (a,)").matches(&labels(&[("x", "")])));
        // `in` and `notin` are plain words outside operator position.
        let l = sel("in in (in, notin)");
        assert!(l.matches(&labels(&[("in", "notin")])));
    }

    #[test]
    fn existence_operators() {
        let l = sel("app");
        assert!(l.matches(&labels(&[("app", "")])));
        assert!(!l.matches(&labels(&[("other", "x")])));
        let l = sel("!app");
        assert!(!l.matches(&labels(&[("app", "x")])));
        assert!(l.matches(&labels(&[])));
        let l = sel(" ! app , b");
        assert!(l.matches(&labels(&[("b", "1")])));
        assert!(!l.matches(&labels(&[("b", "1"), ("app", "1")])));
    }

    #[test]
    fn numeric_operators() {
        let gt = sel("n>5");
        assert!(gt.matches(&labels(&[("n", "6")])));
        assert!(!gt.matches(&labels(&[("n", "5")])));
        assert!(!gt.matches(&labels(&[("n", "x")])));
        assert!(!gt.matches(&labels(&[])));
        let lt = sel("n < 5");
        assert!(lt.matches(&labels(&[("n", "-1")])));
        assert!(!lt.matches(&labels(&[("n", "7")])));
    }

    #[test]
    fn conjunction_and_prefixed_keys() {
        let l = sel("app.kubernetes.io/managed-by=leasehold,tier in (a),!legacy");
        assert!(l.matches(&labels(&[
            ("app.kubernetes.io/managed-by", "leasehold"),
            ("tier", "a")
        ])));
        assert!(!l.matches(&labels(&[
            ("app.kubernetes.io/managed-by", "leasehold"),
            ("tier", "a"),
            ("legacy", "")
        ])));
        assert!(!l.matches(&labels(&[("tier", "a")])));
    }

    #[test]
    fn corpus_malformed_selector() {
        // The corpus step "list with malformed label selector": labelSelector=%3D%3D%3D.
        assert_eq!(
            label_err("==="),
            "found '==', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            label_err("===="),
            "found '==', expected: !, identifier, or 'end of string'"
        );
    }

    #[test]
    fn parser_error_texts() {
        let cases: &[(&str, &str)] = &[
            (
                "=",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                ",",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            (
                "(",
                "found '(', expected: !, identifier, or 'end of string'",
            ),
            ("a,", "found '', expected: identifier after ','"),
            ("a,=b", "found '=', expected: identifier after ','"),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
            ("a=b)", "found ')', expected: ',' or 'end of string'"),
            (
                "a b",
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "a (",
                "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "!",
                "unable to parse requirement: found '', expected: identifier",
            ),
            (
                "!=a",
                "found '!=', expected: !, identifier, or 'end of string'",
            ),
            (
                "!!a",
                "unable to parse requirement: found '!', expected: identifier",
            ),
            (
                "a in b",
                "unable to parse requirement: found 'b' expected: '('",
            ),
            (
                "a in",
                "unable to parse requirement: found '' expected: '('",
            ),
            (
                "a in (",
                "unable to parse requirement: found '', expected: ',', ')' or identifier",
            ),
            (
                "a in (=",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            (
                "a in (b",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "a in (b c)",
                "unable to parse requirement: found 'c', expected: ',' or ')'",
            ),
            (
                "a in (,,)",
                "unable to parse requirement: found ')', expected: ',', or identifier",
            ),
            (
                "a in (b,=)",
                "unable to parse requirement: found '=', expected: ',', or identifier",
            ),
            (
                "a==(",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            (
                "a!=!",
                "unable to parse requirement: found '!', expected: identifier",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(label_err(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn invalid_key_texts() {
        let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert_eq!(
            label_err("app:monolith"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"app:monolith\": {name_part}"
            )
        );
        assert_eq!(
            label_err("-bad=x"),
            format!("unable to parse requirement: <nil>: Invalid value: \"-bad\": {name_part}")
        );
        assert_eq!(
            label_err("app.kubernetes_io/name=v"),
            "unable to parse requirement: <nil>: Invalid value: \"app.kubernetes_io/name\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert_eq!(
            label_err("/x"),
            "unable to parse requirement: <nil>: Invalid value: \"/x\": prefix part must be non-empty"
        );
        assert_eq!(
            label_err("a/"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"a/\": name part must be non-empty; {name_part}"
            )
        );
        assert_eq!(
            label_err("a/b/c ?=? def"),
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        );
        let long = "k".repeat(64);
        assert_eq!(
            label_err(&long),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"{long}\": name part must be no more than 63 characters"
            )
        );
        assert!(LabelSelector::parse(&"k".repeat(63)).is_ok());
    }

    #[test]
    fn invalid_value_texts() {
        let value_msg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
        assert_eq!(
            label_err("app=-x"),
            format!(
                "unable to parse requirement: values[0][app]: Invalid value: \"-x\": {value_msg}"
            )
        );
        assert_eq!(
            label_err("app in (ok, b/c)"),
            format!(
                "unable to parse requirement: values[0][app]: Invalid value: \"b/c\": {value_msg}"
            )
        );
        assert_eq!(
            label_err("app in (-a, -b)"),
            format!(
                "unable to parse requirement: [values[0][app]: Invalid value: \"-a\": {value_msg}, values[1][app]: Invalid value: \"-b\": {value_msg}]"
            )
        );
        let long = "v".repeat(64);
        assert_eq!(
            label_err(&format!("a={long}")),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 characters"
            )
        );
        assert_eq!(
            label_err("n>x"),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert!(LabelSelector::parse(&format!("a={}", "v".repeat(63))).is_ok());
    }

    #[test]
    fn go_quote_matches_go() {
        assert_eq!(go_quote("plain"), "\"plain\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("t\tn\n\u{1}\u{7f}"), "\"t\\tn\\n\\x01\\x7f\"");
        assert_eq!(go_quote("é✓"), "\"é✓\"");
        assert_eq!(go_quote("\u{feff}"), "\"\\ufeff\"");
    }

    #[test]
    fn field_selector_operators() {
        let get = |name: &'static str| {
            move |f: &str| match f {
                "metadata.name" => name.to_string(),
                "metadata.namespace" => "ref".to_string(),
                _ => String::new(),
            }
        };
        for s in ["metadata.name=l1", "metadata.name==l1"] {
            let f = FieldSelector::parse(s, LEASES).unwrap();
            assert!(f.matches(get("l1")));
            assert!(!f.matches(get("l2")));
            assert_eq!(f.exact("metadata.name"), Some("l1"));
            assert_eq!(f.exact("metadata.namespace"), None);
        }
        let f = FieldSelector::parse("metadata.name!=l1", LEASES).unwrap();
        assert!(!f.matches(get("l1")));
        assert!(f.matches(get("l2")));
        assert_eq!(f.exact("metadata.name"), None);
        let f = FieldSelector::parse("metadata.namespace=ref,metadata.name=l1", LEASES).unwrap();
        assert!(f.matches(get("l1")));
        assert!(!f.matches(get("l2")));
        assert_eq!(f.exact("metadata.namespace"), Some("ref"));
        let f = FieldSelector::parse("", LEASES).unwrap();
        assert!(f.is_empty() && f.matches(get("x")));
        let f = FieldSelector::parse(",,", LEASES).unwrap();
        assert!(f.is_empty());
        // Empty value: matches objects where the field is "".
        let f = FieldSelector::parse("metadata.namespace=", LEASES).unwrap();
        assert!(!f.matches(get("x")));
        assert!(f.matches(|_: &str| String::new()));
    }

    #[test]
    fn field_selector_escapes() {
        let f = FieldSelector::parse(r"metadata.name=a\,b\=c\\d", LEASES).unwrap();
        assert_eq!(f.exact("metadata.name"), Some(r"a,b=c\d"));
        assert!(f.matches(|_: &str| r"a,b=c\d".to_string()));
        assert_eq!(
            field_err(r"metadata.name=a\b"),
            r"invalid field selector: invalid escape sequence: \b"
        );
        assert_eq!(
            field_err(r"metadata.name=a\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            field_err("metadata.name=a=b"),
            "invalid field selector: unescapedRune character in value: 61"
        );
    }

    #[test]
    fn field_selector_error_texts() {
        // The corpus step "list with unsupported field selector".
        assert_eq!(
            field_err("spec.holderIdentity=node-a"),
            "\"spec.holderIdentity\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            field_err("metadata.name"),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        assert_eq!(
            field_err("metadata.name=a,bogus"),
            "invalid selector: 'metadata.name=a,bogus'; can't understand 'bogus'"
        );
        // Syntax errors win over unknown fields, as parsing precedes the field conversion.
        assert_eq!(
            field_err("zzz=1,bogus"),
            "invalid selector: 'zzz=1,bogus'; can't understand 'bogus'"
        );
        assert_eq!(
            field_err("=x"),
            "\"\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        let err = FieldSelector::parse("a=1", &["involvedObject.name"]).unwrap_err();
        assert_eq!(
            err,
            SelectorError::UnknownField {
                field: "a".into(),
                allowed: vec!["involvedObject.name".into()]
            }
        );
    }

    proptest! {
        #[test]
        fn label_parse_never_panics(s in ".{0,64}") {
            let _ = LabelSelector::parse(&s);
        }

        #[test]
        fn label_parse_never_panics_on_selector_alphabet(s in "[a-z0-9=!(),<> ./_\\-\t]{0,40}") {
            if let Ok(sel) = LabelSelector::parse(&s) {
                let _ = sel.matches(&BTreeMap::new());
            }
        }

        #[test]
        fn field_parse_never_panics(s in ".{0,64}") {
            if let Ok(f) = FieldSelector::parse(&s, LEASES) {
                let _ = f.matches(|_: &str| String::new());
            }
        }

        #[test]
        fn equality_selects_exactly_that_value(
            k in "[a-z]([a-z0-9.-]{0,10}[a-z0-9])?",
            v in "([A-Za-z0-9]([A-Za-z0-9_.-]{0,10}[A-Za-z0-9])?)?",
            other in "[A-Za-z0-9]{1,8}",
        ) {
            let s = LabelSelector::parse(&format!("{k}={v}")).unwrap();
            prop_assert!(s.matches(&labels(&[(&k, &v)])));
            prop_assert_eq!(s.matches(&labels(&[(&k, &other)])), other == v);
            let n = LabelSelector::parse(&format!("{k}!={v}")).unwrap();
            prop_assert!(!n.matches(&labels(&[(&k, &v)])));
        }

        #[test]
        fn escaped_field_values_round_trip(v in ".{0,20}") {
            let escaped = v.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=");
            let f = FieldSelector::parse(&format!("metadata.name={escaped}"), LEASES).unwrap();
            prop_assert_eq!(f.exact("metadata.name"), Some(v.as_str()));
        }
    }
}
