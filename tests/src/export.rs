//! A report as files other tools read: JUnit XML for CI systems, JSON for scripts.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cleanup::Cleanup;
use crate::report::{Outcome, Report};

/// `report` as JUnit XML: a `<testsuites>` with one `<testsuite>` per case group (in the
/// order first met) and one `<testcase>` per case, carrying a `<failure>` (message: what was
/// expected; text: what happened) or a `<skipped>` (message: why). `elapsed` is the whole
/// run's time, given on the root; cases are not timed one by one.
pub fn render_junit(report: &Report, elapsed: Duration) -> String {
    let mut groups: Vec<&str> = Vec::new();
    for case in &report.cases {
        if !groups.contains(&case.group) {
            groups.push(case.group);
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // Writing to a String cannot fail, hence the ignored results.
    let _ = writeln!(
        out,
        "<testsuites name=\"auth-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" \
         errors=\"0\" time=\"{:.3}\">",
        report.cases.len(),
        report.failed(),
        report.skipped(),
        elapsed.as_secs_f64()
    );
    for group in groups {
        let cases: Vec<_> = report.cases.iter().filter(|c| c.group == group).collect();
        let failed = cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .count();
        let skipped = cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
            .count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" \
             errors=\"0\">",
            escape(group),
            cases.len()
        );
        for case in cases {
            let open = format!(
                "    <testcase classname=\"auth-conformance.{}\" name=\"{}\"",
                escape(case.group),
                escape(case.name)
            );
            match &case.outcome {
                Outcome::Passed => {
                    let _ = writeln!(out, "{open}/>");
                }
                Outcome::Failed(failure) => {
                    let _ = writeln!(
                        out,
                        "{open}>\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(&failure.expected),
                        escape(&failure.got)
                    );
                }
                Outcome::Skipped(reason) => {
                    let _ = writeln!(
                        out,
                        "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(reason)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// `report` (and what the clean-up did) as JSON: `{target, elapsed_seconds, summary: {passed,
/// failed, skipped}, cases: [{group, name, outcome, expected?, got?, reason?}], cleanup}`.
pub fn render_json(report: &Report, elapsed: Duration, cleanup: Option<&Cleanup>) -> String {
    let cases: Vec<Value> = report
        .cases
        .iter()
        .map(|case| {
            let mut entry = json!({"group": case.group, "name": case.name});
            match &case.outcome {
                Outcome::Passed => entry["outcome"] = json!("passed"),
                Outcome::Failed(failure) => {
                    entry["outcome"] = json!("failed");
                    entry["expected"] = json!(failure.expected);
                    entry["got"] = json!(failure.got);
                }
                Outcome::Skipped(reason) => {
                    entry["outcome"] = json!("skipped");
                    entry["reason"] = json!(reason);
                }
            }
            entry
        })
        .collect();
    let document = json!({
        "target": report.label,
        "elapsed_seconds": elapsed.as_secs_f64(),
        "summary": {
            "passed": report.passed(),
            "failed": report.failed(),
            "skipped": report.skipped(),
        },
        "cases": cases,
        "cleanup": cleanup,
    });
    // A `Value` always serializes.
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

/// `text` safe inside an XML attribute or element: the five special characters escaped, and
/// the characters XML 1.0 cannot carry at all (most control characters) replaced by `?`, so
/// that a server answering garbage still gives a file the CI system parses.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CaseOutcome, Failure};

    fn sample() -> Report {
        let case = |group, name, outcome| CaseOutcome {
            group,
            name,
            outcome,
        };
        Report {
            label: "http://x".to_owned(),
            cases: vec![
                case("login", "works", Outcome::Passed),
                case(
                    "login",
                    "refuses",
                    Outcome::Failed(Failure::new("401 <problem>", "200 & \"ok\"\u{1}")),
                ),
                case(
                    "cors",
                    "preflight",
                    Outcome::Skipped("no origin".to_owned()),
                ),
            ],
        }
    }

    #[test]
    fn junit_has_a_suite_per_group_and_escapes_everything() {
        let xml = render_junit(&sample(), Duration::from_millis(1500));
        assert!(xml.contains(
            "<testsuites name=\"auth-conformance\" tests=\"3\" failures=\"1\" skipped=\"1\" \
             errors=\"0\" time=\"1.500\">"
        ));
        assert!(xml.contains(
            "<testsuite name=\"login\" tests=\"2\" failures=\"1\" skipped=\"0\" errors=\"0\">"
        ));
        assert!(xml.contains(
            "<failure message=\"401 &lt;problem&gt;\">200 &amp; &quot;ok&quot;?</failure>"
        ));
        assert!(xml.contains("<skipped message=\"no origin\"/>"));
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert_eq!(xml.matches("</testsuite>").count(), 2);
    }

    #[test]
    fn json_lists_every_case_with_its_outcome() {
        let text = render_json(&sample(), Duration::from_secs(2), None);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["summary"],
            json!({"passed": 1, "failed": 1, "skipped": 1})
        );
        assert_eq!(value["cases"][1]["outcome"], "failed");
        assert_eq!(value["cases"][2]["reason"], "no origin");
        assert_eq!(value["cleanup"], Value::Null);
    }
}
