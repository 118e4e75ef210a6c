//! Case outcomes, per-target reports and the comparison table.

use std::fmt::Write as _;

use serde::Serialize;

/// Why a case failed: what the contract expected and what the server answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What the contract requires.
    pub expected: String,
    /// What happened instead: the request, status, relevant headers and (truncated) body,
    /// or the transport error.
    pub got: String,
}

impl Failure {
    /// Builds a failure from what was expected and what was observed.
    pub fn new(expected: impl Into<String>, got: impl Into<String>) -> Self {
        Self {
            expected: expected.into(),
            got: got.into(),
        }
    }
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The server behaved as the contract says.
    Passed,
    /// The server did not (or could not be reached, or the case timed out).
    Failed(Failure),
    /// The case could not run against this target; the reason says why.
    Skipped(String),
}

/// The outcome of one named case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseOutcome {
    /// The case's group, e.g. "refresh".
    pub group: &'static str,
    /// The case's name within its group.
    pub name: &'static str,
    /// How it ended.
    pub outcome: Outcome,
}

/// Every selected case's outcome against one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The target's label.
    pub label: String,
    /// One entry per selected case, in registry order.
    pub cases: Vec<CaseOutcome>,
}

impl Report {
    /// Number of passed cases.
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Passed))
    }

    /// Number of failed cases.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    /// Number of skipped cases.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped(_)))
    }

    fn count(&self, pick: impl Fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| pick(&c.outcome)).count()
    }
}

/// Renders a table: one row per case group, one column per report (label), each cell
/// "12/12 ok" or "10/12 FAIL" (with "(n skipped)" when some were skipped, "n skipped" when
/// all were, "-" when the report has no case of that group), and a total row; followed by a
/// list of each failing case: label, group/name, expected, got. A group none of whose cases
/// ran in any report (all skipped) gets no row; the total row still counts its cases.
pub fn render_table(reports: &[Report]) -> String {
    let mut groups: Vec<&str> = Vec::new();
    for case in reports.iter().flat_map(|r| &r.cases) {
        if !groups.contains(&case.group) {
            groups.push(case.group);
        }
    }
    groups.retain(|group| {
        reports
            .iter()
            .flat_map(|r| &r.cases)
            .any(|c| c.group == *group && !matches!(c.outcome, Outcome::Skipped(_)))
    });

    let mut rows: Vec<Vec<String>> = Vec::with_capacity(groups.len() + 2);
    rows.push(
        std::iter::once("group".to_owned())
            .chain(reports.iter().map(|r| r.label.clone()))
            .collect(),
    );
    for group in &groups {
        rows.push(
            std::iter::once((*group).to_owned())
                .chain(reports.iter().map(|r| {
                    cell(
                        r.cases
                            .iter()
                            .filter(|c| c.group == *group)
                            .map(|c| &c.outcome),
                    )
                }))
                .collect(),
        );
    }
    rows.push(
        std::iter::once("total".to_owned())
            .chain(
                reports
                    .iter()
                    .map(|r| cell(r.cases.iter().map(|c| &c.outcome))),
            )
            .collect(),
    );

    let mut out = table(&rows);
    let failures: Vec<(&Report, &CaseOutcome, &Failure)> = reports
        .iter()
        .flat_map(|r| r.cases.iter().map(move |c| (r, c)))
        .filter_map(|(r, c)| match &c.outcome {
            Outcome::Failed(f) => Some((r, c, f)),
            _ => None,
        })
        .collect();
    if failures.is_empty() {
        out.push_str("\nNo failures.\n");
    } else {
        out.push_str("\nFailures:\n");
        for (report, case, failure) in failures {
            // Writing to a String cannot fail.
            let _ = write!(
                out,
                "- {}: {}/{}\n    expected: {}\n    got: {}\n",
                report.label,
                case.group,
                case.name,
                indent(&failure.expected),
                indent(&failure.got),
            );
        }
    }
    out
}

/// How many case names a line of [`render_skips`] lists before it only counts them.
const SKIPS_NAMED: usize = 6;

/// The cases (`group/name`) some reports skipped for one reason, and those reports' labels.
type SameSkips<'a> = (Vec<String>, Vec<&'a str>);

