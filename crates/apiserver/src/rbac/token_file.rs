//! Parsing kube-apiserver's `--token-auth-file` CSV into tokens and users. Separate because it is the only
//! CSV reader here (Go `encoding/csv` rules) and has nothing to do with authorization.

use std::collections::HashMap;

use super::{RbacError, UserInfo};

/// Parses kube-apiserver's `--token-auth-file` CSV: `token,user,uid,"group1,group2"`.
///
/// The groups column is optional and split on commas (empty names dropped); extra columns are
/// ignored. Fields follow CSV quoting (`"..."`, `""` for a quote, quoted fields may span lines);
/// spaces are kept, as Go's CSV reader keeps them. Blank lines and lines starting with `#` are
/// skipped. Unlike kube-apiserver, which only logs a warning, an empty token or a token listed
/// twice is an error: a pure function has nowhere to warn, and either is a mistake in a test
/// fixture. Tokens come back in file order.
pub fn parse_token_file(text: &str) -> Result<Vec<(String, UserInfo)>, RbacError> {
    let mut out: Vec<(String, UserInfo)> = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (line, record) in csv_records(text)? {
        if record.len() < 3 {
            return Err(RbacError::TokenFile {
                line,
                reason: format!(
                    "must have at least 3 columns (token, user name, user uid), found {}",
                    record.len()
                ),
            });
        }
        let token = record[0].clone();
        if token.is_empty() {
            return Err(RbacError::TokenFile {
                line,
                reason: "empty token".to_string(),
            });
        }
        if let Some(first) = first_line.get(&token) {
            return Err(RbacError::TokenFile {
                line,
                reason: format!("duplicate token (first defined on line {first})"),
            });
        }
        first_line.insert(token.clone(), line);
        let groups = record
            .get(3)
            .map(|g| {
                g.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        out.push((
            token,
            UserInfo {
                name: record[1].clone(),
                uid: record[2].clone(),
                groups,
            },
        ));
    }
    Ok(out)
}

/// Splits CSV text into records with their starting line numbers, with Go `encoding/csv` rules
/// (strict quotes), skipping blank lines and `#` comment lines.
fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, RbacError> {
    let chars: Vec<char> = text.chars().collect();
    let mut records = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let start_line = line;
        // Blank line (LF or CRLF) or comment line: skip to the next line.
        let rest_is_newline =
            chars[i] == '\n' || (chars[i] == '\r' && chars.get(i + 1) == Some(&'\n'));
        if rest_is_newline || chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            i += 1;
            line += 1;
            continue;
        }
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            if chars.get(i) == Some(&'"') {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(RbacError::TokenFile {
                                line: start_line,
                                reason:
                                    "extraneous or missing \" in quoted-field (quote not closed)"
                                        .to_string(),
                            });
                        }
                        Some('"') if chars.get(i + 1) == Some(&'"') => {
                            field.push('"');
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            if *c == '\n' {
                                line += 1;
                            }
                            field.push(*c);
                            i += 1;
                        }
                    }
                }
                match chars.get(i) {
                    None | Some(',') | Some('\n') => {}
                    Some('\r') if matches!(chars.get(i + 1), None | Some('\n')) => {}
                    Some(_) => {
                        return Err(RbacError::TokenFile {
                            line,
                            reason: "extraneous or missing \" in quoted-field".to_string(),
                        });
                    }
                }
            } else {
                while let Some(c) = chars.get(i) {
                    match c {
                        ',' | '\n' => break,
                        '\r' if matches!(chars.get(i + 1), None | Some('\n')) => break,
                        '"' => {
                            return Err(RbacError::TokenFile {
                                line,
                                reason: "bare \" in non-quoted field".to_string(),
                            });
                        }
                        c => {
                            field.push(*c);
                            i += 1;
                        }
                    }
                }
            }
            fields.push(field);
            match chars.get(i) {
                Some(',') => i += 1,
                Some('\r') => {
                    i += 2;
                    line += 1;
                    break;
                }
                Some('\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        records.push((start_line, fields));
    }
    Ok(records)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn token_file_parses_like_kube_apiserver() {
        let text = "# comment\n\nt1,alice,uid-1\r\nt2,bob,uid-2,\"system:masters,devs\"\n\"t,3\",\"c \"\"q\"\"\",u3,solo,extra\nt4,dave,u4,\n";
        let got = parse_token_file(text).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[0],
            (
                "t1".into(),
                UserInfo {
                    name: "alice".into(),
                    uid: "uid-1".into(),
                    groups: vec![]
                }
            )
        );
        assert_eq!(got[1].1.groups, vec!["system:masters", "devs"]);
        assert_eq!(got[2].0, "t,3");
        assert_eq!(got[2].1.name, "c \"q\"");
        assert_eq!(got[2].1.groups, vec!["solo"]);
        assert_eq!(got[3].1.groups, Vec::<String>::new());
        assert!(parse_token_file("").unwrap().is_empty());
        assert_eq!(parse_token_file("a,b,c").unwrap().len(), 1);
    }

    #[test]
    fn token_file_errors_name_the_line() {
        let cases = [
            (
                "t1,a,u\nt2,b\n",
                "token file line 2: must have at least 3 columns (token, user name, user uid), found 2",
            ),
            ("# c\n,a,u\n", "token file line 2: empty token"),
            (
                "t,a,u\n\nt,b,u\n",
                "token file line 3: duplicate token (first defined on line 1)",
            ),
            (
                "t,a\"b,u\n",
                "token file line 1: bare \" in non-quoted field",
            ),
            (
                "t,\"a\"b,u\n",
                "token file line 1: extraneous or missing \" in quoted-field",
            ),
            (
                "x,y,z\nt,\"a,u\n",
                "token file line 2: extraneous or missing \" in quoted-field (quote not closed)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_token_file(text).unwrap_err().to_string(),
                want,
                "{text:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn token_file_never_panics(s in "[a-z,\"#\r\n ]{0,60}") {
            let _ = parse_token_file(&s);
        }

        #[test]
        fn token_file_never_panics_any(s in ".{0,60}") {
            let _ = parse_token_file(&s);
        }
    }
}
