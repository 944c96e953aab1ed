//! `open` and `NativeRing`: one refresher per URI and options in a process,
//! shared by every ring opened on them, on its own tokio threads.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use keyroll::options::{Options, Value};
use keyroll::{KeyEntry, KeySet, Keyring, Reach, Refresher};
use napi::Status;
use napi::bindgen_prelude::{AsyncTask, Buffer, Either, Env, Task};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::errors::{Code, Result, closed, error};
use crate::formats::{DjangoSigner, Fernet, JwtSigner, NativeSigner};
use crate::options::{NamedValue, identity, parse};

type Identity = (String, Vec<Option<Value>>);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One refresher and the keyring it fills, shared by the rings of a process
/// opened on the same URI and options; it stops when the last one closes.
pub struct Engine {
    pub(crate) keyring: Keyring,
    refresher: Refresher,
    /// What it was opened with, for `ring.rotate()`.
    pub(crate) uri: String,
    pub(crate) options: Options,
    /// Taken when the engine goes, to stop the refresher on it.
    runtime: Mutex<Option<Runtime>>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(runtime) = lock(&self.runtime).take() {
            runtime.block_on(self.refresher.shutdown());
            runtime.shutdown_background();
        }
    }
}

/// The engines of this process, by what they were opened with.
static ENGINES: Mutex<Vec<(Identity, Weak<Engine>)>> = Mutex::new(Vec::new());

/// The engine for `uri` and `options`: the one already running in this
/// process (another ring, another worker thread), or a new one once its
/// refresher has a first good key set.
fn engine(uri: &str, options: &Options) -> std::result::Result<Arc<Engine>, (Code, String)> {
    let identity = identity(uri, options);
    {
        let mut engines = lock(&ENGINES);
        engines.retain(|(_, engine)| engine.strong_count() > 0);
        if let Some(engine) = engines
            .iter()
            .filter(|(opened, _)| *opened == identity)
            .find_map(|(_, engine)| engine.upgrade())
        {
            return Ok(engine);
        }
    }
    let builder = options.apply(Refresher::builder(
        keyroll::open(uri).map_err(|e| (Code::Config, e.to_string()))?,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("keyroll-refresher")
        .enable_all()
        .build()
        .map_err(|e| {
            (
                Code::Unavailable,
                format!("cannot start the refresher's runtime: {e}"),
            )
        })?;
    let refresher = runtime
        .block_on(builder.start())
        .map_err(|e| (Code::of(e.kind()), e.reason()))?;
    let engine = Arc::new(Engine {
        keyring: refresher.keyring().clone(),
        refresher,
        uri: uri.to_owned(),
        options: options.clone(),
        runtime: Mutex::new(Some(runtime)),
    });
    lock(&ENGINES).push((identity, Arc::downgrade(&engine)));
    Ok(engine)
}

/// What the core logs (a refused key set, a store that stopped answering,
/// failing closed; never key material) goes to stderr as the `keyroll`
/// command writes it, filtered by `KEYROLL_LOG` (default: warnings). Once
/// per process; a subscriber the process already has stays.
fn log_to_stderr() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYROLL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(keyroll::DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}

/// Why `open` or `rotate` failed, for `index.js` to throw as a
/// `KeyrollError`.
#[napi(object)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// `open`'s work, off the event loop (libuv's thread pool): the store's
/// first answer can take as long as its retries.
pub struct Open {
    uri: String,
    options: Options,
}

impl Task for Open {
    type Output = std::result::Result<Arc<Engine>, (Code, String)>;
    type JsValue = Either<NativeRing, Failure>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(engine(&self.uri, &self.options))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(match output {
            Ok(engine) => Either::A(NativeRing::new(engine)),
            Err((code, message)) => Either::B(Failure {
                code: code.as_ref().to_owned(),
                message,
            }),
        })
    }
}

/// Opens the key source `uri` with `options` (checked by the library's
/// table); resolves once a first good key set is in, with a `NativeRing` or
/// with why not.
#[napi]
pub fn open(uri: String, options: Vec<NamedValue>) -> Result<AsyncTask<Open>> {
    log_to_stderr();
    let options = parse(&options)?;
    Ok(AsyncTask::new(Open { uri, options }))
}

/// A ring's hold on its engine: `None` once closed. Format objects keep it
/// too, so they refuse once their ring is closed.
pub struct Hold {
    engine: ArcSwapOption<Engine>,
}

/// Any use of a closed ring.
fn ring_closed() -> napi::Error<Code> {
    error(Code::Closed, "the key ring is closed")
}

impl Hold {
    /// The engine, or a `closed` error once the ring is closed.
    pub(crate) fn engine(&self) -> Result<Arc<Engine>> {
        self.engine.load_full().ok_or_else(ring_closed)
    }

    /// Fails with the core's refusal while the keyring serves no key, and
    /// once the ring is closed (one atomic load and the core's check).
    pub(crate) fn check_serving(&self) -> Result<()> {
        let engine = self.engine.load();
        let engine = engine.as_ref().ok_or_else(ring_closed)?;
        engine.keyring.serving_at(SystemTime::now()).map_err(closed)?;
        Ok(())
    }
}

/// Key material as JavaScript gets it: a string when it is UTF-8 text (what
/// express-session and cookie-parser are given), a Buffer otherwise.
type Secret = Either<String, Buffer>;

fn secret(key: &KeyEntry) -> Secret {
    let bytes = key.material().expose_secret();
    match std::str::from_utf8(bytes) {
        Ok(text) => Either::A(text.to_owned()),
        Err(_) => Either::B(bytes.to_vec().into()),
    }
}

/// The signing key, then the keys that only verify now (pending keys, then
/// fallbacks, newest first).
fn serving_keys(set: &KeySet, now: SystemTime) -> Vec<Secret> {
    std::iter::once(set.signing_key_at(now))
        .chain(set.verify_only_keys_at(now))
        .map(secret)
        .collect()
}

/// What the ring serves at one instant.
#[napi(object)]
pub struct Snapshot {
    /// The key set's generation.
    pub generation: i64,
    /// The signing key first, then the keys that only verify; empty while
    /// the core serves no key.
    pub secrets: Vec<Secret>,
    /// Why nothing is served, while so.
    pub refused: Option<String>,
}

/// One key of the status: never material.
#[napi(object)]
pub struct KeyStatus {
    pub id: String,
    pub role: String,
}

/// Automatic rotation's state, with `rotateEvery`.
#[napi(object)]
pub struct RotationState {
    pub period_seconds: f64,
    /// Unix seconds.
    pub next_due: Option<f64>,
    pub published: u32,
    pub lost: u32,
    pub retired: u32,
    pub last_error: Option<String>,
}

/// The refresher's state. Never key material.
#[napi(object)]
pub struct RingStatus {
    /// `healthy`, `degraded`, `stale` (failed closed) or `stopped`.
    pub health: String,
    pub last_error: Option<String>,
    pub staleness_seconds: f64,
    pub generation: i64,
    pub source: String,
    pub consecutive_failures: u32,
    /// `local` or `shared`: whether other hosts read the same store.
    pub reach: String,
    pub activation_delay_seconds: f64,
    pub rotation: Option<RotationState>,
    pub keys: Vec<KeyStatus>,
    /// How many open rings of this process (worker threads included) share
    /// this refresher.
    pub rings: u32,
}

fn generation(set: &KeySet) -> i64 {
    i64::try_from(set.generation()).unwrap_or(i64::MAX)
}

fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Wakes `changed` whenever what the keyring serves may have changed: a new
/// key set, the keyring closing or reopening, a key's activation or expiry,
/// the stale limit's deadline.
async fn watch(keyring: Keyring, changed: ThreadsafeFunction<u32, (), u32, Status, false, true>) {
    let mut changes = keyring.subscribe();
    let mut wakes: u32 = 0;
    loop {
        wakes = wakes.wrapping_add(1);
        if changed.call(wakes, ThreadsafeFunctionCallMode::NonBlocking) == Status::Closing {
            return;
        }
        let now = SystemTime::now();
        let until = keyring
            .next_change_after(now)
            .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO));
        let moment = async {
            match until {
                // A millisecond past the moment: the role has changed by then.
                Some(wait) => tokio::time::sleep(wait.saturating_add(Duration::from_millis(1))).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = moment => {}
        }
    }
}

