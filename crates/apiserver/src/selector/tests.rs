//! Unit tests of label and field selectors through their public API: operators, matching, and the exact error
//! texts of malformed selectors, plus property tests that parsing never panics.

use std::collections::BTreeMap;

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
        format!("unable to parse requirement: <nil>: Invalid value: \"app:monolith\": {name_part}")
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
        format!("unable to parse requirement: values[0][app]: Invalid value: \"-x\": {value_msg}")
    );
    assert_eq!(
        label_err("app in (ok, b/c)"),
        format!("unable to parse requirement: values[0][app]: Invalid value: \"b/c\": {value_msg}")
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
