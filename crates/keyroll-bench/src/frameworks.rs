//! What keyroll costs a Django or Flask request, against the same site with
//! the same keys held statically (`crates/keyroll-py/bench/request_cost.py`,
//! run in the test venv with the package installed): a request, Django's
//! `signing.loads`, reads of `settings.SECRET_KEY`, `SECRET_KEY_FALLBACKS`
//! and another setting, each side in its own processes, alternating; and the
//! same Django view under gunicorn.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use keyroll_testkit::python::python_with;
use serde_json::Value;

use crate::report::{Target, format_ns};

/// The script, run by path: it starts itself again as child processes and
/// gunicorn imports its site module from beside it.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../keyroll-py/bench/request_cost.py");

/// One case: keyroll against the static key.
#[derive(Debug, Clone)]
pub struct CaseRow {
    /// `django` or `flask`.
    pub framework: String,
    /// `request`, `signing.loads`, `SECRET_KEY read`, ...
    pub case: String,
    /// Median over processes of each process's best round, ns per call.
    pub keyroll_ns: f64,
    /// The same for the static key.
    pub static_ns: f64,
    /// The stated limit of keyroll / static, if the case has one.
    pub target: Option<f64>,
}

impl CaseRow {
    /// keyroll / static.
    pub fn ratio(&self) -> f64 {
        self.keyroll_ns / self.static_ns
    }
}

/// Results of the section.
#[derive(Debug, Clone)]
pub struct FrameworkResults {
    /// Python, Django and Flask versions.
    pub versions: String,
    /// Child processes per side.
    pub processes: u64,
    /// Every case of both frameworks.
    pub rows: Vec<CaseRow>,
    /// Django under gunicorn: (workers, clients, keyroll requests/s, static requests/s).
    pub gunicorn: (u64, u64, f64, f64),
}

/// Runs the script; `None` (after the testkit's message, a failure under CI)
/// without a venv that has Django, Flask, gunicorn and the keyroll package.
pub fn run(quick: bool) -> Option<FrameworkResults> {
    let python = python_with(&["django", "flask", "gunicorn", "keyroll"])?;
    let mut command = Command::new(python);
    command.arg(Path::new(SCRIPT)).arg("--json");
    if quick {
        command.arg("--quick");
    }
    let output = command.output().expect("python runs");
    assert!(
        output.status.success(),
        "request_cost.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(parse(
        &serde_json::from_slice(&output.stdout).expect("the script prints JSON"),
    ))
}

fn parse(out: &Value) -> FrameworkResults {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mut rows = Vec::new();
    for (framework, cases) in out["frameworks"].as_object().into_iter().flatten() {
        for row in cases.as_array().into_iter().flatten() {
            rows.push(CaseRow {
                framework: framework.clone(),
                case: text(&row["case"]),
                keyroll_ns: number(&row["keyroll_ns"]),
                static_ns: number(&row["static_ns"]),
                target: row["target"].as_f64(),
            });
        }
    }
    let g = &out["gunicorn"];
    FrameworkResults {
        versions: format!(
            "Python {}, Django {}, Flask {}",
            text(&out["python"]),
            text(&out["django"]),
            text(&out["flask"])
        ),
        processes: out["processes"].as_u64().unwrap_or_default(),
        rows,
        gunicorn: (
            g["workers"].as_u64().unwrap_or_default(),
            g["clients"].as_u64().unwrap_or_default(),
            number(&g["keyroll_rps"]),
            number(&g["static_rps"]),
        ),
    }
}

/// One target per case that has one.
pub fn targets(f: Option<&FrameworkResults>) -> Vec<Target> {
    let Some(f) = f else {
        return vec![Target {
            goal: "Django and Flask requests with live keys within 2-3% of a static key".into(),
            measured: "not measured (no venv with Django, Flask, gunicorn and the keyroll package)".into(),
            met: None,
            limit: String::new(),
        }];
    };
    f.rows
        .iter()
        .filter_map(|row| {
            let limit = row.target?;
            let ratio = row.ratio();
            Some(Target {
                goal: format!(
                    "{} {} with keyroll <= {limit:.2}x the same with a static key",
                    title(&row.framework),
                    row.case
                ),
                measured: format!(
                    "{ratio:.3}x ({} vs {})",
                    format_ns(row.keyroll_ns),
                    format_ns(row.static_ns)
                ),
                met: Some(ratio <= limit),
                limit: limit_of(row),
            })
        })
        .collect()
}

