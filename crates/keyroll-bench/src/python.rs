//! The `keyroll` Python package: Django-format verify through it against
//! Django's own `Signer.unsign`, on the same tokens, in one run
//! (`crates/keyroll-py/bench/django_verify.py`, run in the test venv with the
//! package installed).

use keyroll_testkit::python::{python_with, run_python};
use serde_json::Value;

/// The benchmark script, run with `python -c`.
const SCRIPT: &str = include_str!("../../keyroll-py/bench/django_verify.py");

/// The stated target: keyroll at least this many times faster than Django.
pub const TARGET_RATIO: f64 = 5.0;

/// One token's best times per call, in ns.
#[derive(Debug, Clone)]
pub struct PythonRow {
    /// `current` or `fallback 16`.
    pub token: String,
    /// `DjangoSigner.unsign` of the keyroll package.
    pub keyroll_ns: f64,
    /// Django's `Signer.unsign`.
    pub django_ns: f64,
}

/// Results of the Python package section.
#[derive(Debug, Clone)]
pub struct PythonResults {
    /// Python version.
    pub python: String,
    /// Django version.
    pub django: String,
    /// Keys held: the current key and 16 fallbacks.
    pub keys: usize,
    /// The current key's token, then the 16th fallback's.
    pub rows: Vec<PythonRow>,
}

/// Runs the script; `None` (after the testkit's message, a failure under CI)
/// without a venv that has Django and the keyroll package.
pub fn run(quick: bool) -> Option<PythonResults> {
    let python = python_with(&["django", "keyroll"])?;
    let args: &[&str] = if quick {
        &["--json", "--quick"]
    } else {
        &["--json"]
    };
    let out: Value =
        serde_json::from_str(&run_python(&python, SCRIPT, args)).expect("the script prints JSON");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Some(PythonResults {
        python: text(&out["python"]),
        django: text(&out["django"]),
        keys: out["keys"].as_u64().unwrap_or_default() as usize,
        rows: out["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| PythonRow {
                token: text(&row["token"]),
                keyroll_ns: row["keyroll_ns"].as_f64().unwrap_or(f64::NAN),
                django_ns: row["django_ns"].as_f64().unwrap_or(f64::NAN),
            })
            .collect(),
    })
}
