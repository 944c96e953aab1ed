//! `keyroll rotate --if-older-than` from many hosts at once (separate OS
//! processes against one real OpenBao): the store's check-and-set lets
//! exactly one publish; the others exit 0 saying it was not due. Plain
//! writes (`bao kv put`) from as many processes make as many versions.

mod common;

use std::process::{Child, Output, Stdio};
use std::time::Duration;

use keyroll_testkit::openbao::OpenBao;

const HOSTS: usize = 8;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

fn uri(bao: &OpenBao) -> String {
    format!("vault://127.0.0.1:{}/secret/cron-app?tls=false", bao.port())
}

fn spawn(bao: &OpenBao, args: &[&str]) -> Child {
    common::keyroll()
        .args(args)
        .env("VAULT_TOKEN", bao.root_token())
        .env_remove("VAULT_ADDR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `args` in `HOSTS` processes started together; their outputs.
fn at_once(bao: &OpenBao, args: &[&str]) -> Vec<Output> {
    let children: Vec<Child> = (0..HOSTS).map(|_| spawn(bao, args)).collect();
    children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect()
}

/// The store's newest version number.
fn newest_version(bao: &OpenBao) -> u64 {
    let metadata = bao.bao(&["kv", "metadata", "get", "-format=json", "secret/cron-app"]);
    let json: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    json["data"]["current_version"].as_u64().unwrap()
}

/// Exactly one of `outputs` rotated (to `version`); every one exited 0 and
/// the others said why they did not.
fn exactly_one_rotated(outputs: &[Output], version: u64) {
    let mut rotated = 0;
    for out in outputs {
        let shown = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{shown}\n{}", text(&out.stderr));
        let last = shown.lines().last().unwrap_or_default();
        if last == format!("rotated: {version}") {
            rotated += 1;
        } else {
            assert!(last.starts_with("not due: "), "{shown}");
        }
    }
    assert_eq!(rotated, 1, "exactly one process publishes");
}

#[test]
fn eight_hosts_rotating_from_cron_at_once_publish_exactly_one_key() {
    let Some(bao) = OpenBao::start() else { return };
    let keys = uri(&bao);
    let due = ["rotate", "--keys", &keys, "--if-older-than", "1s"];

    // An empty store: the first key, once, whoever starts.
    exactly_one_rotated(&at_once(&bao, &due), 1);
    assert_eq!(newest_version(&bao), 1);

    // Not due while the key is younger than the period.
    let young = spawn(&bao, &due).wait_with_output().unwrap();
    assert_eq!(young.status.code(), Some(0));
    let shown = text(&young.stdout);
    assert!(shown.starts_with("not due: the current key is 0s old"), "{shown}");
    assert_eq!(newest_version(&bao), 1);

    // Due: eight at once publish one key between them.
    std::thread::sleep(Duration::from_millis(1_200));
    exactly_one_rotated(&at_once(&bao, &due), 2);
    assert_eq!(newest_version(&bao), 2, "one new version, not {HOSTS}");

    // The control: plain writes (`bao kv put`, no check-and-set) from as
    // many processes make as many versions.
    let writers: Vec<Child> = (0..HOSTS)
        .map(|n| {
            bao.bao_command(&[
                "kv",
                "put",
                "secret/cron-app",
                &format!("key=plain-write-{n}-0123456789abcdefghijklmnopqrstuvwxyz"),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for writer in writers {
        assert!(writer.wait_with_output().unwrap().status.success());
    }
    assert_eq!(
        newest_version(&bao),
        2 + HOSTS as u64,
        "{HOSTS} versions without compare-and-set"
    );
}

#[test]
fn a_store_without_compare_and_set_refuses_if_older_than_and_writes_nothing() {
    let out = common::keyroll()
        .args([
            "rotate",
            "--keys",
            "env://KEYROLL_CRON_KEY",
            "--if-older-than",
            "0s",
        ])
        .env(
            "KEYROLL_CRON_KEY",
            "cron-key-0123456789abcdefghijklmnopqrstuvwxyz",
        )
        .env_remove("KEYROLL_KEYS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("has no compare-and-set"), "{stderr}");
}

#[test]
fn a_key_file_without_creation_times_refuses_if_older_than_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, "cron-key-0123456789abcdefghijklmnopqrstuvwxyz\n").unwrap();
    let keys = format!("file://{}", path.display());
    let out = common::keyroll()
        .args(["rotate", "--keys", &keys, "--if-older-than", "0s"])
        .env_remove("KEYROLL_KEYS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("keeps no creation time"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "cron-key-0123456789abcdefghijklmnopqrstuvwxyz\n"
    );
}

/// Reads `secret/agents`' versions' creation gaps and newest number.
fn version_gaps(bao: &OpenBao, path: &str) -> (u64, Vec<f64>) {
    let metadata = bao.bao(&["kv", "metadata", "get", "-format=json", path]);
    let json: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    let versions = json["data"]["versions"].as_object().unwrap();
    let mut created: Vec<(u64, time::OffsetDateTime)> = versions
        .iter()
        .map(|(number, version)| {
            let at = version["created_time"].as_str().unwrap();
            let at = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
            (number.parse().unwrap(), at)
        })
        .collect();
    created.sort();
    let gaps = created
        .windows(2)
        .map(|pair| (pair[1].1 - pair[0].1).as_seconds_f64())
        .collect();
    (json["data"]["current_version"].as_u64().unwrap(), gaps)
}

#[test]
fn agents_on_four_hosts_with_rotate_every_make_one_key_per_period() {
    let Some(bao) = OpenBao::start() else { return };
    let keys = format!("vault://127.0.0.1:{}/secret/agents?tls=false", bao.port());
    let dir = tempfile::tempdir().unwrap();
    let agents: Vec<Child> = (0..4)
        .map(|host| {
            let out = dir.path().join(format!("host{host}.json"));
            let out = out.to_str().unwrap();
            spawn(
                &bao,
                &[
                    "agent",
                    "--keys",
                    &keys,
                    "--out",
                    out,
                    "--interval",
                    "200ms",
                    "--activation-delay",
                    "500ms",
                    "--max-fallbacks",
                    "1",
                    "--rotate-every",
                    "2s",
                ],
            )
        })
        .collect();
    // An empty store at start: the first key, then one every 2 s.
    std::thread::sleep(Duration::from_millis(9_300));
    let (newest, gaps) = version_gaps(&bao, "secret/agents");
    let (mut rotated, mut disabled) = (0, Vec::new());
    for agent in agents {
        // SIGTERM ends an agent with success.
        let pid = agent.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .arg(&pid)
                .status()
                .unwrap()
                .success()
        );
        let out = agent.wait_with_output().unwrap();
        let shown = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{shown}\n{}", text(&out.stderr));
        rotated += shown.lines().filter(|line| line.contains(" rotated: ")).count();
        disabled.extend((shown.lines()).filter_map(|line| {
            line.split_once(" disabled version ")
                .map(|(_, rest)| rest.to_owned())
        }));
        assert!(shown.contains("wrote"), "{shown}");
    }
    assert!(
        (3..=5).contains(&newest),
        "a first key and one every 2 s for 7 s: {newest} versions"
    );
    assert_eq!(rotated as u64, newest, "each version published by one agent");
    assert!(
        gaps.iter().all(|gap| *gap >= 2.0),
        "two versions within one period: {gaps:?}"
    );
    for host in 0..4 {
        let file = std::fs::read_to_string(dir.path().join(format!("host{host}.json"))).unwrap();
        assert!(file.contains("\"keys\""), "{file}");
    }
}

#[test]
fn a_rotation_period_that_cannot_work_is_refused_by_the_agent_and_watch() {
    let vault = "vault://127.0.0.1:9/secret/never-read?tls=false";
    for (args, why) in [
        (
            &[
                "watch",
                "--keys",
                "env://KEYROLL_CRON_KEY",
                "--rotate-every",
                "0s",
            ][..],
            "must be longer than zero",
        ),
        (
            &[
                "agent",
                "--keys",
                "env://KEYROLL_CRON_KEY",
                "--out",
                "/nonexistent/k.json",
                "--rotate-every",
                "1h",
            ],
            "has no compare-and-set",
        ),
        // An agent polling every 5 min: a shared store's activation delay
        // counts its --interval, so a 2 min period is refused before any
        // request (nothing listens on the port).
        (
            &[
                "agent",
                "--keys",
                vault,
                "--out",
                "/nonexistent/k.json",
                "--interval",
                "5m",
                "--rotate-every",
                "2m",
            ],
            "rotate_every (120s) must be longer than the activation delay",
        ),
    ] {
        let out = common::keyroll()
            .args(args)
            .env(
                "KEYROLL_CRON_KEY",
                "cron-key-0123456789abcdefghijklmnopqrstuvwxyz",
            )
            .env("VAULT_TOKEN", "never-sent")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}
