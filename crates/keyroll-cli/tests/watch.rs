//! `keyroll watch --metrics`: per fallback key, the verifications a serving
//! process counted within the window, read from its metrics endpoint (the
//! metrics example's server, with real counters).

mod common;
#[path = "../../../examples/metrics.rs"]
#[allow(dead_code)]
mod example;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use keyroll::metrics::KeyringMetrics;
use keyroll::{Refresher, Signer};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;

const KEY_A: &str = "watch-test-key-A-0123456789abcdefghijklmnopqrstuv";
const KEY_B: &str = "watch-test-key-B-0123456789abcdefghijklmnopqrstuv";

fn write_keys(path: &std::path::Path, lines: &[&str]) {
    let staging = path.with_extension("new");
    std::fs::write(&staging, lines.join("\n") + "\n").unwrap();
    std::fs::rename(staging, path).unwrap();
}

/// The next line of `lines` that satisfies `wanted`, within 30 s.
fn wait_for(lines: &mpsc::Receiver<String>, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if wanted(&line) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no such line within 30 s; watch printed: {seen:#?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_lists_each_fallback_keys_verifications_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    write_keys(&path, &[KEY_A]);
    let uri = format!("file://{}", path.display());

    // The service: verifies tokens and exports its counts.
    let refresher = Refresher::builder(keyroll::open(&uri).unwrap())
        .start()
        .await
        .unwrap();
    let keyring = refresher.keyring().clone();
    let signer = Signer::new(keyring.clone()).with_salt("sessions");
    let old_token = signer.sign("user=42").unwrap();
    let mut changes = keyring.subscribe();
    write_keys(&path, &[KEY_B, KEY_A]);
    tokio::time::timeout(Duration::from_secs(10), changes.changed())
        .await
        .unwrap()
        .unwrap();
    let old_id = keyring.load().keys()[1].id().to_owned();
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(example::serve(
        listener,
        handle,
        KeyringMetrics::new(keyring.clone()),
        move || refresher.status(),
    ));

    let mut child = common::keyroll()
        .args([
            "watch",
            "--keys",
            &uri,
            "--interval",
            "200ms",
            "--metrics",
            &metrics_url,
        ])
        .args(["--window", "1h"])
        .env_remove("KEYROLL_KEYS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });

    let keys = wait_for(&lines, |line| line.contains("generation 1"));
    assert!(keys.contains("current") && keys.contains("fallback"), "{keys}");
    // The first read is the baseline: nothing verified since.
    let baseline = wait_for(&lines, |line| line.contains("fallback verifications"));
    assert!(
        baseline.contains(&format!("{old_id} 0 in the last")),
        "{baseline}"
    );
    for _ in 0..3 {
        assert_eq!(signer.verify(&old_token).unwrap().key.id, old_id.as_str());
    }
    let counted = wait_for(&lines, |line| !line.contains(&format!("{old_id} 0 in the last")));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        counted.contains(&format!("{old_id} 3 in the last")) && counted.contains("(3 in total)"),
        "{counted}"
    );
    assert!(counted.contains("window 3600s"), "{counted}");
}

#[test]
fn watch_refuses_a_metrics_url_it_cannot_read_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    write_keys(&path, &[KEY_A]);
    let out = common::keyroll()
        .args(["watch", "--keys", &format!("file://{}", path.display())])
        .args(["--metrics", "https://metrics.internal/metrics"])
        .env_remove("KEYROLL_KEYS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http://HOST:PORT/PATH"), "{stderr}");
}

/// A `keyroll watch --metrics URL` of a key file holding `KEY_A`, its
/// stderr lines sent to the returned receiver.
fn watch_metrics(dir: &tempfile::TempDir, url: &str) -> (std::process::Child, mpsc::Receiver<String>) {
    let path = dir.path().join("keys");
    write_keys(&path, &[KEY_A]);
    let mut child = common::keyroll()
        .args(["watch", "--keys", &format!("file://{}", path.display())])
        .args(["--interval", "100ms", "--metrics", url])
        .env_remove("KEYROLL_KEYS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

/// Issue 24 item 8: the user info of `--metrics` was printed in `watch`'s
/// errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_never_prints_the_user_info_of_the_metrics_url() {
    let server = keyroll_testkit::fake::FakeServer::start(|_, _| (500, String::new())).await;
    let url = server.address().replace("http://", "http://scraper:pa55word@") + "/metrics";
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = watch_metrics(&dir, &url);
    let line = tokio::task::spawn_blocking(move || wait_for(&lines, |line| line.contains("answered")))
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!line.contains("pa55word"), "{line}");
    assert!(line.contains("http://***@127.0.0.1:"), "{line}");

    let refused = common::keyroll()
        .args([
            "watch",
            "--keys",
            "env://UNUSED",
            "--metrics",
            "https://scraper:pa55word@host/metrics",
        ])
        .env_remove("KEYROLL_KEYS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        !stderr.contains("pa55word") && stderr.contains("***@host"),
        "{stderr}"
    );
}

/// The resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Issue 24 item 6: every key id of every page was kept for the whole
/// window (366,240 ids every 300 ms: 124 MB to 346 MB in 20 s). A page of
/// 60,000 ids the watched key set does not hold (about 4 MB of samples per
/// read before) is read 30 more times: the memory it holds must not grow
/// with the reads. Counted by reads served, not by time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_memory_does_not_grow_with_the_ids_of_the_pages_it_reads() {
    let page: Arc<str> = (0..60_000)
        .map(|i| format!("keyroll_verifications_total{{key_id=\"unknown-{i:06}\",role=\"fallback\",format=\"native\"}} {i}\n"))
        .collect::<String>()
        .into();
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = {
        let served = Arc::clone(&served);
        keyroll_testkit::fake::FakeServer::start(move |_, _| {
            served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (200, page.to_string())
        })
        .await
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _lines) = watch_metrics(&dir, &format!("{}/metrics", server.address()));
    let pid = child.id();
    let reads = || served.load(std::sync::atomic::Ordering::SeqCst);
    keyroll_testkit::wait_until_within(Duration::from_secs(120), "10 reads", || reads() >= 10).await;
    let before = resident_kib(pid);
    keyroll_testkit::wait_until_within(Duration::from_secs(300), "40 reads", || reads() >= 40).await;
    let after = resident_kib(pid);
    child.kill().unwrap();
    child.wait().unwrap();
    println!("watch resident memory: {before} KiB after 10 reads, {after} KiB after 40");
    assert!(
        after < before + 40 * 1024,
        "grew from {before} KiB to {after} KiB over 30 reads"
    );
}
