//! A fleet of replicas polling one real OpenBao: each replica is a real
//! `VaultProvider` with its own `Refresher` (all in this process), as many
//! replicas share one store in production. OpenBao's audit log counts the
//! requests the store really received; each replica counts its polls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keyroll_core::{KeyMaterial, KeyProvider, KeyVersion, ProviderError, Reach, Refresher, async_trait};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::openbao::OpenBao;
use keyroll_vault::{Auth, Credential, VaultProvider, VaultProviderBuilder};

use crate::measure::Percentiles;

const MOUNT: &str = "secret";
const PATH: &str = "fleet";
/// What the operator's own `rotate` sends: one metadata read, then one
/// version read and one write on the data path. Subtracted from the counts.
const OPERATOR_REQUESTS: (usize, usize) = (1, 2);

/// Fleet settings.
#[derive(Debug, Clone, Copy)]
pub struct FleetConfig {
    /// Replicas.
    pub replicas: usize,
    /// Poll interval of each refresher.
    pub interval: Duration,
    /// Jitter (± around the interval).
    pub jitter: Duration,
    /// Every how many polls a replica reads the secret's metadata (the
    /// providers keep [`keyroll_vault::DEFAULT_METADATA_EVERY`]).
    pub metadata_every: u32,
    /// New keys published, one after another.
    pub publications: usize,
}

/// One publication's propagation.
#[derive(Debug, Clone)]
pub struct Publication {
    /// Time from the write until each replica held the new version.
    pub held: Percentiles,
    /// Until the last replica held it.
    pub all: Duration,
    /// Metadata reads during the following interval + jitter.
    pub metadata_reads: usize,
    /// Data-path reads (the newest version, or a given one) during the following interval + jitter.
    pub data_reads: usize,
    /// How long the counting window really was.
    pub window: Duration,
    /// Polls (fetches) of all replicas in the window.
    pub polls: usize,
}

impl Publication {
    /// Store requests per replica per interval in the cycle after the write.
    pub fn per_replica_interval(&self, config: &FleetConfig) -> f64 {
        let intervals = self.window.as_secs_f64() / config.interval.as_secs_f64();
        (self.metadata_reads + self.data_reads) as f64 / config.replicas as f64 / intervals
    }

    /// Store requests per poll in the cycle after the write: per replica per
    /// interval without the noise of how many polls fell into the window.
    pub fn per_poll(&self) -> f64 {
        (self.metadata_reads + self.data_reads) as f64 / self.polls.max(1) as f64
    }
}

/// Results of the fleet section.
#[derive(Debug, Clone)]
pub struct FleetResults {
    /// The settings.
    pub config: FleetConfig,
    /// Time to start every replica (each reads the store once).
    pub startup: Duration,
    /// Store requests per second while nothing changes.
    pub steady_per_second: f64,
    /// Store requests per replica per interval while nothing changes.
    pub steady_per_replica_interval: f64,
    /// Store requests per poll while nothing changes.
    pub steady_per_poll: f64,
    /// Every publication.
    pub publications: Vec<Publication>,
}

fn builder(bao: &OpenBao) -> VaultProviderBuilder {
    VaultProvider::builder()
        .address(bao.address())
        .secret(MOUNT, PATH)
        .auth(Auth::token(Credential::value(bao.root_token())))
        .attempt_timeout(Duration::from_secs(10))
}

/// A replica's provider that counts its polls.
#[derive(Debug)]
struct Counted {
    inner: VaultProvider,
    polls: Arc<AtomicUsize>,
}

#[async_trait]
impl KeyProvider for Counted {
    async fn fetch_newest(&self, _versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        self.inner.fetch().await
    }

    fn reach(&self) -> Reach {
        self.inner.reach()
    }

    fn source(&self) -> String {
        self.inner.source()
    }
}

fn requests(bao: &OpenBao) -> (usize, usize) {
    (
        bao.requests_for(&format!("{MOUNT}/metadata/{PATH}")),
        bao.requests_for(&format!("{MOUNT}/data/{PATH}")),
    )
}

/// Runs the fleet; `None` when OpenBao is not installed.
pub async fn run(config: FleetConfig) -> Option<FleetResults> {
    let bao = OpenBao::start()?;
    let operator = builder(&bao).build().expect("operator provider");
    operator
        .rotate(&KeyMaterial::from(strong_key()))
        .await
        .expect("first key published");

    let started = Instant::now();
    let polls = Arc::new(AtomicUsize::new(0));
    let starts: Vec<_> = (0..config.replicas)
        .map(|_| {
            let provider = Counted {
                inner: builder(&bao).build().expect("replica provider"),
                polls: Arc::clone(&polls),
            };
            tokio::spawn(
                Refresher::builder(provider)
                    .interval(config.interval)
                    .jitter(config.jitter)
                    .startup_timeout(Duration::from_secs(60))
                    .fetch_timeout(Duration::from_secs(10))
                    .start(),
            )
        })
        .collect();
    let mut replicas = Vec::with_capacity(config.replicas);
    for start in starts {
        replicas.push(start.await.expect("start task").expect("replica starts"));
    }
    let startup = started.elapsed();

    // Steady state: two intervals in which nothing changes.
    tokio::time::sleep(config.interval).await;
    let (m0, d0) = requests(&bao);
    let polls0 = polls.load(Ordering::Relaxed);
    let window = config.interval * 2;
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let (m1, d1) = requests(&bao);
    let steady = (m1 + d1 - m0 - d0) as f64;
    let steady_per_poll = steady / (polls.load(Ordering::Relaxed) - polls0).max(1) as f64;
    let steady_per_second = steady / t0.elapsed().as_secs_f64();
    let steady_per_replica_interval =
        steady / config.replicas as f64 / (t0.elapsed().as_secs_f64() / config.interval.as_secs_f64());

    let mut publications = Vec::new();
    for _ in 0..config.publications {
        let (m0, d0) = requests(&bao);
        let polls0 = polls.load(Ordering::Relaxed);
        let written = Instant::now();
        let published = operator
            .rotate(&KeyMaterial::from(strong_key()))
            .await
            .expect("new key published");
        let mut held_at: Vec<Option<Duration>> = vec![None; replicas.len()];
        let deadline = written + (config.interval + config.jitter) * 4;
        while held_at.iter().any(Option::is_none) && Instant::now() < deadline {
            for (slot, replica) in held_at.iter_mut().zip(&replicas) {
                if slot.is_none() && replica.keyring().load().key(&published.id).is_some() {
                    *slot = Some(written.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut held: Vec<Duration> = held_at
            .iter()
            .map(|h| h.expect("every replica holds the new key within 4 intervals"))
            .collect();
        let all = held.iter().copied().max().unwrap_or_default();
        // Count the requests of one full poll cycle from the write.
        let cycle_end = written + config.interval + config.jitter;
        tokio::time::sleep_until(cycle_end.into()).await;
        let (m1, d1) = requests(&bao);
        let window = written.elapsed();
        publications.push(Publication {
            window,
            polls: polls.load(Ordering::Relaxed) - polls0,
            held: Percentiles::of(&mut held),
            all,
            metadata_reads: (m1 - m0).saturating_sub(OPERATOR_REQUESTS.0),
            data_reads: (d1 - d0).saturating_sub(OPERATOR_REQUESTS.1),
        });
    }
    for replica in &replicas {
        replica.shutdown().await;
    }
    Some(FleetResults {
        config,
        startup,
        steady_per_second,
        steady_per_replica_interval,
        steady_per_poll,
        publications,
    })
}
