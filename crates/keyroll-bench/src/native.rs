//! Native sign and verify against the limit: a raw, pre-keyed
//! `Hmac<Sha256>` over exactly the bytes a token's MAC covers, compared with
//! `constant_time_eq` over 32 bytes (the compare keyroll uses).

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use constant_time_eq::constant_time_eq_32;
use hmac::{Hmac, Mac};
use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring, Signer};
use sha2::Sha256;

use crate::measure::{Case, Effort, Timing, interleaved};

/// The signed value: a typical session reference.
pub const VALUE: &str = "user=42;session=8f14e45fceea167a5a36dedd4bea2543";
/// Key counts measured.
pub const KEY_COUNTS: [usize; 4] = [1, 4, 16, 64];

/// Key `i` of the benchmark key sets.
pub fn key(i: usize) -> KeyMaterial {
    KeyMaterial::from(format!("bench-key-{i:02}-0123456789abcdefghijklmnopqrstuvwxyz"))
}

/// `n` keys: key 0 signs, the others are fallbacks (newest first).
pub fn key_set(n: usize) -> KeySet {
    let epoch = SystemTime::UNIX_EPOCH;
    let keys = (0..n)
        .map(|i| {
            let until = (i > 0).then(|| epoch + Duration::from_secs(1));
            KeyEntry::new(format!("v{i}"), key(i), Some(epoch), until, None)
        })
        .collect();
    KeySet::new(keys, SystemTime::now()).expect("key 0 signs")
}

/// Key 0 signs and key 1 is a fallback whose verifying window closes in 30
/// days: a set with a transition ahead, as during every rotation, so a
/// verify reads the coarse clock to check the roles' deadline.
pub fn signer_with_deadline() -> Signer {
    Signer::new(Keyring::new(key_set_with_deadline())).with_salt("sessions")
}

/// The key set of [`signer_with_deadline`].
pub fn key_set_with_deadline() -> KeySet {
    let epoch = SystemTime::UNIX_EPOCH;
    let now = SystemTime::now();
    let keys = vec![
        KeyEntry::new("v0", key(0), Some(epoch), None, None),
        KeyEntry::new(
            "v1",
            key(1),
            Some(epoch),
            Some(epoch + Duration::from_secs(1)),
            Some(now + Duration::from_secs(30 * 86_400)),
        ),
    ];
    KeySet::new(keys, now).expect("key 0 signs")
}

/// A native signer (salt `sessions`) holding `n` keys.
pub fn signer(n: usize) -> Signer {
    Signer::new(Keyring::new(key_set(n))).with_salt("sessions")
}

/// A token signed by key `i` alone, with the same salt.
pub fn token_of(i: usize) -> String {
    Signer::new(Keyring::new(
        KeySet::single("k", key(i)).expect("bench keys are strong"),
    ))
    .with_salt("sessions")
    .sign(VALUE)
    .unwrap()
}

/// The limit: the fastest correct verify of the same bytes. A pre-keyed
/// HMAC-SHA256 state is cloned, updated over the bytes a token's MAC covers,
/// finalized, and the 32 bytes compared with `constant_time_eq_32` against
/// the expected MAC, already decoded (no parsing, no clock, no key lookup).
#[derive(Debug)]
pub struct Raw {
    mac: Hmac<Sha256>,
    input: Vec<u8>,
    tag: [u8; 32],
}

impl Raw {
    /// The raw MAC of `token`'s signed part, under an unrelated 32-byte key.
    pub fn new(token: &str) -> Self {
        let (signed, _) = token.rsplit_once('.').expect("a token has a MAC field");
        Self::over(signed)
    }

    /// The raw MAC of `signed`, under an unrelated 32-byte key.
    pub fn over(signed: &str) -> Self {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).expect("HMAC takes any key");
        let tag = mac
            .clone()
            .chain_update(signed.as_bytes())
            .finalize()
            .into_bytes()
            .into();
        Self {
            mac,
            input: signed.as_bytes().to_vec(),
            tag,
        }
    }

    /// Clone the keyed state, MAC the bytes, compare the 32-byte tag.
    pub fn verify(&self) -> bool {
        let mut mac = self.mac.clone();
        mac.update(std::hint::black_box(&self.input));
        constant_time_eq_32(
            &mac.finalize().into_bytes().into(),
            std::hint::black_box(&self.tag),
        )
    }
}

/// The limit of signing: the work a native token needs and nothing else.
/// The prefix with the key id is ready; per call it allocates the token,
/// base64url-encodes the value into it, MACs it with the pre-keyed state and
/// appends the base64url MAC.
#[derive(Debug)]
pub struct RawSign {
    mac: Hmac<Sha256>,
    prefix: String,
}

impl RawSign {
    /// For tokens of the shape of `token` (its prefix and key id).
    pub fn new(token: &str) -> Self {
        let mut fields = token.splitn(3, '.');
        let prefix = format!(
            "{}.{}.",
            fields.next().expect("version"),
            fields.next().expect("key id")
        );
        Self {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).expect("HMAC takes any key"),
            prefix,
        }
    }

    /// One token of `value`.
    pub fn sign(&self, value: &[u8]) -> String {
        let mut token = String::with_capacity(self.prefix.len() + value.len().div_ceil(3) * 4 + 44);
        token.push_str(&self.prefix);
        B64.encode_string(value, &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        token.push('.');
        B64.encode_string(mac.finalize().into_bytes(), &mut token);
        token
    }
}

/// Native verify with `keys` keys held, for a token of the newest or oldest.
#[derive(Debug, Clone)]
pub struct ByKeys {
    /// Keys held.
    pub keys: usize,
    /// Token of the newest (current) key.
    pub newest: Timing,
    /// Token of the oldest fallback.
    pub oldest: Timing,
}