/// Lists why cases were skipped, one entry per reason (in the order first met): the reports'
/// labels that skipped the same cases for it, and those cases (`group/name`, or only their
/// number when there are more than a few, as for a profile that is not mounted). "No skips."
/// when nothing was skipped. Shown beside [`render_table`], so a skip is never silent.
pub fn render_skips(reports: &[Report]) -> String {
    // reason -> [(cases, labels)], keeping first-seen order throughout.
    let mut by_reason: Vec<(&str, Vec<SameSkips<'_>>)> = Vec::new();
    for report in reports {
        let mut own: Vec<(&str, Vec<String>)> = Vec::new();
        for case in &report.cases {
            if let Outcome::Skipped(reason) = &case.outcome {
                let path = format!("{}/{}", case.group, case.name);
                match own.iter_mut().find(|(r, _)| *r == reason.as_str()) {
                    Some((_, cases)) => cases.push(path),
                    None => own.push((reason.as_str(), vec![path])),
                }
            }
        }
        for (reason, cases) in own {
            let index = match by_reason.iter().position(|(r, _)| *r == reason) {
                Some(index) => index,
                None => {
                    by_reason.push((reason, Vec::new()));
                    by_reason.len() - 1
                }
            };
            let groups = &mut by_reason[index].1;
            match groups.iter_mut().find(|(c, _)| *c == cases) {
                Some((_, labels)) => labels.push(&report.label),
                None => groups.push((cases, vec![&report.label])),
            }
        }
    }
    if by_reason.is_empty() {
        return "No skips.\n".to_owned();
    }
    let mut out = String::from("Skipped:\n");
    for (reason, groups) in by_reason {
        let _ = writeln!(out, "- {}", indent(reason));
        for (cases, labels) in groups {
            let named = if cases.len() > SKIPS_NAMED {
                format!("{} cases", cases.len())
            } else {
                cases.join(", ")
            };
            // Labels hold commas themselves ("native,envelope,rbac"), hence the semicolons.
            let _ = writeln!(out, "    {}: {named}", labels.join("; "));
        }
    }
    out
}

/// One table cell summarising some outcomes.
fn cell<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> String {
    let (mut total, mut passed, mut failed, mut skipped) = (0, 0, 0, 0);
    for outcome in outcomes {
        total += 1;
        match outcome {
            Outcome::Passed => passed += 1,
            Outcome::Failed(_) => failed += 1,
            Outcome::Skipped(_) => skipped += 1,
        }
    }
    if total == 0 {
        return "-".to_owned();
    }
    if skipped == total {
        return format!("{total} skipped");
    }
    let verdict = if failed == 0 { "ok" } else { "FAIL" };
    let mut text = format!("{passed}/{total} {verdict}");
    if skipped > 0 {
        let _ = write!(text, " ({skipped} skipped)");
    }
    text
}

/// Lays out rows as a Markdown-style table with aligned columns; the first row is the header.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|row| row.get(i))
                .map(|text| text.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String]| {
        let mut text = String::from("|");
        for (i, width) in widths.iter().enumerate() {
            let value = row.get(i).map_or("", String::as_str);
            let _ = write!(text, " {value:<width$} |");
        }
        text.push('\n');
        text
    };
    let mut out = String::new();
    if let Some((header, body)) = rows.split_first() {
        out.push_str(&line(header));
        out.push('|');
        for width in &widths {
            out.push_str(&"-".repeat(width + 2));
            out.push('|');
        }
        out.push('\n');
        for row in body {
            out.push_str(&line(row));
        }
    }
    out
}

