//! Fleets that rotate their keys themselves (`rotate_every`), against the
//! real stores (OpenBao, moto's AWS server, the testkit's GCP server): eight
//! separate OS processes (this test binary run again as fleet members) start
//! together on an empty store, create exactly one first key and all sign with
//! it; then for a minute, with a key due every 3 s, tokens signed by each
//! member are verified by another while the fleet publishes exactly one key
//! per period between them (the store's compare-and-set). The control: the
//! same fleet writing without compare-and-set (read, then write) makes
//! several keys in one period.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant, SystemTime};

use keyroll::ops::{KeyForm, generate};
use keyroll::raw::KeyVersion;
use keyroll::rotation::{self, Due};
use keyroll::{KeyProvider, Refresher, RefresherBuilder, Signer};

const MEMBERS: usize = 8;
const PERIOD: Duration = Duration::from_secs(3);
const RUN: Duration = Duration::from_secs(60);
/// What marks a member's answers on its stdout (the test harness prints
/// there too).
const MARK: &str = "@@ ";

/// Fleets run one at a time: 24 processes at once on two cores would test
/// the machine, not the rotation.
static ONE_FLEET_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Run by the members: this binary started again with
/// `KEYROLL_FLEET_MEMBER=URI`; returns at once in the normal test run.
#[test]
fn fleet_member() {
    let Ok(uri) = std::env::var("KEYROLL_FLEET_MEMBER") else {
        return;
    };
    let control = std::env::var_os("KEYROLL_FLEET_CONTROL").is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let builder = Refresher::builder(keyroll::open(&uri).expect("the URI opens"))
            .interval(Duration::from_millis(200))
            .jitter(Duration::from_millis(100))
            .activation_delay(Duration::from_secs(1))
            // Every version of the minute keeps verifying and is listed.
            .max_fallbacks(30)
            .startup_timeout(Duration::from_secs(60));
        if control {
            write_without_compare_and_set(builder).await;
        } else {
            serve(builder.rotate_every(PERIOD)).await;
        }
    });
}

/// A member: a refresher with `rotate_every`, signing and verifying what
/// the test asks on stdin.
async fn serve(builder: RefresherBuilder) {
    let refresher = builder.start().await.expect("the member starts");
    let signer = Signer::new(refresher.keyring().clone());
    println!("{MARK}ready {}", refresher.keyring().load().signing_key().id());
    let mut lines = BufReader::new(std::io::stdin()).lines();
    while let Some(Ok(line)) = tokio::task::block_in_place(|| lines.next()) {
        let answer = match line.split_once(' ').unwrap_or((&line, "")) {
            ("sign", _) => format!("token {}", signer.sign("user:42").expect("signs")),
            ("verify", token) => match signer.verify(token) {
                Ok(_) => "ok".to_owned(),
                Err(error) => format!("refused {error}"),
            },
            ("status", _) => {
                let rotation = refresher.status().rotation.expect("rotating");
                format!(
                    "status {} {} {}",
                    rotation.published,
                    rotation.lost,
                    rotation.last_error.unwrap_or_default()
                )
            }
            _ => break,
        };
        println!("{MARK}{answer}");
    }
    refresher.shutdown().await;
}

/// The control member: wakes when a key is due, reads the store, and
/// writes a new key 100 ms later if what it read was due: a plain write,
/// as a cron job or a rotation function without compare-and-set would.
async fn write_without_compare_and_set(builder: RefresherBuilder) {
    let provider = builder.provider();
    println!("{MARK}ready -");
    let stop = tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().lines().next();
    });
    tokio::pin!(stop);
    loop {
        let versions = provider.fetch_newest(100).await.expect("the store answers");
        let wait = match rotation::due(&versions, PERIOD, SystemTime::now(), "control").unwrap() {
            Due::Now { .. } => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let key = generate(KeyForm::SIGNING, &Default::default()).unwrap();
                match std::env::var("KEYROLL_FLEET_BAO_PUT") {
                    // keyroll's own Vault writes are check-and-set: write
                    // as `vault kv put` does.
                    Ok(path) => {
                        let key = format!("key={}", String::from_utf8_lossy(key.expose_secret()));
                        let bao = std::env::var("KEYROLL_FLEET_BAO").unwrap();
                        let put = Command::new(bao)
                            .args(["kv", "put", &path, &key])
                            .output()
                            .unwrap();
                        assert!(put.status.success(), "{put:?}");
                    }
                    Err(_) => drop(provider.rotate(&key).await.expect("a plain write")),
                }
                Duration::from_millis(50)
            }
            Due::Later { at, .. } => at.duration_since(SystemTime::now()).unwrap_or_default(),
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = &mut stop => return,
        }
    }
}