fn title(framework: &str) -> &str {
    match framework {
        "django" => "Django",
        "flask" => "Flask",
        other => other,
    }
}

fn limit_of(row: &CaseRow) -> String {
    match (row.framework.as_str(), row.case.as_str()) {
        ("flask", _) => "One wrapper call per app context: a generation read from the key ring (one atomic \
                         load through PyO3) and an integer compare, on top of Flask's own app context; \
                         measured with the hook on and off in turn in the same process, so the spread \
                         between processes does not enter."
            .into(),
        (_, "request, in one process") => "A request pays the key reads of its signers (Django reads \
                         SECRET_KEY and the fallbacks when it builds one) on top of the same HMACs; \
                         measured with keyroll's settings class on and off in turn in the same process, \
                         so the spread between processes does not enter."
            .into(),
        (_, "DEBUG read, in one process") => "Another setting's read goes through Django's own \
                         LazySettings.__getattr__ cache: keyroll's subclass adds no Python-level path \
                         in front of it."
            .into(),
        _ => "A descriptor call through PyO3 (Python's type slot into Rust) plus the \
              checks every read must make: the generation in force (one item of \
              a list only the GIL guards, no atomic read-modify-write), the key set in place unchanged, \
              the keyring not failed closed, the coarse clock before the next role change."
            .into(),
    }
}

/// The report's section.
pub fn section(md: &mut String, f: &FrameworkResults) {
    let _ = writeln!(
        md,
        "\n## What a Django or Flask request pays\n\n{} against the same site with the same two keys \
         held statically (Django's `SECRET_KEY` and `SECRET_KEY_FALLBACKS` in settings, Flask's \
         `secret_key` and `SECRET_KEY_FALLBACKS`). Each side runs in its own processes, the sides \
         alternating, {} processes each; a figure is the median over processes of each process's \
         best round (`crates/keyroll-py/bench/request_cost.py`). The request is a test-client GET \
         whose view reads and updates a signed-cookie session, so the cookie is verified and \
         signed again every time. A case *in one process* measures, in each keyroll process, the \
         same case with what keyroll adds installed and removed in turn, round after round: for \
         Django the settings object's class (keyroll's subclass with the `SECRET_KEY` and \
         `SECRET_KEY_FALLBACKS` descriptors, against Django's own `LazySettings` with the same keys \
         set statically), for Flask the per-request hook (its `app.app_context` wrapper). That is \
         the cost keyroll adds, which figures from separate processes cannot resolve (they differ \
         between processes by more than the 2-3% targets); the targets are held to it.\n\n\
         | framework | case | keyroll | static key | keyroll / static | target |\n|---|---|---|---|---|---|",
        f.versions, f.processes
    );
    for row in &f.rows {
        let target = row.target.map(|t| format!("<= {t:.2}x")).unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.3}x | {target} |",
            title(&row.framework),
            row.case,
            format_ns(row.keyroll_ns),
            format_ns(row.static_ns),
            row.ratio()
        );
    }
    let (workers, clients, ours, theirs) = f.gunicorn;
    let _ = writeln!(
        md,
        "\nThe same Django view under gunicorn ({workers} sync workers, `--preload`), {clients} client \
         threads of a bounded load loop on the same machine (each a user whose session cookie is \
         verified and signed again on every request), the sides in turn: **{ours:.0} requests/s with \
         keyroll, {theirs:.0} with the static key** ({:.3}x the time per request). The load \
         generator shares the 2 cores with the workers, so these rates are the machine's, not \
         Django's ceiling.",
        theirs / ours
    );
}

/// `--frameworks`: the section alone, printed.
pub fn print(f: &FrameworkResults) {
    let mut md = String::new();
    section(&mut md, f);
    for target in targets(Some(f)) {
        let verdict = match target.met {
            Some(true) => "met",
            Some(false) => "not met",
            None => "not measured",
        };
        let _ = writeln!(md, "- {}: {} ({verdict})", target.goal, target.measured);
    }
    print!("{md}");
}
