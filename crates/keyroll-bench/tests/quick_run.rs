//! `scripts/bench --quick` end to end: the binary runs every section against
//! the real peers (Django and itsdangerous in the venv, a real OpenBao, a real
//! key file) and writes a report with both plots.

use std::process::Command;

#[test]
fn a_quick_run_writes_every_section_and_both_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("BENCHMARKS.md");
    let img = dir.path().join("img");
    let status = Command::new(env!("CARGO_BIN_EXE_keyroll-bench"))
        .args(["--quick", "--out"])
        .arg(&out)
        .arg("--img-dir")
        .arg(&img)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("keyroll-bench runs");
    assert!(status.success());
    let report = std::fs::read_to_string(&out).unwrap();
    for section in [
        "## Machine",
        "## Targets",
        "## Native format against the limit",
        "## Every core",
        "## Allocations",
        "## Signed cookies against cookie-rs",
        "## Verify latency under key swaps",
        "## File change to new key in use",
        "## Fleet against one OpenBao",
    ] {
        assert!(report.contains(section), "missing {section}");
    }
    assert!(report.contains("Quick smoke run"));
    // The hot path allocates nothing, whatever the load.
    assert!(
        report.contains("| `Signer::verify_encoded`, 1 key | 0.00 | 0.0 |"),
        "verify_encoded allocates:\n{report}"
    );
    for plot in ["verify-vs-keys.svg", "swap-latency.svg"] {
        let svg = std::fs::read_to_string(img.join(plot)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{plot}"
        );
        assert!(report.contains(&format!("img/{plot}")), "{plot} is embedded");
    }
}

#[test]
fn the_cores_section_alone_prints_every_thread_count_and_the_contention_test() {
    let output = Command::new(env!("CARGO_BIN_EXE_keyroll-bench"))
        .args(["--cores", "--quick"])
        .output()
        .expect("keyroll-bench runs");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!(text.starts_with("| threads | raw verifies/s |"), "{text}");
    for n in 1..=cpus {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {n} | ")))
            .unwrap_or_else(|| panic!("no row for {n} threads:\n{text}"));
        assert_eq!(row.matches('|').count(), 10, "every column: {row}");
    }
    assert!(text.contains("contention, "), "{text}");
}
