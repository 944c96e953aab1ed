//! Capturing `tracing` output in tests, at TRACE, from keyroll and from every
//! library it calls (SDKs, HTTP clients): what a service that logs
//! everything would write.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// A buffer the captured events are written to, as text.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    /// How many bytes were captured so far: a mark for [`Logs::since`].
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was captured yet.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// What was captured after `mark` (a [`Logs::len`]).
    pub fn since(&self, mark: usize) -> String {
        String::from_utf8_lossy(&self.lock()[mark..]).into_owned()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let sink = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish()
    }
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs").field("bytes", &self.len()).finish()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with every event of this thread captured at TRACE; returns its
/// result and the text.
pub fn on_this_thread<T>(f: impl FnOnce() -> T) -> (T, String) {
    let logs = Logs::default();
    let result = tracing::subscriber::with_default(logs.subscriber(), f);
    (result, logs.text())
}

/// Installs, once per test binary, a global subscriber capturing every event
/// of the process at TRACE (tasks log from whatever thread runs them), and
/// returns its buffer.
///
/// # Panics
/// When another global subscriber was installed first.
pub fn everything() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        tracing::subscriber::set_global_default(logs.subscriber())
            .expect("the test binary installs one global tracing subscriber");
        logs
    })
    .clone()
}