/// Results of the native section.
#[derive(Debug, Clone)]
pub struct NativeResults {
    /// Raw pre-keyed HMAC verify.
    pub raw_verify: Timing,
    /// The raw token: MAC plus the encoding a token needs.
    pub raw_sign: Timing,
    /// `Signer::sign`, 1 key.
    pub sign_one: Timing,
    /// `Signer::sign`, 16 keys.
    pub sign_sixteen: Timing,
    /// `Signer::verify` (decodes to a `String`), 1 key.
    pub verify_decoded: Timing,
    /// `Signer::verify_encoded`, current key's token, with a fallback whose
    /// window closes ahead (the roles' deadline is checked on the clock).
    pub with_deadline: Timing,
    /// `Signer::verify_encoded` per key count.
    pub by_keys: Vec<ByKeys>,
}

impl NativeResults {
    /// Verify of one key count.
    pub fn with(&self, keys: usize) -> &ByKeys {
        self.by_keys
            .iter()
            .find(|b| b.keys == keys)
            .expect("measured key count")
    }
}

/// Measures every native case in one interleaved run.
pub fn run(effort: Effort) -> NativeResults {
    let newest = token_of(0);
    let raw = Raw::new(&newest);
    let raw_sign = RawSign::new(&newest);
    assert_eq!(
        raw_sign.sign(VALUE.as_bytes()).len(),
        newest.len(),
        "the raw token has the native token's size"
    );
    let signers: Vec<(usize, Signer, String)> = KEY_COUNTS
        .iter()
        .map(|&n| (n, signer(n), token_of(n - 1)))
        .collect();
    let one = &signers[0].1;
    let sixteen = &signers[2].1;
    let deadline = signer_with_deadline();
    let mut cases: Vec<Case<'_>> = vec![
        ("raw verify", Box::new(|| raw.verify())),
        (
            "raw sign",
            Box::new(|| !raw_sign.sign(VALUE.as_bytes()).is_empty()),
        ),
        ("sign 1", Box::new(|| !one.sign(VALUE).unwrap().is_empty())),
        ("sign 16", Box::new(|| !sixteen.sign(VALUE).unwrap().is_empty())),
        ("verify decoded", Box::new(|| one.verify(&newest).is_ok())),
        (
            "deadline ahead",
            Box::new(|| deadline.verify_encoded(&newest).is_ok()),
        ),
    ];
    for (_, signer, oldest) in &signers {
        let newest = &newest;
        cases.push(("newest", Box::new(move || signer.verify_encoded(newest).is_ok())));
        cases.push(("oldest", Box::new(move || signer.verify_encoded(oldest).is_ok())));
    }
    let t = interleaved(&mut cases, effort);
    NativeResults {
        raw_verify: t[0].clone(),
        raw_sign: t[1].clone(),
        sign_one: t[2].clone(),
        sign_sixteen: t[3].clone(),
        verify_decoded: t[4].clone(),
        with_deadline: t[5].clone(),
        by_keys: KEY_COUNTS
            .iter()
            .enumerate()
            .map(|(i, &keys)| ByKeys {
                keys,
                newest: t[6 + 2 * i].clone(),
                oldest: t[7 + 2 * i].clone(),
            })
            .collect(),
    }
}

/// The parts of a native verify beyond the raw HMAC, each timed alone.
#[derive(Debug, Clone)]
pub struct Overheads {
    /// `RoleSnapshot::now`: the coarse clock and the deadline compare.
    pub roles: Timing,
    /// `SystemTime::now()`, which the snapshot saves (for comparison).
    pub clock: Timing,
    /// Decoding the token's 43-character MAC to 32 bytes (`MacText::decode`).
    pub mac_decoding: Timing,
    /// `DerivedCache::get`: the thread's own reference and a generation compare.
    pub derived_load: Timing,
    /// `KeyEntry::record_verification`: a load and store in the thread's slot.
    pub counter: Timing,
}

/// Times each overhead in one interleaved run.
pub fn overheads(effort: Effort) -> Overheads {
    use std::hint::black_box;

    let keyring = Keyring::new(key_set(1));
    let cache = keyroll_core::DerivedCache::new(&keyring, |set: &KeySet| set.keys().len());
    let set = keyring.key_set();
    // A set with a deadline ahead: the check reads the coarse clock (a set
    // without one, like the 1-key set, reads no clock at all).
    let with_deadline = key_set_with_deadline();
    let snapshot = keyroll_core::RoleSnapshot::of(&with_deadline);
    let mut text = String::new();
    B64.encode_string([0x5au8; 32], &mut text);
    let key = &set.keys()[0];
    let mut cases: Vec<Case<'_>> = vec![
        (
            "roles",
            Box::new(|| {
                matches!(
                    snapshot.now(black_box(&with_deadline)),
                    keyroll_core::RolesNow::Snapshot(_)
                )
            }),
        ),
        (
            "clock",
            Box::new(|| black_box(SystemTime::now()) > SystemTime::UNIX_EPOCH),
        ),
        (
            "decode",
            Box::new(|| keyroll_core::MacText::decode(black_box(text.as_bytes())).is_some()),
        ),
        ("derived", Box::new(|| cache.get(&keyring).state == 1)),
        (
            "counter",
            Box::new(|| {
                key.record_verification(keyroll_core::Format::Native, keyroll_core::Role::Current);
                true
            }),
        ),
    ];
    let t = interleaved(&mut cases, effort);
    Overheads {
        roles: t[0].clone(),
        clock: t[1].clone(),
        mac_decoding: t[2].clone(),
        derived_load: t[3].clone(),
        counter: t[4].clone(),
    }
}
