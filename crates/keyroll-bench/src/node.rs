//! The `keyroll` npm package against plain Node (`crates/keyroll-node/bench/bench.js`,
//! run with the package and the test dependencies installed in
//! `crates/keyroll-node/test/node_modules`, as scripts/test and scripts/bench
//! install them): Django-format and native verify against Node's own
//! `crypto.createHmac` doing the same bytes and compare, and an Express site
//! with `ring.secrets` against a static array.

use std::fmt::Write as _;
use std::process::Command;

use keyroll_testkit::python::{missing, workspace_root};
use serde_json::Value;

use crate::report::{Target, format_ns};

/// Verify from Node: at most this many times Node's own HMAC doing the same work.
pub const VERIFY_BOUND: f64 = 1.5;
/// An Express request with `ring.secrets`: at most this many times the time with a static array.
pub const REQUEST_BOUND: f64 = 1.03;

/// One verify case's best times per call, in ns.
#[derive(Debug, Clone)]
pub struct VerifyRow {
    /// `Django-format verify` or `native verify`.
    pub case: String,
    /// Through the package.
    pub keyroll_ns: f64,
    /// Node's crypto, the same work.
    pub node_ns: f64,
}

/// Results of the npm package section.
#[derive(Debug, Clone)]
pub struct NodeResults {
    /// Node's version.
    pub node: String,
    /// Express, express-session and cookie-parser versions.
    pub peers: String,
    pub verify: Vec<VerifyRow>,
    /// Median requests per second with `ring.secrets`, then with a static array.
    pub keyroll_rps: f64,
    pub static_rps: f64,
    /// The time per request with `ring.secrets` over the static array's: the
    /// requests each side served in the same total time, slices interleaved.
    pub ratio: f64,
    pub rounds: u64,
    pub seconds_per_round: f64,
}

/// Runs bench.js; `None` (a failure under CI) without node or the installed package.
pub fn run(quick: bool) -> Option<NodeResults> {
    let root = workspace_root();
    let modules = root.join("crates/keyroll-node/test/node_modules");
    if !modules.join("keyroll").join("keyroll.node").exists() {
        return missing("the keyroll npm package in crates/keyroll-node/test/node_modules");
    }
    let mut command = Command::new("node");
    command
        .arg(root.join("crates/keyroll-node/bench/bench.js"))
        .arg("--json")
        .env("NODE_PATH", &modules);
    if quick {
        command.arg("--quick");
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(_) => return missing("node"),
    };
    assert!(
        output.status.success(),
        "bench.js failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).expect("bench.js prints JSON");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let express = &out["express_request"];
    Some(NodeResults {
        node: text(&out["node"]),
        peers: format!(
            "Express {}, express-session {}, cookie-parser {}",
            text(&out["express"]),
            text(&out["express_session"]),
            text(&out["cookie_parser"])
        ),
        verify: out["verify"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| VerifyRow {
                case: text(&row["case"]),
                keyroll_ns: number(&row["keyroll_ns"]),
                node_ns: number(&row["node_ns"]),
            })
            .collect(),
        keyroll_rps: number(&express["keyroll_rps"]),
        static_rps: number(&express["static_rps"]),
        ratio: number(&express["ratio"]),
        rounds: express["rounds"].as_u64().unwrap_or_default(),
        seconds_per_round: number(&express["seconds_per_round"]),
    })
}

const VERIFY_GOAL: &str =
    "npm package: Django-format and native verify <= 1.5x Node's crypto.createHmac doing the same work";
const REQUEST_GOAL: &str = "Express request with ring.secrets <= 1.03x the same with a static secret array";

/// The two targets of the npm package.
pub fn targets(n: Option<&NodeResults>) -> Vec<Target> {
    let Some(n) = n else {
        return [VERIFY_GOAL, REQUEST_GOAL]
            .into_iter()
            .map(|goal| Target {
                goal: goal.into(),
                measured: "not measured (no keyroll npm package installed)".into(),
                met: None,
                limit: String::new(),
            })
            .collect();
    };
    let ratios: Vec<f64> = n.verify.iter().map(|row| row.keyroll_ns / row.node_ns).collect();
    let request = n.ratio;
    vec![
        Target {
            goal: VERIFY_GOAL.into(),
            measured: n
                .verify
                .iter()
                .zip(&ratios)
                .map(|(row, ratio)| {
                    format!(
                        "{ratio:.2}x {} ({} vs {})",
                        row.case,
                        format_ns(row.keyroll_ns),
                        format_ns(row.node_ns)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            met: Some(ratios.len() == 2 && ratios.iter().all(|&r| r <= VERIFY_BOUND)),
            limit: "A call into the package costs the Rust verify (one pre-keyed HMAC) plus Node-API's: \
                    the token copied into a Rust string, the result object built, and the JavaScript \
                    wrapper's error mapping."
                .into(),
        },
        Target {
            goal: REQUEST_GOAL.into(),
            measured: format!(
                "{request:.3}x ({:.0} vs {:.0} requests/s, medians over slices)",
                n.keyroll_rps, n.static_rps
            ),
            met: Some(request <= REQUEST_BOUND),
            limit: "ring.secrets is a plain array the middlewares read as they read a static one; \
                    what differs between the two sites is noise of the shared machine."
                .into(),
        },
    ]
}

/// The report's section.
pub fn section(md: &mut String, n: &NodeResults) {
    let _ = writeln!(
        md,
        "## The npm package against plain Node\n\nNode {}, {} (`crates/keyroll-node/bench/bench.js`). \
         Verify: the package's `djangoSigner().unsign` and `nativeSigner().unsign` against Node's own \
         `crypto.createHmac` over the same bytes with the salted key derived once (raw key or `KeyObject`, \
         whichever is faster in the run), base64url and `timingSafeEqual` (the native one also decodes \
         the payload); interleaved rounds, best round.\n\n\
         | case | keyroll (Node) | Node's crypto | keyroll / Node |\n|---|---|---|---|",
        n.node, n.peers
    );
    for row in &n.verify {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2}x |",
            row.case,
            format_ns(row.keyroll_ns),
            format_ns(row.node_ns),
            row.keyroll_ns / row.node_ns
        );
    }
    let _ = writeln!(
        md,
        "\nThe same Express 5 site (a `cookie-parser` signed cookie and an `express-session` session, \
         both verified and signed again on every request) given `ring.secrets` or a static array of \
         the same key, both in one process on two ports, loaded by 8 keep-alive clients on this \
         machine, one side then the other, {} slices of {} s a side: **{:.0} requests/s with `ring.secrets`, \
         {:.0} with the static array** (medians over slices), **{:.3}x the time per request** (the \
         requests each side served in the same total time; the machine's speed drifts by more than \
         3% from one slice to the next, and interleaving makes the drift hit both sides).",
        n.rounds, n.seconds_per_round, n.keyroll_rps, n.static_rps, n.ratio
    );
}
