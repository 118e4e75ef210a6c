//! The figures: one row per adapter × database × scenario, the ratios derived from them, the
//! machine they came from; rendered as a table and as `target/bench/latest.json`.

use std::path::Path;

use serde::Serialize;

use super::load::Outcome;

/// One scenario on one adapter and database.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `axum`, `actix` or `warp`.
    pub adapter: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Scenario name.
    pub scenario: String,
    /// Expected answers per second.
    pub rps: Option<f64>,
    /// Median latency of the expected answers.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency.
    pub p99_ms: Option<f64>,
    /// Largest latency.
    pub max_ms: Option<f64>,
    /// Peak resident set of the server during the scenario (idle: current), MiB.
    pub rss_mib: Option<f64>,
    /// Expected answers counted.
    pub requests: u64,
    /// Allowed refusals (503 + `Retry-After` from the bounded hashing queue).
    pub rejected_503: u64,
    /// Unexpected answers and transport errors: any makes the run fail.
    pub errors: u64,
    /// A few of the errors, verbatim.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
}

impl Row {
    /// A row from a load's outcome.
    pub fn from_outcome(
        adapter: &str,
        database: &str,
        scenario: &str,
        outcome: &Outcome,
        peak_rss_kib: Option<u64>,
    ) -> Self {
        Self {
            adapter: adapter.to_owned(),
            database: database.to_owned(),
            scenario: scenario.to_owned(),
            rps: Some(round(outcome.rps(), 1)),
            p50_ms: outcome.quantile_ms(0.5).map(|v| round(v, 3)),
            p99_ms: outcome.quantile_ms(0.99).map(|v| round(v, 3)),
            max_ms: outcome.max_ms().map(|v| round(v, 3)),
            rss_mib: peak_rss_kib.map(mib),
            requests: outcome.ok,
            rejected_503: outcome.rejected,
            errors: outcome.errors,
            error_samples: outcome.samples.clone(),
        }
    }

    /// A row with only a resident set (the idle server).
    pub fn memory_only(
        adapter: &str,
        database: &str,
        scenario: &str,
        rss_kib: Option<u64>,
    ) -> Self {
        Self {
            adapter: adapter.to_owned(),
            database: database.to_owned(),
            scenario: scenario.to_owned(),
            rps: None,
            p50_ms: None,
            p99_ms: None,
            max_ms: None,
            rss_mib: rss_kib.map(mib),
            requests: 0,
            rejected_503: 0,
            errors: 0,
            error_samples: Vec::new(),
        }
    }

    /// A scenario that could not run at all.
    pub fn failed(adapter: &str, database: &str, scenario: &str, error: String) -> Self {
        Self {
            errors: 1,
            error_samples: vec![error],
            ..Self::memory_only(adapter, database, scenario, None)
        }
    }
}

/// The derived figures of one adapter and database, with the targets.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    /// `axum`, `actix` or `warp`.
    pub adapter: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// `me` rps ÷ `hello` rps. Target ≥ 0.5 on SQLite, ≥ 0.3 on Postgres.
    pub me_over_hello: Option<f64>,
    /// `me-pat` rps ÷ `hello` rps (same targets, reported for information).
    pub me_pat_over_hello: Option<f64>,
    /// `login` rps ÷ the argon2 limit. Target ≥ 0.9.
    pub login_over_argon2_limit: Option<f64>,
    /// argon2id hashes per second on all cores, measured in-process just before and
    /// just after `login` (the mean).
    pub argon2_limit_per_s: Option<f64>,
    /// `me-under-login-flood` p99 ÷ `me` p99: as low as possible.
    pub me_p99_flood_over_idle: Option<f64>,
    /// Resident set of the idle server just after start, MiB. Target < 30 on SQLite.
    pub idle_rss_mib: Option<f64>,
    /// Peak resident set during `login-flood-memory`, MiB.
    pub flood_peak_rss_mib: Option<f64>,
    /// idle + (hashing slots + 2) × argon2 memory, MiB: the flood's peak must stay below.
    pub flood_rss_budget_mib: Option<f64>,
    /// Hashing slots of the server.
    pub hashing_slots: usize,
    /// The database's own write limit: write transactions of the refresh path's shape (lock,
    /// update one row, insert one) committed per second by a pool like the server's, with no
    /// HTTP or token work, measured on the same database right after the scenarios.
    pub write_limit_per_s: Option<f64>,
    /// `refresh` rps ÷ the write limit. Target ≥ 0.5.
    pub refresh_over_write_limit: Option<f64>,
}

