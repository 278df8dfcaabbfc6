//! "Did you mean" suggestions for unknown keys and variables, by edit distance.

/// The candidate closest to `unknown` by Damerau-Levenshtein distance (case-insensitive),
/// if it is close enough to be a likely typo: at most 2 edits, or a third of the longer
/// name for long names. A name that starts with the other (`grace_period` and `grace`,
/// at least 4 characters shared) counts as one edit. Ties go to the first candidate.
pub(crate) fn closest<'a>(
    unknown: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = unknown.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let cand = candidate.to_ascii_lowercase();
        let prefixed = lower.len().min(cand.len()) >= 4
            && (lower.starts_with(&cand) || cand.starts_with(&lower));
        let d = if prefixed {
            1
        } else {
            strsim::damerau_levenshtein(&lower, &cand)
        };
        let limit = 2.max(unknown.len().max(candidate.len()) / 3);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        let keys = ["duration", "renew_deadline", "retry_period"];
        assert_eq!(closest("durration", keys), Some("duration"));
        assert_eq!(closest("renew_dedline", keys), Some("renew_deadline"));
        assert_eq!(closest("RETRY_PERIOD", keys), Some("retry_period"));
        assert_eq!(closest("colour", keys), None);
        assert_eq!(closest("duration_seconds", keys), Some("duration"));
        assert_eq!(closest("dur", keys), None);
    }
}
