//! What [`GcpProvider`] writes: a new version, and the claim that makes
//! `publish_if` one version per predecessor.
//!
//! Secret Manager has no conditional `AddSecretVersion`, but the secret
//! itself has an `etag` that `UpdateSecret` checks. So a conditional publish
//! first **claims** the period in the secret's annotation [`CLAIM`] with an
//! `UpdateSecret` (`updateMask=annotations`) under the etag it read: of the
//! writers that read the same etag, only one updates the secret, the others
//! are refused (`FAILED_PRECONDITION`). Only the writer holding the claim
//! adds the version.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::error::rpc::Code;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use google_cloud_secretmanager_v1::model::{Replication, Secret, SecretPayload, replication};
use google_cloud_wkt::FieldMask;
use keyroll_core::{KeyMaterial, ProviderError, ProviderErrorKind, Published};

use super::{GcpProvider, classify, system_time, version_id};

/// The secret annotation holding a writer's claim: `after=ID;at=SECONDS`, the
/// newest version it publishes after (`none` for a secret without versions)
/// and when it claimed (Unix seconds, by the writer's clock).
pub const CLAIM: &str = "keyroll-claim";

/// How long a claim holds off other writers (10 minutes). A writer that
/// claimed and then crashed before adding its version blocks the next
/// conditional publish over the same version for at most this long. A claim
/// is only acted on within half of it: the writer adds its version only
/// while the time since its claim, plus the longest its `AddSecretVersion`
/// may take (attempts × attempt timeout), stays under
/// `CLAIM_TTL / 2`, and gives up (nothing written) otherwise. The other half
/// absorbs clock differences between hosts, so a takeover of an expired
/// claim never races the claimer's own write while clocks agree within
/// five minutes.
pub const CLAIM_TTL: Duration = Duration::from_secs(600);

/// A claim read from the secret's annotations.
#[derive(Debug, PartialEq, Eq)]
struct Claim {
    after: Option<String>,
    at: u64,
}

impl Claim {
    fn parse(text: &str) -> Option<Self> {
        let (after, at) = text.split_once(';')?;
        let after = after.strip_prefix("after=")?;
        let at = at.strip_prefix("at=")?.parse().ok()?;
        let after = (after != "none").then(|| after.to_owned());
        Some(Self { after, at })
    }

    fn text(after: Option<&str>, at: u64) -> String {
        format!("after={};at={at}", after.unwrap_or("none"))
    }