impl Ratios {
    /// Derives the ratios from the rows of one adapter and database.
    pub fn derive(
        rows: &[Row],
        adapter: &str,
        database: &str,
        argon2_limit: Option<f64>,
        hashing_slots: usize,
        argon2_memory_kib: u32,
    ) -> Self {
        let find = |scenario: &str| {
            rows.iter().find(|r| {
                r.adapter == adapter
                    && r.database == database
                    && r.scenario == scenario
                    && r.errors == 0
            })
        };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(round(a / b, 3)),
            _ => None,
        };
        let rps = |scenario: &str| find(scenario).and_then(|r| r.rps);
        let p99 = |scenario: &str| find(scenario).and_then(|r| r.p99_ms);
        let rss = |scenario: &str| find(scenario).and_then(|r| r.rss_mib);
        let idle = rss("idle");
        Self {
            adapter: adapter.to_owned(),
            database: database.to_owned(),
            me_over_hello: ratio(rps("me"), rps("hello")),
            me_pat_over_hello: ratio(rps("me-pat"), rps("hello")),
            login_over_argon2_limit: ratio(rps("login"), argon2_limit),
            argon2_limit_per_s: argon2_limit.map(|v| round(v, 1)),
            me_p99_flood_over_idle: ratio(p99("me-under-login-flood"), p99("me")),
            idle_rss_mib: idle,
            flood_peak_rss_mib: rss("login-flood-memory"),
            flood_rss_budget_mib: idle.map(|idle| {
                round(
                    idle + (hashing_slots as f64 + 2.0) * f64::from(argon2_memory_kib) / 1024.0,
                    1,
                )
            }),
            hashing_slots,
            write_limit_per_s: None,
            refresh_over_write_limit: None,
        }
    }

    /// Adds the database's write limit (per second) and `refresh` against it.
    pub fn with_write_limit(mut self, rows: &[Row], limit: Option<f64>) -> Self {
        let refresh = rows
            .iter()
            .find(|r| {
                r.adapter == self.adapter
                    && r.database == self.database
                    && r.scenario == "refresh"
                    && r.errors == 0
            })
            .and_then(|r| r.rps);
        self.write_limit_per_s = limit.map(|v| round(v, 0));
        self.refresh_over_write_limit = match (refresh, limit) {
            (Some(r), Some(l)) if l > 0.0 => Some(round(r / l, 3)),
            _ => None,
        };
        self
    }

    /// Each target of the issue with whether it holds (`None`: not measured).
    pub fn targets(&self) -> Vec<(String, Option<bool>)> {
        let me_target = if self.database == "sqlite" { 0.5 } else { 0.3 };
        let mut targets = vec![
            (
                format!("me_over_hello >= {me_target}"),
                self.me_over_hello.map(|v| v >= me_target),
            ),
            (
                "login_over_argon2_limit >= 0.9".to_owned(),
                self.login_over_argon2_limit.map(|v| v >= 0.9),
            ),
            (
                "flood peak RSS <= idle + (slots + 2) x argon2 memory".to_owned(),
                match (self.flood_peak_rss_mib, self.flood_rss_budget_mib) {
                    (Some(peak), Some(budget)) => Some(peak <= budget),
                    _ => None,
                },
            ),
        ];
        targets.push((
            "refresh_over_write_limit >= 0.5".to_owned(),
            self.refresh_over_write_limit.map(|v| v >= 0.5),
        ));
        if self.database == "sqlite" {
            targets.push((
                "idle RSS < 30 MiB".to_owned(),
                self.idle_rss_mib.map(|v| v < 30.0),
            ));
        }
        targets
    }
}