/// Indents continuation lines so multi-line text stays under its list item.
fn indent(text: &str) -> String {
    text.replace('\n', "\n      ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(group: &'static str, name: &'static str, outcome: Outcome) -> CaseOutcome {
        CaseOutcome {
            group,
            name,
            outcome,
        }
    }

    fn sample() -> Vec<Report> {
        vec![
            Report {
                label: "axum/sqlite".to_owned(),
                cases: vec![
                    case("login", "a", Outcome::Passed),
                    case("login", "b", Outcome::Passed),
                    case("accounts", "c", Outcome::Skipped("no hooks".to_owned())),
                ],
            },
            Report {
                label: "warp".to_owned(),
                cases: vec![
                    case("login", "a", Outcome::Passed),
                    case(
                        "login",
                        "b",
                        Outcome::Failed(Failure::new("status 200", "POST /x -> 500")),
                    ),
                    case("accounts", "c", Outcome::Passed),
                ],
            },
        ]
    }

    #[test]
    fn counts() {
        let reports = sample();
        assert_eq!(
            (
                reports[0].passed(),
                reports[0].failed(),
                reports[0].skipped()
            ),
            (2, 0, 1)
        );
        assert_eq!(
            (
                reports[1].passed(),
                reports[1].failed(),
                reports[1].skipped()
            ),
            (2, 1, 0)
        );
    }

    #[test]
    fn table_has_a_row_per_group_and_a_column_per_report() {
        let text = render_table(&sample());
        let expected = "\
| group    | axum/sqlite        | warp     |
|----------|--------------------|----------|
| login    | 2/2 ok             | 1/2 FAIL |
| accounts | 1 skipped          | 1/1 ok   |
| total    | 2/3 ok (1 skipped) | 2/3 FAIL |

Failures:
- warp: login/b
    expected: status 200
    got: POST /x -> 500
";
        assert_eq!(text, expected);
    }

    #[test]
    fn missing_groups_show_a_dash_and_no_failures_are_announced() {
        let reports = vec![
            Report {
                label: "one".to_owned(),
                cases: vec![case("me", "x", Outcome::Passed)],
            },
            Report {
                label: "two".to_owned(),
                cases: vec![],
            },
        ];
        let text = render_table(&reports);
        assert!(text.contains("| me    | 1/1 ok | -   |"), "{text}");
        assert!(text.ends_with("\nNo failures.\n"), "{text}");
    }

    #[test]
    fn multi_line_failures_stay_indented() {
        let reports = vec![Report {
            label: "l".to_owned(),
            cases: vec![case(
                "g",
                "n",
                Outcome::Failed(Failure::new("one", "first\nsecond")),
            )],
        }];
        assert!(render_table(&reports).contains("    got: first\n      second\n"));
    }

    #[test]
    fn groups_skipped_everywhere_get_no_row_but_count_in_the_total() {
        let skipped = || Outcome::Skipped("not mounted".to_owned());
        let reports = vec![
            Report {
                label: "one".to_owned(),
                cases: vec![
                    case("me", "x", Outcome::Passed),
                    case("rbac", "y", skipped()),
                    case("envelope", "z", skipped()),
                ],
            },
            Report {
                label: "two".to_owned(),
                cases: vec![
                    case("me", "x", Outcome::Passed),
                    case("rbac", "y", skipped()),
                    case("envelope", "z", Outcome::Passed),
                ],
            },
        ];
        let expected = "\
| group    | one                | two                |
|----------|--------------------|--------------------|
| me       | 1/1 ok             | 1/1 ok             |
| envelope | 1 skipped          | 1/1 ok             |
| total    | 1/3 ok (2 skipped) | 2/3 ok (1 skipped) |

No failures.
";
        assert_eq!(render_table(&reports), expected);
    }

    #[test]
    fn skips_are_listed_by_reason_with_their_labels() {
        let skipped = |why: &str| Outcome::Skipped(why.to_owned());
        let many = |label: &str| Report {
            label: label.to_owned(),
            cases: (0..8)
                .map(|_| case("rbac", "r", skipped("profile rbac not mounted")))
                .chain([case("attacks", "hs", skipped("no secret"))])
                .collect(),
        };
        let mut reports = sample();
        reports.extend([many("a,b"), many("c")]);
        let expected = "\
Skipped:
- no hooks
    axum/sqlite: accounts/c
- profile rbac not mounted
    a,b; c: 8 cases
- no secret
    a,b; c: attacks/hs
";
        assert_eq!(render_skips(&reports), expected);
        assert_eq!(render_skips(&reports[1..2]), "No skips.\n");
    }

    #[test]
    fn empty_input_renders_only_the_frame() {
        assert_eq!(
            render_table(&[]),
            "| group |\n|-------|\n| total |\n\nNo failures.\n"
        );
    }
}
