//! A fleet of replicas against one real OpenBao: rotating the key logs nobody
//! out, and the test shows that staged activation is what makes it so.
//!
//! Eight replicas in one process, each with its own provider and refresher
//! polling independently with jitter; clients sign on a random replica and
//! verify on another, continuously, while the key is rotated at least 100
//! times. With the default staged activation no valid token is rejected; the
//! same run with activation delay 0 rejects tokens, because a replica starts
//! signing with a key the others have not fetched yet.
//!
//! `KEYROLL_FLEET_ROTATIONS=2000 cargo test -p keyroll-vault --test fleet -- --nocapture`
//! runs a longer soak.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{builder, put};
use keyroll_core::{KeyMaterial, KeyProvider, Policy, Refresher, Signer};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::openbao::OpenBao;
use rand::Rng;

const REPLICAS: usize = 8;
const CLIENTS: usize = 4;
const INTERVAL: Duration = Duration::from_millis(100);
const JITTER: Duration = Duration::from_millis(50);
/// Stands in for clock skew and for a replica whose poll is late under load
/// (the default margin is 30 s; this test runs at a faster pace).
const MARGIN: Duration = Duration::from_millis(300);
const ROTATE_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct Outcome {
    rotations: usize,
    verified: u64,
    rejected: u64,
    by_fallback: u64,
}

async fn run_fleet(bao: &OpenBao, path: &str, staged: bool) -> Outcome {
    put(bao, path, &strong_key());
    let mut replicas = Vec::with_capacity(REPLICAS);
    for _ in 0..REPLICAS {
        let provider = builder(bao, path).max_versions(16).build().unwrap();
        let mut refresher = Refresher::builder(provider)
            .interval(INTERVAL)
            .jitter(JITTER)
            .clock_skew_margin(MARGIN);
        if !staged {
            refresher = refresher.policy(Policy::default().with_activation_delay(Duration::ZERO));
        }
        replicas.push(refresher.start().await.unwrap());
    }
    let statuses: Arc<Vec<Refresher>> = Arc::new(replicas.to_vec());
    let signers: Arc<Vec<Signer>> = Arc::new(
        replicas
            .iter()
            .map(|r| Signer::new(r.keyring().clone()).with_salt("sessions"))
            .collect(),
    );

    let done = Arc::new(AtomicBool::new(false));
    let verified = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let by_fallback = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (signers, done, statuses) = (signers.clone(), done.clone(), statuses.clone());
            let (verified, rejected, by_fallback) = (verified.clone(), rejected.clone(), by_fallback.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let (signer, verifier) = {
                        let mut rng = rand::rng();
                        let signer = rng.random_range(0..REPLICAS);
                        (signer, (signer + rng.random_range(1..REPLICAS)) % REPLICAS)
                    };
                    n += 1;
                    let token = signers[signer].sign(&format!("user={n}")).unwrap();
                    match signers[verifier].verify(&token) {
                        Ok(v) => {
                            verified.fetch_add(1, Ordering::Relaxed);
                            if v.needs_resign() {
                                by_fallback.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(error) => {
                            if rejected.fetch_add(1, Ordering::Relaxed) < 3 {
                                let now = std::time::SystemTime::now();
                                let set = statuses[signer].keyring().load();
                                let key = set.signing_key_at(now);
                                let since = key.signs_from().map(|f| now.duration_since(f).unwrap_or_default());
                                let status = statuses[verifier].status();
                                let known: Vec<String> = statuses[verifier]
                                    .keyring()
                                    .load()
                                    .keys()
                                    .iter()
                                    .map(|k| format!("{}:{}", k.id(), k.role_at(now)))
                                    .collect();
                                eprintln!(
                                    "rejected: {error}: signed on {signer} with {} (signing for {since:?}); verifier {verifier} holds {known:?}, last success {:?} ago, failures {}",
                                    key.id(),
                                    now.duration_since(status.last_success).unwrap_or_default(),
                                    status.consecutive_failures
                                );
                            }
                        }
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();

    let rotations = std::env::var("KEYROLL_FLEET_ROTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let operator = builder(bao, path).build().unwrap();
    let started = Instant::now();
    for _ in 0..rotations {
        operator.rotate(&KeyMaterial::from(strong_key())).await.unwrap();
        tokio::time::sleep(ROTATE_EVERY).await;
    }
    // Let the last rotation reach every replica and start signing.
    tokio::time::sleep(INTERVAL + JITTER + MARGIN + INTERVAL).await;
    done.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let newest = replicas[0].keyring().load().signing_key().id().to_owned();
    for replica in &replicas {
        assert_eq!(
            replica.keyring().load().signing_key().id(),
            newest,
            "the fleet converged"
        );
        replica.shutdown().await;
    }
    let outcome = Outcome {
        rotations,
        verified: verified.load(Ordering::Relaxed),
        rejected: rejected.load(Ordering::Relaxed),
        by_fallback: by_fallback.load(Ordering::Relaxed),
    };
    println!(
        "{} replicas, {} rotations in {:.1} s, staged activation {}: {} verified ({} by a fallback or pending key), {} rejected",
        REPLICAS,
        outcome.rotations,
        started.elapsed().as_secs_f64(),
        if staged { "on" } else { "off" },
        outcome.verified,
        outcome.by_fallback,
        outcome.rejected
    );
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_activation_rejects_no_valid_token_across_a_hundred_rotations() {
    let Some(bao) = OpenBao::start() else { return };
    let outcome = run_fleet(&bao, "fleet-staged", true).await;
    assert!(outcome.rotations >= 100);
    assert!(outcome.verified > 1_000, "{outcome:?}");
    assert_eq!(outcome.rejected, 0, "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_staged_activation_the_same_fleet_rejects_valid_tokens() {
    let Some(bao) = OpenBao::start() else { return };
    let outcome = run_fleet(&bao, "fleet-unstaged", false).await;
    assert!(outcome.verified > 1_000, "{outcome:?}");
    assert!(
        outcome.rejected > 0,
        "activation delay 0 should let replicas sign with keys others lack: {outcome:?}"
    );
}
