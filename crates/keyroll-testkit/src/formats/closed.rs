//! A keyring that has failed closed, made the way a service's does: a
//! refresher whose store never answers, with a stale limit that passes.

use std::fmt;
use std::time::Duration;

use keyroll_core::{KeyProvider, KeySet, KeyVersion, Keyring, ProviderError, Reach, Refresher};

/// A store that never answers.
#[derive(Debug)]
struct Unreachable;

#[keyroll_core::async_trait]
impl KeyProvider for Unreachable {
    async fn fetch_newest(&self, _versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        Err(ProviderError::unavailable(
            "the format suite's store never answers",
        ))
    }

    fn reach(&self) -> Reach {
        Reach::Local
    }
}

/// A keyring holding `keys` that has failed closed; the refresher and its
/// runtime live as long as this.
pub struct ClosedKeyring {
    refresher: Option<Refresher>,
    runtime: tokio::runtime::Runtime,
}

impl ClosedKeyring {
    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        self.refresher.as_ref().expect("held until drop").keyring()
    }
}

impl Drop for ClosedKeyring {
    fn drop(&mut self) {
        let _entered = self.runtime.enter();
        self.refresher.take();
    }
}

impl fmt::Debug for ClosedKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClosedKeyring")
            .field("closed", &self.keyring().is_closed())
            .finish_non_exhaustive()
    }
}

/// A keyring serving `keys` whose store has not answered for longer than
/// its stale limit: it has failed closed ([`Keyring::is_closed`]).
///
/// # Panics
/// When the refresher does not start or the keyring does not close.
pub fn closed_keyring(keys: KeySet) -> ClosedKeyring {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let refresher = runtime.block_on(async {
        Refresher::builder(Unreachable)
            .startup_timeout(Duration::from_millis(20))
            .start_degraded(keys)
            .fail_closed_after(Duration::from_millis(1))
            .start()
            .await
            .expect("starts with the break-glass keys")
    });
    let closed = ClosedKeyring {
        refresher: Some(refresher),
        runtime,
    };
    for _ in 0..500 {
        if closed.keyring().is_closed() {
            return closed;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the keyring did not fail closed within a second");
}
