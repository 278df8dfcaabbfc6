//! The Kubernetes name rules leasehold checks before it sends anything: a value the API server would refuse is
//! refused at start-up instead, with the rule spelled out. Each predicate has a matching `*_RULE` text for errors.

/// The longest DNS-1123 label, and so the longest Kubernetes namespace and leasehold Lease name.
pub const MAX_LABEL_LEN: usize = 63;

/// The longest DNS-1123 subdomain (an object name such as a Lease's).
pub const MAX_SUBDOMAIN_LEN: usize = 253;

/// What [`is_dns1123_label`] accepts, for error messages.
pub const DNS1123_LABEL_RULE: &str =
    "a DNS-1123 label: 1-63 characters of [a-z0-9-], starting and ending with a letter or digit";

/// What [`is_dns1123_subdomain`] accepts, for error messages.
pub const DNS1123_SUBDOMAIN_RULE: &str = "a DNS-1123 subdomain: at most 253 characters of [a-z0-9-.], each \
     dot-separated part starting and ending with a letter or digit";

/// What [`is_label_value`] accepts, for error messages.
pub const LABEL_VALUE_RULE: &str =
    "at most 63 characters of [A-Za-z0-9._-], starting and ending with a letter or digit, or empty";

/// What [`is_qualified_name`] accepts, for error messages.
pub const QUALIFIED_NAME_RULE: &str = "a qualified name: an optional DNS subdomain prefix and '/', then 1-63 \
     characters of [A-Za-z0-9._-] starting and ending with a letter or digit";

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Whether `s` is a DNS-1123 label: 1–63 characters of `[a-z0-9-]`, starting and ending with a letter or digit.
/// Kubernetes namespaces must be one, and leasehold's Lease names always are.
#[must_use]
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL_LEN
        && b.first().is_some_and(|&c| lower_alnum(c))
        && b.last().is_some_and(|&c| lower_alnum(c))
        && b.iter().all(|&c| lower_alnum(c) || c == b'-')
}

/// Whether `s` is a DNS-1123 subdomain: at most 253 characters, dot-separated parts of `[a-z0-9-]` that start and
/// end with a letter or digit. Object names such as a Lease's must be one.
#[must_use]
pub fn is_dns1123_subdomain(s: &str) -> bool {
    let part_ok = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty()
            && b.first().is_some_and(|&c| lower_alnum(c))
            && b.last().is_some_and(|&c| lower_alnum(c))
            && b.iter().all(|&c| lower_alnum(c) || c == b'-')
    };
    !s.is_empty() && s.len() <= MAX_SUBDOMAIN_LEN && s.split('.').all(part_ok)
}

/// Whether `v` is a valid label value: empty, or at most 63 characters of `[A-Za-z0-9._-]` starting and ending
/// with a letter or digit.
#[must_use]
pub fn is_label_value(v: &str) -> bool {
    let b = v.as_bytes();
    b.is_empty()
        || (b.len() <= MAX_LABEL_LEN
            && b.iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric))
}

/// Whether `key` is a qualified name, the form of label and annotation keys: an optional DNS-1123 subdomain prefix
/// and `/`, then a non-empty name of the label-value form.
#[must_use]
pub fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    prefix.is_none_or(is_dns1123_subdomain) && !name.is_empty() && is_label_value(name)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn labels() {
        for ok in ["a", "a-1", "0", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }

    #[test]
    fn subdomains() {
        for ok in ["a", "a.b", "leasehold-x.y-1", &"a".repeat(253)] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in ["", ".a", "a.", "a..b", "A", "a_b", "-a.b", &"a".repeat(254)] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn label_values_and_keys() {
        for ok in ["", "x", "A.b_c-9", &"v".repeat(63)] {
            assert!(is_label_value(ok), "{ok}");
        }
        for bad in ["-x", "x-", "a b", "é", &"v".repeat(64)] {
            assert!(!is_label_value(bad), "{bad}");
        }
        for ok in [
            "app",
            "app.kubernetes.io/managed-by",
            "leasehold.dev/kind",
            "A_b",
        ] {
            assert!(is_qualified_name(ok), "{ok}");
        }
        for bad in ["", "/x", "a/", "Bad.Prefix/x", "a/b/c", "x y"] {
            assert!(!is_qualified_name(bad), "{bad}");
        }
    }

    proptest! {
        /// Every label is a subdomain, a label value and a qualified name; no input panics.
        #[test]
        fn a_label_is_every_other_form(s in "\\PC{0,300}") {
            if is_dns1123_label(&s) {
                prop_assert!(is_dns1123_subdomain(&s));
                prop_assert!(is_label_value(&s));
                prop_assert!(is_qualified_name(&s));
            }
        }
    }
}
