//! Go's `time.Duration.String()` format, so the status line reads exactly like DataKit's
//! (`4m40.554909s`, `1h0m0s`, `500ms`, `1.234µs`, `0s`).

use std::fmt::Write as _;
use std::time::Duration;

/// Formats a duration exactly as Go's `time.Duration.String()` does for a non-negative
/// duration.
///
/// Under a second the largest fitting unit among `ns`, `µs` (U+00B5) and `ms` is used with
/// trailing zeros removed; from a second up it is `[<h>h][<m>m]<s>[.<frac>]s`, with minutes
/// shown whenever hours are. Go's durations stop at about 292 years; longer ones are printed
/// in the same form rather than wrapped.
#[must_use]
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    if ns < 1_000 {
        let _ = write!(out, "{ns}ns");
    } else if ns < 1_000_000 {
        push_frac(&mut out, ns, 3);
        out.push_str("µs");
    } else if ns < 1_000_000_000 {
        push_frac(&mut out, ns, 6);
        out.push_str("ms");
    } else {
        let secs = ns / 1_000_000_000;
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            let _ = write!(out, "{h}h");
        }
        if h > 0 || m > 0 {
            let _ = write!(out, "{m}m");
        }
        push_frac(&mut out, s * 1_000_000_000 + ns % 1_000_000_000, 9);
        out.push('s');
    }
    out
}

/// Writes `v / 10^prec` with its fraction, trailing zeros (and a bare point) removed.
fn push_frac(out: &mut String, v: u128, prec: u32) {
    let scale = 10u128.pow(prec);
    let (whole, frac) = (v / scale, v % scale);
    let _ = write!(out, "{whole}");
    if frac != 0 {
        let digits = format!("{frac:0width$}", width = prec as usize);
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_for_documented_and_edge_values() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_nanos(1_000), "1µs"),
            (Duration::from_nanos(1_234), "1.234µs"),
            (Duration::from_micros(1_100), "1.1ms"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_nanos(280_554_909_000), "4m40.554909s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(3661), "1h1m1s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_nanos(1_000_000_001), "1.000000001s"),
            (Duration::from_secs(100 * 3600), "100h0m0s"),
            // Go's largest Duration, math.MaxInt64 ns.
            (
                Duration::from_nanos(9_223_372_036_854_775_807),
                "2562047h47m16.854775807s",
            ),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(*d), *want, "{d:?}");
        }
    }
}
