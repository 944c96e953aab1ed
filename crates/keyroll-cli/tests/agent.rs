//! `keyroll agent` against a real OpenBao: it writes the store's versions to a
//! JSON key file (mode 0600, declared shared), rewrites it only when the store
//! changed, writes what the policy refuses too (its readers refuse it as the
//! store's readers do), and exits 0 on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use keyroll::vault::{Auth, Credential};
use keyroll::{Health, Policy, Refresher};
use keyroll_testkit::openbao::OpenBao;
use keyroll_testkit::wait_until;

const SECRET: &str = "secret/agent-app";

fn uri(bao: &OpenBao) -> String {
    format!("vault://127.0.0.1:{}/{SECRET}?tls=false", bao.port())
}

fn command(bao: &OpenBao, args: &[&str]) -> Command {
    let mut command = Command::new(common::binary());
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
    /// An agent polling every `interval` (`1s`, `200ms`).
    fn start(bao: &OpenBao, out: &Path, interval: &str) -> Self {
        let mut child = command(
            bao,
            &[
                "agent",
                "--keys",
                &uri(bao),
                "--out",
                out.to_str().unwrap(),
                "--interval",
                interval,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    let agent = Agent::start(&bao, &out, "1s");
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

    // A weak key in the store reaches the file: a reader of the file refuses
    // it exactly as a reader of the store does.
    put(&bao, "short");
    wait_until("the agent wrote the weak version", || agent.writes() == 3).await;
    assert_eq!(file(&out)["keys"].as_array().unwrap().len(), 3);
    let file_uri = format!("file://{}", out.display());
    for keys in [uri(&bao), file_uri] {
        let check = run(&bao, &["check", "--keys", &keys]);
        let stderr = String::from_utf8_lossy(&check.stderr).into_owned();
        assert_eq!(check.status.code(), Some(1), "{keys}: {stderr}");
        assert!(stderr.contains("key 3 is weak"), "{keys}: {stderr}");
    }

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
    assert_eq!(
        file(&out)["keys"][0]["id"],
        "1",
        "a refused key set is written as the store holds it"
    );

    bao.bao(&["kv", "metadata", "delete", SECRET]);
    put(&bao, "agent-key-once-0123456789abcdefghijklmnopqrstuvwxyz");
    let once = once(&bao, &out);
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert_eq!(file(&out)["keys"].as_array().unwrap().len(), 1);
}

/// `keyroll agent --once` writing `out`.
fn once(bao: &OpenBao, out: &Path) -> Output {
    run(
        bao,
        &[
            "agent",
            "--keys",
            &uri(bao),
            "--out",
            out.to_str().unwrap(),
            "--once",
        ],
    )
}

fn key(n: u32) -> String {
    format!("agent-same-key-{n}-0123456789abcdefghijklmnopqrstuvwxyz")
}

/// Issue 24 item 3: Vault reports a deleted or destroyed version without
/// material; the agent wrote it as `"key": ""` and every reader refused the
/// whole file. It is now written by id and state, and a reader of the file
/// sees what a reader of the store sees.
#[test]
fn deleted_and_destroyed_versions_are_written_by_state_and_the_file_reads_as_the_store() {
    let Some(bao) = OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys.json");
    for n in 1..=3 {
        put(&bao, &key(n));
    }
    bao.bao(&["kv", "delete", "-versions=1", SECRET]);
    bao.bao(&["kv", "destroy", "-versions=2", SECRET]);
    let once = once(&bao, &out);
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );

    let written = file(&out);
    let keys = written["keys"].as_array().unwrap();
    let states: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("3", "enabled"), ("2", "destroyed"), ("1", "disabled")],
        "{written}"
    );
    for withdrawn in &keys[1..] {
        assert!(
            withdrawn.get("key").is_none() && withdrawn.get("key_base64").is_none(),
            "no material for a withdrawn version: {written}"
        );
    }

    let listed = |keys: &str| {
        let check = run(&bao, &["check", "--keys", keys]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{keys}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let shown = String::from_utf8_lossy(&check.stdout).into_owned();
        shown
            .lines()
            .skip(1)
            .map(|l| l.trim().to_owned())
            .collect::<Vec<_>>()
    };
    let from_store = listed(&uri(&bao));
    assert_eq!(from_store.len(), 1, "{from_store:?}");
    assert!(from_store[0].starts_with("current   3 "), "{from_store:?}");
    assert_eq!(listed(&format!("file://{}", out.display())), from_store);
}

/// Issue 24 item 4: the agent wrote only what the policy accepted, so a
/// revocation that left no usable key never reached the file, whose readers
/// kept verifying with the revoked key.
#[test]
fn a_revocation_that_leaves_no_usable_key_reaches_the_file() {
    let Some(bao) = OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys.json");
    put(&bao, &key(1));
    let agent = |expected: i32| {
        let once = once(&bao, &out);
        let stderr = String::from_utf8_lossy(&once.stderr).into_owned();
        assert_eq!(once.status.code(), Some(expected), "{stderr}");
        stderr
    };
    agent(0);
    bao.bao(&["kv", "delete", "-versions=1", SECRET]);
    let stderr = agent(1);
    assert!(stderr.contains("no usable key"), "{stderr}");
    assert_eq!(file(&out)["keys"][0]["state"], "disabled");
    for keys in [uri(&bao), format!("file://{}", out.display())] {
        let check = run(&bao, &["check", "--keys", &keys]);
        let stderr = String::from_utf8_lossy(&check.stderr).into_owned();
        assert_eq!(check.status.code(), Some(1), "{keys}: {stderr}");
        assert!(stderr.contains("no usable key"), "{keys}: {stderr}");
    }
}

/// Issue 24 item 5: a store time past year 9999 panicked the agent (exit
/// 101) while `check` took it. The fake Secrets Manager answers every call
/// with one document that reads as each of them (`DescribeSecret`,
/// `ListSecretVersionIds`, `GetSecretValue` all `POST /`), created on
/// 10000-01-02, which no real server gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_time_past_year_9999_is_an_error_not_a_panic() {
    let answer = serde_json::json!({
        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:future-AbCdEf",
        "Name": "future",
        "VersionIdsToStages": {"v1": ["AWSCURRENT"]},
        "Versions": [{"VersionId": "v1", "VersionStages": ["AWSCURRENT"], "CreatedDate": 253_402_387_200_u64}],
        "VersionId": "v1",
        "VersionStages": ["AWSCURRENT"],
        "SecretString": key(1),
        "CreatedDate": 253_402_387_200_u64,
    })
    .to_string();
    let server = keyroll_testkit::fake::FakeServer::start(move |_, _| (200, answer.clone())).await;
    let keys = format!("aws-sm://future?region=us-east-1&endpoint={}", server.address());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys.json");
    let run_aws = move |args: Vec<String>| {
        common::keyroll()
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    };
    let (check, agent) = {
        let (keys, out) = (keys.clone(), out.to_str().unwrap().to_owned());
        tokio::task::spawn_blocking(move || {
            let check = run_aws(vec!["check".into(), "--keys".into(), keys.clone()]);
            let agent = run_aws(
                ["agent", "--keys", &keys, "--out", &out, "--once"]
                    .map(String::from)
                    .to_vec(),
            );
            (check, agent)
        })
        .await
        .unwrap()
    };
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let stderr = String::from_utf8_lossy(&agent.stderr);
    assert_eq!(agent.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("version v1 created at a moment beyond year 9999"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "nothing written");
}

/// What a reader makes of its keys at a moment.
#[derive(Debug, PartialEq, Eq)]
struct View {
    health: Health,
    /// The signing key and the verifying keys (sorted); `None` once the
    /// keyring failed closed.
    keys: Option<(String, Vec<String>)>,
}

fn view(refresher: &Refresher) -> View {
    let keyring = refresher.keyring();
    let now = SystemTime::now();
    let keys = (!keyring.is_closed()).then(|| {
        let set = keyring.key_set();
        let mut verifying: Vec<String> = set
            .verifying_keys_at(now)
            .map(|(key, _)| key.id().to_owned())
            .collect();
        verifying.sort();
        (set.signing_key_at(now).id().to_owned(), verifying)
    });
    View {
        health: refresher.status().health,
        keys,
    }
}

fn open(signing: &str, verifying: &[&str]) -> View {
    View {
        health: Health::Healthy,
        keys: Some((
            signing.to_owned(),
            verifying.iter().map(|id| (*id).to_owned()).collect(),
        )),
    }
}

/// Waits until both readers see `expected`; on a timeout, shows both.
async fn both(what: &str, direct: &Refresher, file: &Refresher, expected: View) {
    let patience = std::time::Duration::from_secs(30);
    let started = std::time::Instant::now();
    while view(direct) != expected || view(file) != expected {
        assert!(
            started.elapsed() < patience,
            "{what}: expected {expected:?}\n  store reader: {:?}\n  file reader:  {:?}",
            view(direct),
            view(file)
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Issue 24, what must hold: a reader of the agent's file behaves as a
/// reader of the store under the revocation of a fallback, the deletion of
/// an old version, expiry, the revocation of the signing key (failing closed
/// and reopening), and a store outage with `fail_closed_after` (the agent
/// marks the file unavailable; both readers close past the limit and reopen
/// when the store answers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_the_agents_file_behaves_as_a_reader_of_the_store() {
    let Some(bao) = OpenBao::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys.json");
    put(&bao, &key(1));
    put(&bao, &key(2));
    let agent = Agent::start(&bao, &out, "200ms");
    wait_until("the agent wrote the file", || out.exists()).await;

    let reader = |provider: Box<dyn keyroll::KeyProvider>| {
        Refresher::builder(provider)
            .policy(Policy::default().with_activation_delay(Duration::ZERO))
            .interval(Duration::from_millis(100))
            .jitter(Duration::from_millis(10))
            .backoff(Duration::from_millis(50), Duration::from_millis(200))
            .fetch_timeout(Duration::from_secs(2))
            .fail_closed_after(Duration::from_secs(2))
            .start()
    };
    let store = keyroll::vault::VaultProvider::builder()
        .address(bao.address())
        .secret("secret", "agent-app")
        .auth(Auth::token(Credential::value(bao.root_token())))
        .attempt_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let direct = reader(Box::new(store)).await.unwrap();
    let file = reader(Box::new(keyroll::file::FileProvider::new(&out)))
        .await
        .unwrap();
    both("at start", &direct, &file, open("2", &["1", "2"])).await;

    bao.bao(&["kv", "delete", "-versions=1", SECRET]);
    both("a fallback revoked", &direct, &file, open("2", &["2"])).await;

    put(&bao, &key(3));
    both("a third key", &direct, &file, open("3", &["2", "3"])).await;
    bao.bao(&["kv", "destroy", "-versions=2", SECRET]);
    both("an old version destroyed", &direct, &file, open("3", &["3"])).await;

    // Versions written from now on expire 4 s after their creation.
    bao.bao(&["kv", "metadata", "put", "-delete-version-after=4s", SECRET]);
    put(&bao, &key(4));
    bao.bao(&["kv", "metadata", "put", "-delete-version-after=0s", SECRET]);
    both("an expiring key signs", &direct, &file, open("4", &["3", "4"])).await;
    both("the expired key is gone", &direct, &file, open("3", &["3"])).await;

    bao.bao(&["kv", "delete", "-versions=3", SECRET]);
    let closed = View {
        health: Health::Stale,
        keys: None,
    };
    both(
        "the signing key revoked, nothing replaces it",
        &direct,
        &file,
        closed,
    )
    .await;
    put(&bao, &key(5));
    both("a new key reopens both", &direct, &file, open("5", &["5"])).await;

    let unseal = bao.unseal_key();
    bao.bao(&["operator", "seal"]);
    let closed = View {
        health: Health::Stale,
        keys: None,
    };
    both("the store out past fail_closed_after", &direct, &file, closed).await;
    assert!(
        file_text(&out).contains("unavailable_since"),
        "the agent marked the file"
    );
    bao.bao(&["operator", "unseal", &unseal]);
    both("the store back", &direct, &file, open("5", &["5"])).await;
    assert!(!file_text(&out).contains("unavailable_since"));

    direct.shutdown().await;
    file.shutdown().await;
    assert_eq!(agent.terminate().code(), Some(0));
}

fn file_text(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
}