/// A live key ring (the native half of `keyroll.KeyRing`).
#[napi]
pub struct NativeRing {
    hold: Arc<Hold>,
    watcher: Mutex<Option<AbortHandle>>,
}

impl NativeRing {
    /// Its hold on the engine.
    pub(crate) fn hold(&self) -> &Hold {
        &self.hold
    }

    fn new(engine: Arc<Engine>) -> Self {
        Self {
            hold: Arc::new(Hold {
                engine: ArcSwapOption::new(Some(engine)),
            }),
            watcher: Mutex::new(None),
        }
    }
}

#[napi]
impl NativeRing {
    /// What is served now: the generation and the secrets, or why none.
    #[napi]
    pub fn snapshot(&self) -> Result<Snapshot> {
        let engine = self.hold.engine()?;
        let now = SystemTime::now();
        Ok(match engine.keyring.serving_at(now) {
            Ok(set) => Snapshot {
                generation: generation(&set),
                secrets: serving_keys(&set, now),
                refused: None,
            },
            Err(refused) => Snapshot {
                generation: generation(&engine.keyring.load()),
                secrets: Vec::new(),
                refused: Some(refused.to_string()),
            },
        })
    }

    /// Calls `changed` (on the event loop) whenever what is served may have
    /// changed, until `close`; it does not keep the process alive.
    #[napi]
    pub fn watch(&self, changed: ThreadsafeFunction<u32, (), u32, Status, false, true>) -> Result<()> {
        let engine = self.hold.engine()?;
        let runtime = lock(&engine.runtime);
        let runtime = runtime.as_ref().ok_or_else(ring_closed)?;
        let task = runtime.spawn(watch(engine.keyring.clone(), changed));
        if let Some(previous) = lock(&self.watcher).replace(task.abort_handle()) {
            previous.abort();
        }
        Ok(())
    }