/// Where and under what load the figures were taken.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs (`nproc`).
    pub nproc: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `/proc/loadavg` before the first server started.
    pub loadavg_before: String,
    /// `/proc/loadavg` after the last scenario.
    pub loadavg_after: String,
}

impl Machine {
    /// What can be read now; `loadavg_after` is filled in at the end.
    pub fn probe() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            loadavg_before: loadavg(),
            loadavg_after: String::new(),
        }
    }
}

/// The first three fields of `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The settings a run used.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Connections per load.
    pub connections: usize,
    /// Warm-up per scenario, seconds.
    pub warmup_s: f64,
    /// Measuring window per scenario, seconds.
    pub duration_s: f64,
    /// Whether this was a `--quick` run.
    pub quick: bool,
    /// argon2id memory KiB, iterations, lanes.
    pub argon2: [u32; 3],
    /// The server's log filter (`AUTH_LOG`).
    pub server_log: String,
    /// Extra `serve` arguments.
    pub server_args: Vec<String>,
    /// Worker threads of the load generator.
    pub client_threads: usize,
}

/// Everything a run writes to `latest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// The settings.
    pub settings: Settings,
    /// One object per adapter × database × scenario.
    pub results: Vec<Row>,
    /// One object per adapter × database.
    pub ratios: Vec<Ratios>,
}

impl Report {
    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")?;
        Ok(())
    }

    /// The results table, then the ratios with their targets, as Markdown-friendly text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "machine: {} x {}, load before {} / after {}\n\n",
            self.machine.nproc,
            self.machine.cpu_model,
            self.machine.loadavg_before,
            self.machine.loadavg_after
        ));
        out.push_str(
            "| adapter | database | scenario | rps | p50 ms | p99 ms | max ms | RSS MiB | 503 | errors |\n",
        );
        out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &self.results {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                row.adapter,
                row.database,
                row.scenario,
                show(row.rps, 0),
                show(row.p50_ms, 2),
                show(row.p99_ms, 2),
                show(row.max_ms, 1),
                show(row.rss_mib, 1),
                row.rejected_503,
                row.errors,
            ));
        }
        out.push_str(
            "\n| adapter | database | me/hello | me-pat/hello | login/argon2 limit (limit/s) | me p99 flood/idle | idle RSS | flood peak RSS (budget) | refresh/write limit (limit/s) |\n",
        );
        out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for ratio in &self.ratios {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} ({}) | {} | {} | {} ({}) | {} ({}) |\n",
                ratio.adapter,
                ratio.database,
                show(ratio.me_over_hello, 3),
                show(ratio.me_pat_over_hello, 3),
                show(ratio.login_over_argon2_limit, 3),
                show(ratio.argon2_limit_per_s, 1),
                show(ratio.me_p99_flood_over_idle, 2),
                show(ratio.idle_rss_mib, 1),
                show(ratio.flood_peak_rss_mib, 1),
                show(ratio.flood_rss_budget_mib, 1),
                show(ratio.refresh_over_write_limit, 3),
                show(ratio.write_limit_per_s, 0),
            ));
        }
        out.push('\n');
        for ratio in &self.ratios {
            let verdicts: Vec<String> = ratio
                .targets()
                .into_iter()
                .map(|(target, holds)| {
                    let verdict = match holds {
                        Some(true) => "holds",
                        Some(false) => "MISSED",
                        None => "not measured",
                    };
                    format!("{target}: {verdict}")
                })
                .collect();
            out.push_str(&format!(
                "{}/{}: {}\n",
                ratio.adapter,
                ratio.database,
                verdicts.join("; ")
            ));
        }
        out
    }
}

fn show(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn mib(kib: u64) -> f64 {
    round(kib as f64 / 1024.0, 1)
}