/// A member process and the marked lines it prints.
struct Member {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Member {
    fn spawn(uri: &str, env: &[(&str, String)], control: bool) -> Self {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "fleet_member", "--nocapture", "--test-threads=1"])
            .env("KEYROLL_FLEET_MEMBER", uri)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if control {
            command.env("KEYROLL_FLEET_CONTROL", "1");
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The harness's `test fleet_member ... ` may precede it.
                if let Some((_, marked)) = line.split_once(MARK) {
                    let _ = send.send(marked.to_owned());
                }
            }
        });
        Self { child, stdin, lines }
    }

    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(90))
            .expect("the member answers")
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.next()
    }

    fn quit(mut self) {
        let _ = writeln!(self.stdin, "quit");
        drop(self.stdin);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "a member failed: {status}");
    }
}

/// Every version of the store, newest first.
fn versions(uri: &str, env: &[(&str, String)]) -> Vec<KeyVersion> {
    // The store's credentials (the members' own settings stay theirs).
    for (name, value) in env.iter().filter(|(name, _)| !name.starts_with("KEYROLL_FLEET")) {
        keyroll_testkit::conformance::set_env_var(name, value);
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(keyroll::open(uri).unwrap().fetch_newest(100))
        .expect("the store answers")
}

/// Consecutive versions' creation times, newest first.
fn gaps(versions: &[KeyVersion]) -> Vec<Duration> {
    versions
        .windows(2)
        .map(|pair| {
            let (newer, older) = (pair[0].created.unwrap(), pair[1].created.unwrap());
            newer.duration_since(older).unwrap_or_default()
        })
        .collect()
}

/// The fleet's minute against the store `uri` (empty), then the control
/// against `control_uri` (empty).
fn fleet(uri: &str, control_uri: &str, env: &[(&str, String)]) {
    let _one = ONE_FLEET_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());

    // Eight members start together on an empty store: one first key.
    let mut members: Vec<Member> = (0..MEMBERS).map(|_| Member::spawn(uri, env, false)).collect();
    let ready: Vec<String> = members.iter().map(Member::next).collect();
    let first = versions(uri, env);
    assert_eq!(first.len(), 1, "exactly one first key: {first:?}");
    let first_created = first[0].created.expect("the store keeps creation times");
    for line in &ready {
        assert_eq!(
            line,
            &format!("ready {}", first[0].id),
            "every member signs with it"
        );
    }

    // A minute from the first key: sign on one member, verify on the next.
    let (mut signed, mut refused) = (0, Vec::new());
    let end = first_created + RUN + Duration::from_millis(500);
    let started = Instant::now();
    while SystemTime::now() < end && started.elapsed() < RUN + Duration::from_secs(30) {
        for i in 0..MEMBERS {
            let token = members[i].ask("sign");
            let token = token.strip_prefix("token ").expect("a token");
            signed += 1;
            let verdict = members[(i + 1) % MEMBERS].ask(&format!("verify {token}"));
            if verdict != "ok" {
                refused.push(verdict);
            }
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    let (mut published, mut lost) = (0, 0);
    for member in &mut members {
        let status = member.ask("status");
        let mut fields = status.splitn(4, ' ').skip(1);
        published += fields.next().unwrap().parse::<usize>().unwrap();
        lost += fields.next().unwrap().parse::<usize>().unwrap();
        assert_eq!(
            fields.next().unwrap_or_default(),
            "",
            "no rotation failed: {status}"
        );
    }
    for member in members {
        member.quit();
    }
    let held = versions(uri, env);
    let rotations = held.len() - 1;
    println!(
        "{uri}: {rotations} rotations in {RUN:?} at one per {PERIOD:?}; {signed} tokens, {} refused; {lost} lost races",
        refused.len()
    );
    assert!(
        refused.is_empty(),
        "{} of {signed} tokens refused: {:?}",
        refused.len(),
        &refused[..3.min(refused.len())]
    );
    // At most one per period (21 in 60 s); at least one per period plus a
    // second: each next key is due a period after the store stamped the last
    // one, so the time a loaded machine takes to publish adds to every period
    // (fewer than 19 in 60 s under a parallel build and a stress run; idle, 20).
    let fewest = (RUN.as_secs() / (PERIOD + Duration::from_secs(1)).as_secs()) as usize;
    assert!(
        (fewest..=21).contains(&rotations),
        "{fewest} to 21 rotations, not {rotations}: gaps {:?}",
        gaps(&held)
    );
    assert_eq!(published, rotations, "each version published by one member");
    let short: Vec<_> = gaps(&held).into_iter().filter(|gap| *gap < PERIOD).collect();
    assert!(short.is_empty(), "two versions within one period: {short:?}");

    // The control: the same fleet, reading then writing without
    // compare-and-set, for three periods.
    let controls: Vec<Member> = (0..MEMBERS)
        .map(|_| Member::spawn(control_uri, env, true))
        .collect();
    for control in &controls {
        assert_eq!(control.next(), "ready -");
    }
    std::thread::sleep(3 * PERIOD);
    for control in controls {
        control.quit();
    }
    let held = versions(control_uri, env);
    let duplicates = gaps(&held).into_iter().filter(|gap| *gap < PERIOD).count();
    println!(
        "{control_uri}: without compare-and-set, {} versions, {duplicates} within one period of the one before",
        held.len()
    );
    assert!(
        duplicates > 0,
        "plain writes make duplicates: {} versions",
        held.len()
    );
}

#[test]
fn a_fleet_on_openbao_makes_one_key_per_period() {
    let Some(bao) = keyroll_testkit::openbao::OpenBao::start() else {
        return;
    };
    let uri = |path: &str| format!("vault://127.0.0.1:{}/secret/{path}?tls=false", bao.port());
    let env = [
        ("VAULT_TOKEN", bao.root_token().to_owned()),
        ("VAULT_ADDR", bao.address()),
        ("KEYROLL_FLEET_BAO", bao.binary_path().display().to_string()),
        ("KEYROLL_FLEET_BAO_PUT", "secret/control".to_owned()),
    ];
    // KV v2 keeps 10 versions by default: keep the minute's for counting.
    for path in ["secret/fleet", "secret/control"] {
        bao.bao(&["kv", "metadata", "put", "-max-versions=100", path]);
    }
    // The control needs a first key to read: a plain write.
    bao.bao(&[
        "kv",
        "put",
        "secret/control",
        "key=control-first-0123456789abcdefghijklmnopqrstuvwxyz",
    ]);
    fleet(&uri("fleet"), &uri("control"), &env);
}

#[test]
fn a_fleet_on_aws_secrets_manager_makes_one_key_per_period() {
    let Some(moto) = keyroll_testkit::moto::Moto::start() else {
        return;
    };
    let uri = |name: &str| {
        format!(
            "aws-sm://{name}?endpoint={}&region={}",
            moto.endpoint(),
            keyroll_testkit::moto::REGION
        )
    };
    let env = [
        (
            "AWS_ACCESS_KEY_ID",
            keyroll_testkit::moto::ACCESS_KEY_ID.to_owned(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY",
            keyroll_testkit::moto::SECRET_ACCESS_KEY.to_owned(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    // The control needs a first key to read; publish_if on an absent
    // secret creates it.
    let control = uri("fleet-control");
    let first = generate(KeyForm::SIGNING, &Default::default()).unwrap();
    for (name, value) in &env {
        keyroll_testkit::conformance::set_env_var(name, value);
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(keyroll::open(&control).unwrap().publish_if(&first, None))
        .expect("creates the control's secret");
    fleet(&uri("fleet"), &control, &env);
}

#[test]
fn a_fleet_on_gcp_secret_manager_makes_one_key_per_period() {
    // The testkit's server (written to the public API reference; Google
    // ships no emulator) runs on this runtime for the whole test.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(keyroll_testkit::gcp::SecretManagerServer::start());
    let uri = |secret: &str| {
        format!(
            "gcp-sm://projects/demo/secrets/{secret}?endpoint={}",
            server.endpoint()
        )
    };
    // The control needs a first key to read; publish_if on an absent
    // secret creates it.
    let control = uri("fleet-control");
    let first = generate(KeyForm::SIGNING, &Default::default()).unwrap();
    runtime
        .block_on(keyroll::open(&control).unwrap().publish_if(&first, None))
        .expect("creates the control's secret");
    fleet(&uri("fleet"), &control, &[]);
}