    /// The refresher's state.
    #[napi]
    pub fn status(&self) -> Result<RingStatus> {
        let engine = self.hold.engine()?;
        let status = engine.refresher.status();
        let set = engine.keyring.key_set();
        let now = SystemTime::now();
        // Each open ring holds the engine once; `engine` is this call's hold.
        let rings = count(Arc::strong_count(&engine).saturating_sub(1) as u64);
        Ok(RingStatus {
            health: status.health.as_str().to_owned(),
            last_error: status.last_error.clone(),
            staleness_seconds: status.staleness().as_secs_f64(),
            generation: generation(&set),
            source: status.source.clone(),
            consecutive_failures: status.consecutive_failures,
            reach: match status.reach {
                Reach::Shared => "shared",
                _ => "local",
            }
            .to_owned(),
            activation_delay_seconds: status.activation_delay.as_secs_f64(),
            rotation: status.rotation.as_ref().map(|rotation| RotationState {
                period_seconds: rotation.period.as_secs_f64(),
                next_due: rotation
                    .next_due
                    .and_then(|due| due.duration_since(UNIX_EPOCH).ok())
                    .map(|due| due.as_secs_f64()),
                published: count(rotation.published),
                lost: count(rotation.lost),
                retired: count(rotation.retired),
                last_error: rotation.last_error.clone(),
            }),
            keys: set
                .keys()
                .iter()
                .map(|key| KeyStatus {
                    id: key.id().to_owned(),
                    role: key.role_at(now).to_string(),
                })
                .collect(),
            rings,
        })
    }

    /// Asks the refresher to poll the store now.
    #[napi]
    pub fn refresh_now(&self) -> Result<()> {
        self.hold.engine()?.refresher.refresh_now();
        Ok(())
    }

    /// The key a JWT names in its `kid` (the signing key without one), if
    /// it verifies now; `FailedClosed` while nothing is served.
    #[napi]
    pub fn verifying_key(&self, kid: Option<String>) -> Result<Secret> {
        let engine = self.hold.engine()?;
        let now = SystemTime::now();
        let set = engine.keyring.serving_at(now).map_err(closed)?;
        let key = match kid {
            None => Some(set.signing_key_at(now)),
            Some(kid) => set
                .verifying_keys_at(now)
                .map(|(key, _)| key)
                .find(|key| key.id() == kid),
        };
        key.map(secret)
            .ok_or_else(|| error(Code::BadSignature, "no key that verifies now has this kid"))
    }

    /// The signing key and its id (a JWT's `kid`).
    #[napi]
    pub fn signing_key(&self) -> Result<SigningKey> {
        let engine = self.hold.engine()?;
        let now = SystemTime::now();
        let set = engine.keyring.serving_at(now).map_err(closed)?;
        let key = set.signing_key_at(now);
        Ok(SigningKey {
            kid: key.id().to_owned(),
            key: secret(key),
        })
    }

    /// Django's `Signer` (`TimestampSigner` with `timestamp`).
    #[napi]
    pub fn django_signer(
        &self,
        salt: Option<String>,
        timestamp: bool,
        sep: String,
        algorithm: String,
    ) -> Result<DjangoSigner> {
        DjangoSigner::new(Arc::clone(&self.hold), salt, timestamp, sep, &algorithm)
    }

    /// keyroll's native signer.
    #[napi]
    pub fn native_signer(&self, salt: String, timestamp: bool, max_age: Option<f64>) -> Result<NativeSigner> {
        NativeSigner::new(Arc::clone(&self.hold), salt, timestamp, max_age)
    }

    /// `MultiFernet` over the ring (`derive`: `raw` or `hkdf`).
    #[napi]
    pub fn fernet(&self, derive: String) -> Result<Fernet> {
        Fernet::new(Arc::clone(&self.hold), &derive)
    }

    /// keyroll's JWT signer (HS256, `kid` = the key's id).
    #[napi]
    pub fn jwt(
        &self,
        issuer: Option<String>,
        audience: Option<String>,
        leeway: Option<f64>,
    ) -> Result<JwtSigner> {
        JwtSigner::new(Arc::clone(&self.hold), issuer, audience, leeway)
    }

    /// Stops watching and lets go of the refresher (stopped once no ring of
    /// the process holds it). Idempotent.
    #[napi]
    pub fn close(&self) {
        if let Some(watcher) = lock(&self.watcher).take() {
            watcher.abort();
        }
        drop(self.hold.engine.swap(None));
    }

    /// True once closed.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.hold.engine.load().is_none()
    }
}

/// The signing key, for libraries that sign JWTs themselves.
#[napi(object)]
pub struct SigningKey {
    pub kid: String,
    pub key: Secret,
}
