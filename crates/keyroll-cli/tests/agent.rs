//! `keyroll agent` against a real OpenBao: it writes the store's versions to a
//! JSON key file (mode 0600, declared shared), rewrites it only when the store
//! changed, keeps it when the store refuses, and exits 0 on SIGTERM.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use keyroll_testkit::openbao::OpenBao;
use keyroll_testkit::wait_until;

const SECRET: &str = "secret/agent-app";

fn uri(bao: &OpenBao) -> String {
    format!("vault://127.0.0.1:{}/{SECRET}?tls=false", bao.port())
}

fn command(bao: &OpenBao, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyroll"));
    command
        .args(args)
        .env("VAULT_TOKEN", bao.root_token())
        .env_remove("VAULT_ADDR")
        .env_remove("KEYROLL_KEYS");
    command
}

fn run(bao: &OpenBao, args: &[&str]) -> Output {
    command(bao, args).output().expect("keyroll runs")
}

fn put(bao: &OpenBao, key: &str) {
    bao.bao(&["kv", "put", SECRET, &format!("key={key}")]);
}

/// A running agent whose stdout lines are collected.
struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn start(bao: &OpenBao, out: &Path) -> Self {
        let mut child = command(
            bao,
            &[
                "agent",
                "--keys",
                &uri(bao),
                "--out",
                out.to_str().unwrap(),
                "--interval",
                "1s",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("keyroll agent starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn writes(&self) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(" wrote "))
            .count()
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn file(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn store_reads(bao: &OpenBao) -> usize {
    bao.audit_log()
        .lines()
        .filter(|l| l.contains("\"type\":\"request\"") && l.contains("agent-app"))
        .count()
}

#[tokio::test]
async fn agent_writes_the_stores_versions_and_rewrites_only_on_change() {
    let Some(bao) = OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys.json");
    put(&bao, "agent-key-one-0123456789abcdefghijklmnopqrstuvwxyz");
    let agent = Agent::start(&bao, &out);
    wait_until("the agent wrote the file", || agent.writes() == 1).await;

    let written = file(&out);
    assert_eq!(written["reach"], "shared", "{written}");
    let keys = written["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], "1");
    assert_eq!(
        keys[0]["key"],
        "agent-key-one-0123456789abcdefghijklmnopqrstuvwxyz"
    );
    assert_eq!(keys[0]["state"], "enabled");
    assert!(
        keys[0]["created"].as_str().unwrap().starts_with("20"),
        "the store's time: {written}"
    );
    let metadata = std::fs::metadata(&out).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);

    // Several more polls of an unchanged store: no rewrite.
    let reads = store_reads(&bao);
    wait_until("three more polls", || store_reads(&bao) >= reads + 3).await;
    assert_eq!(agent.writes(), 1);
    assert_eq!(
        std::fs::metadata(&out).unwrap().ino(),
        metadata.ino(),
        "the file was not replaced"
    );

    put(&bao, "agent-key-two-0123456789abcdefghijklmnopqrstuvwxyz");
    wait_until("the agent rewrote the file", || agent.writes() == 2).await;
    let keys = file(&out)["keys"].as_array().unwrap().clone();
    assert_eq!(
        keys.iter().map(|k| k["id"].as_str().unwrap()).collect::<Vec<_>>(),
        ["2", "1"]
    );
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A reader of the file stages activation like a reader of the store.
    let check = run(&bao, &["check", "--keys", &format!("file://{}", out.display())]);
    let shown = String::from_utf8_lossy(&check.stdout).into_owned();
    let roles: Vec<&str> = shown
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(roles, ["pending", "current"], "{shown}");

    // A weak key in the store never replaces the last good file.
    put(&bao, "short");
    let reads = store_reads(&bao);
    wait_until("two more polls", || store_reads(&bao) >= reads + 2).await;
    assert_eq!(agent.writes(), 2);
    assert_eq!(file(&out)["keys"].as_array().unwrap().len(), 2);

    let status = agent.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM ends the agent cleanly: {status:?}"
    );
}

#[test]
fn agent_exits_like_the_other_commands_when_the_first_read_fails() {
    let Some(bao) = OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys.json");
    let out_arg = out.to_str().unwrap();

    let missing = run(&bao, &["agent", "--keys", &uri(&bao), "--out", out_arg]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let bad = run(&bao, &["agent", "--keys", "bogus://x", "--out", out_arg]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown key source scheme"));

    put(&bao, "short");
    let weak = run(&bao, &["agent", "--keys", &uri(&bao), "--out", out_arg]);
    assert_eq!(
        weak.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&weak.stderr)
    );
    assert!(!out.exists(), "nothing written for a refused key set");

    bao.bao(&["kv", "metadata", "delete", SECRET]);
    put(&bao, "agent-key-once-0123456789abcdefghijklmnopqrstuvwxyz");
    let once = run(&bao, &["agent", "--keys", &uri(&bao), "--out", out_arg, "--once"]);
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert_eq!(file(&out)["keys"].as_array().unwrap().len(), 1);
}
