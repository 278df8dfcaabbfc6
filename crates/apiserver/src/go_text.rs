//! Go's text conventions that the real server's messages embed (`%q` quoting, JSON type names), shared by every
//! module that must reproduce those messages byte for byte.

use std::fmt::Write as _;

use serde_json::Value;

/// Quotes a string the way Go's `%q` / `strconv.Quote` does, because kube-apiserver builds its
/// messages with `%q` and we want byte-identical messages.
///
/// Printable characters are kept; `"` and `\` are escaped; control characters use Go's short
/// escapes (`\n`, `\t`, ...) or `\xNN`; other non-printable characters use `\uNNNN`/`\UNNNNNNNN`.
/// Go's notion of "printable" comes from the Unicode tables; this approximates it (control,
/// non-ASCII whitespace, format and private-use characters are escaped).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `strconv.IsPrint`, which decides what `%q` leaves unescaped.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_or_private = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
        | 0xE000..=0xF8FF | 0xFEFF | 0xFFF9..=0xFFFB | 0xF0000..=0x10FFFF);
    !format_or_private
}

/// Go's name for a JSON value's type in `cannot unmarshal X into ...` errors.
pub fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_escapes_like_percent_q() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\x01""#);
        assert_eq!(go_quote("plain"), "\"plain\"");
    }

    #[test]
    fn type_names_are_gos() {
        assert_eq!(go_type_name(&serde_json::json!([1])), "array");
        assert_eq!(go_type_name(&Value::Null), "null");
    }
}