    /// Whether it still holds off writers at `now` (Unix seconds): made
    /// within [`CLAIM_TTL`] either side of it (a claim far in the future is
    /// a broken clock, not a writer).
    fn holds(&self, now: u64) -> bool {
        let ttl = CLAIM_TTL.as_secs();
        self.at.abs_diff(now) < ttl
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A raced error: the store changed, nothing was written.
fn is_race(error: &GaxError) -> bool {
    error
        .status()
        .is_some_and(|s| matches!(s.code, Code::FailedPrecondition | Code::Aborted))
}

impl GcpProvider {
    /// Adds `material` as a new version, checksummed, and keeps its payload.
    pub(super) async fn add_version(
        &self,
        client: &SecretManagerService,
        material: &KeyMaterial,
    ) -> Result<Published, ProviderError> {
        let data = material.expose_secret();
        let payload = SecretPayload::new()
            .set_data(bytes::Bytes::copy_from_slice(data))
            .set_data_crc32c(i64::from(crc32c::crc32c(data)));
        let version = client
            .add_secret_version()
            .set_parent(self.secret.as_str())
            .set_payload(payload)
            .send()
            .await
            .map_err(|e| classify(e, "add a version to", self.secret.as_str()))?;
        self.held.insert(version.name.clone(), material.clone());
        Ok(Published::new(
            version_id(&version.name),
            version.create_time.as_ref().and_then(system_time),
        ))
    }

    fn conflict(&self, expected: Option<&str>, why: &str) -> ProviderError {
        ProviderError::new(
            ProviderErrorKind::Conflict,
            format!(
                "{}: {why}, so another writer publishes the version after {}. Nothing was written",
                self.secret,
                expected.unwrap_or("its empty state")
            ),
        )
    }

    /// `publish_if`: claim, then add. See the [module docs](self).
    pub(super) async fn publish_after(
        &self,
        material: &KeyMaterial,
        expected: Option<&str>,
    ) -> Result<Published, ProviderError> {
        let client = self.client().await?;
        let secret = match client.get_secret().set_name(self.secret.as_str()).send().await {
            Ok(secret) => secret,
            Err(e) if e.status().is_some_and(|s| s.code == Code::NotFound) => {
                if expected.is_some() {
                    return Err(self.conflict(expected, "the secret does not exist (any more)"));
                }
                return self.create_then_add(client, material).await;
            }
            Err(e) => return Err(classify(e, "read", self.secret.as_str())),
        };
        // After the secret (its etag): a version added after that read shows here.
        let newest = self
            .list(client)
            .await?
            .iter()
            .filter_map(|v| version_id(&v.name).parse::<u64>().ok())
            .max()
            .map(|number| number.to_string());
        if newest.as_deref() != expected {
            return Err(self.conflict(
                expected,
                &format!(
                    "the newest version is {}, not the one expected",
                    newest.as_deref().unwrap_or("none")
                ),
            ));
        }
        let now = unix_now();
        if let Some(claim) = secret.annotations.get(CLAIM).and_then(|text| Claim::parse(text))
            && claim.after.as_deref() == expected
            && claim.holds(now)
        {
            return Err(self.conflict(expected, "a writer claimed that version less than 10 minutes ago"));
        }
        let mut annotations: HashMap<String, String> = secret.annotations.clone();
        annotations.insert(CLAIM.to_owned(), Claim::text(expected, now));
        let claimed = Instant::now();
        let update = Secret::new()
            .set_name(self.secret.as_str())
            .set_etag(secret.etag)
            .set_annotations(annotations);
        match client
            .update_secret()
            .set_secret(update)
            .set_update_mask(FieldMask::default().set_paths(["annotations"]))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_race(&e) => {
                return Err(self.conflict(expected, "the secret changed since it was read"));
            }
            Err(e) => return Err(classify(e, "claim the next version of", self.secret.as_str())),
        }
        self.add_while_claimed(client, material, claimed).await
    }

    /// `expected = None` on a secret that does not exist: create it, claimed
    /// by this writer; a second creator gets `ALREADY_EXISTS`.
    async fn create_then_add(
        &self,
        client: &SecretManagerService,
        material: &KeyMaterial,
    ) -> Result<Published, ProviderError> {
        let name = self.secret.as_str();
        let (parent, id) = name
            .rsplit_once("/secrets/")
            .ok_or_else(|| ProviderError::config(format!("`{name}` is not a secret name")))?;
        let mut secret = Secret::new().set_annotations([(CLAIM.to_owned(), Claim::text(None, unix_now()))]);
        if self.secret.location().is_none() {
            // A global secret needs a replication policy; a regional one has none.
            secret =
                secret.set_replication(Replication::new().set_automatic(replication::Automatic::default()));
        }
        let claimed = Instant::now();
        match client
            .create_secret()
            .set_parent(parent)
            .set_secret_id(id)
            .set_secret(secret)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.status().is_some_and(|s| s.code == Code::AlreadyExists) => {
                return Err(self.conflict(None, "another writer created the secret meanwhile"));
            }
            Err(e) => return Err(classify(e, "create", name)),
        }
        tracing::info!(secret = name, "created the secret to publish its first key");
        self.add_while_claimed(client, material, claimed).await
    }

    /// Adds the version if the claim made at `claimed` still holds for as long
    /// as the add may take (see [`CLAIM_TTL`]).
    async fn add_while_claimed(
        &self,
        client: &SecretManagerService,
        material: &KeyMaterial,
        claimed: Instant,
    ) -> Result<Published, ProviderError> {
        let budget = self.attempt_timeout.saturating_mul(self.max_attempts);
        if claimed.elapsed().saturating_add(budget) >= CLAIM_TTL / 2 {
            return Err(ProviderError::unavailable(format!(
                "{}: the claim on the next version would expire before the version could be added \
                 (attempts × attempt timeout is {budget:?}); nothing was added, the claim lapses \
                 within {CLAIM_TTL:?}",
                self.secret
            )));
        }
        self.add_version(client, material).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_read_back_and_hold_for_the_ttl_either_side() {
        let claim = Claim::parse(&Claim::text(Some("7"), 1_000_000)).unwrap();
        assert_eq!(
            claim,
            Claim {
                after: Some("7".into()),
                at: 1_000_000
            }
        );
        assert_eq!(Claim::parse(&Claim::text(None, 5)).unwrap().after, None);
        let ttl = CLAIM_TTL.as_secs();
        assert!(claim.holds(1_000_000 + ttl - 1));
        assert!(!claim.holds(1_000_000 + ttl));
        assert!(claim.holds(1_000_000 - ttl + 1));
        assert!(!claim.holds(1_000_000 - ttl));
        for broken in ["", "after=7", "at=5;after=7", "after=7;at=soon", "after=7;at=-1"] {
            assert_eq!(Claim::parse(broken), None, "{broken}");
        }
    }
}
