//! The signer: the keyring's current key signs with its id in `kid`; a
//! verify picks the key by `kid` (one HMAC whatever the number of keys).

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keyroll_core::kit::{KeyedHmac, KeysNow, Unverified};
use keyroll_core::{DerivedCache, Format, KeySet, Keyring, Verified, VerifiedBy};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::claims::{Header, Registered, WrittenHeader};
use crate::{Algorithm, Error};

/// Default bound on a token's length: 8 KiB, far above any real token and
/// far below what an attacker would like to make the verifier decode.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// Default leeway for `exp`, `nbf` and `iat`: clock skew between replicas.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// What to do with a token whose header has no `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WithoutKid {
    /// Try every accepted key: the current key, pending keys, then fallbacks
    /// newest first (tokens from issuers that do not write `kid`).
    #[default]
    TryEveryKey,
    /// Refuse the token with [`Error::MissingKeyId`].
    Refuse,
}

/// Settings; no secrets in here.
#[derive(Debug, Clone)]
struct Options {
    algorithm: Algorithm,
    accepted: [bool; 3],
    without_kid: WithoutKid,
    leeway: Duration,
    issuer: Option<String>,
    audiences: Vec<String>,
    require_exp: bool,
    max_token_len: usize,
    /// `None`: the system clock, and roles from the key set generation's snapshot.
    clock: Option<fn() -> SystemTime>,
}

/// Per key set generation: one pre-keyed HMAC per key and accepted
/// algorithm, the encoded header each key signs with, and the keys by id.
struct Keys {
    /// Indexed by [`Algorithm::index`]; empty for algorithms not accepted.
    macs: [Vec<KeyedHmac>; 3],
    /// `base64url(header) + "."` per key, for the signing algorithm.
    headers: Vec<String>,
    by_id: HashMap<Arc<str>, usize>,
}

fn derive_keys(set: &KeySet, options: &Options) -> Keys {
    let all = [Algorithm::Hs256, Algorithm::Hs384, Algorithm::Hs512];
    let macs = all.map(|algorithm| {
        if !options.accepted[algorithm.index()] && algorithm != options.algorithm {
            return Vec::new();
        }
        set.keys()
            .iter()
            .map(|key| KeyedHmac::new(algorithm, key.material().expose_secret()))
            .collect()
    });
    let headers = set
        .keys()
        .iter()
        .map(|key| {
            let header = WrittenHeader {
                alg: options.algorithm.name(),
                kid: key.id(),
                typ: "JWT",
            };
            let json = serde_json::to_vec(&header).expect("a header of strings serializes");
            let mut encoded = B64.encode(json);
            encoded.push('.');
            encoded
        })
        .collect();
    let mut by_id = HashMap::with_capacity(set.keys().len());
    for (index, key) in set.keys().iter().enumerate() {
        by_id.entry(key.shared_id()).or_insert(index);
    }
    Keys { macs, headers, by_id }
}

fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Configures a [`Signer`].
///
/// ```
/// use std::time::Duration;
/// use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// use keyroll_jwt::{Algorithm, Signer, WithoutKid};
///
/// let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
/// let signer = Signer::builder(keyring)
///     .algorithm(Algorithm::Hs512)
///     .issuer("https://auth.example")
///     .audience("api")
///     .leeway(Duration::from_secs(5))
///     .without_kid(WithoutKid::Refuse)
///     .build();
/// # let _ = signer;
/// ```
#[derive(Debug)]
pub struct SignerBuilder {
    keyring: Keyring,
    options: Options,
}

impl SignerBuilder {
    /// The algorithm that signs (default HS256); it is always accepted.
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.options.algorithm = algorithm;
        self
    }

    /// Also accepts tokens signed with `algorithm` (for example HS512 tokens of
    /// another issuer that shares the keys).
    pub fn accept_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.options.accepted[algorithm.index()] = true;
        self
    }

    /// What to do with tokens without `kid` (default: try every key).
    pub fn without_kid(mut self, policy: WithoutKid) -> Self {
        self.options.without_kid = policy;
        self
    }

    /// Tolerance for `exp`, `nbf` and `iat` (default [`DEFAULT_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.options.leeway = leeway;
        self
    }

    /// Requires `iss` to be `issuer`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.options.issuer = Some(issuer.into());
        self
    }

    /// Requires `aud` to name `audience` (call again to accept several).
    /// Without any, tokens that carry `aud` are refused: they are meant for
    /// a verifier that checks it.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.options.audiences.push(audience.into());
        self
    }

    /// Whether tokens without `exp` are refused (default true: a token
    /// without expiry is valid as long as its key is).
    pub fn require_exp(mut self, required: bool) -> Self {
        self.options.require_exp = required;
        self
    }

    /// Bound on the token length (default [`DEFAULT_MAX_TOKEN_LEN`]).
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.options.max_token_len = bytes;
        self
    }

    /// Reads time from `clock` instead of the system clock (for tests).
    pub fn clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.options.clock = Some(clock);
        self
    }

    /// Builds the signer and derives its MAC states for the keyring's current set.
    pub fn build(self) -> Signer {
        let options = self.options.clone();
        let keys = DerivedCache::new(&self.keyring, move |set: &KeySet| derive_keys(set, &options));
        Signer {
            keyring: self.keyring,
            options: self.options,
            keys,
        }
    }
}

/// Signs JWTs with the keyring's current key (header `kid` = its id) and
/// verifies them with the key their `kid` names.
///
/// ```
/// use std::time::Duration;
/// use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// use keyroll_jwt::Signer;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Claims {
///     sub: String,
///     admin: bool,
/// }
///
/// let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
/// let signer = Signer::new(keyring);
/// let token = signer.sign_with_ttl(&Claims { sub: "42".into(), admin: false }, Duration::from_secs(900))?;
/// let verified = signer.verify::<Claims>(&token)?;
/// assert_eq!(verified.value.sub, "42");
/// assert_eq!(&*verified.key.id, "v1");
/// assert!(!verified.needs_resign());
/// # Ok::<(), keyroll_jwt::Error>(())
/// ```
pub struct Signer {
    keyring: Keyring,
    options: Options,
    keys: DerivedCache<Keys>,
}

impl Signer {
    /// A signer with the defaults: HS256, leeway 60 s, `exp` required,
    /// tokens without `kid` tried with every key.
    pub fn new(keyring: Keyring) -> Self {
        Self::builder(keyring).build()
    }

    /// Configures a signer.
    pub fn builder(keyring: Keyring) -> SignerBuilder {
        SignerBuilder {
            keyring,
            options: Options {
                algorithm: Algorithm::default(),
                accepted: [false; 3],
                without_kid: WithoutKid::default(),
                leeway: DEFAULT_LEEWAY,
                issuer: None,
                audiences: Vec::new(),
                require_exp: true,
                max_token_len: DEFAULT_MAX_TOKEN_LEN,
                clock: None,
            },
        }
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.options.algorithm
    }

    /// Signs `claims` (anything that serializes to a JSON object) as they are.
    ///
    /// # Errors
    /// [`Error::Stale`] once the keyring has failed closed;
    /// [`Error::Serialize`] when they do not serialize to a JSON object, or
    /// a registered claim has a type the verifier refuses (`exp`, `nbf`,
    /// `iat` not numbers, `iss` not a string, `aud` not a string or a list of
    /// strings): a token this signer issues always verifies.
    pub fn sign<T: Serialize + ?Sized>(&self, claims: &T) -> Result<String, Error> {
        let now = self.serving_now()?;
        let payload = serde_json::to_vec(claims).map_err(|e| Error::Serialize(e.to_string()))?;
        Ok(self.sign_payload(&signable(payload)?, now))
    }

    /// Now, or [`Error::Stale`] once the keyring has failed closed: nothing
    /// signs then.
    fn serving_now(&self) -> Result<SystemTime, Error> {
        let now = self.now();
        self.keyring.serving_at(now).map_err(|_| Error::Stale)?;
        Ok(now)
    }

    /// Signs `claims` with `iat` = now and `exp` = now + `ttl` (replacing
    /// any `iat`/`exp` they carry).
    pub fn sign_with_ttl<T: Serialize + ?Sized>(&self, claims: &T, ttl: Duration) -> Result<String, Error> {
        let now = self.serving_now()?;
        let mut value = serde_json::to_value(claims).map_err(|e| Error::Serialize(e.to_string()))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| Error::Serialize("not an object".to_owned()))?;
        let iat = unix_seconds(now);
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        object.insert("iat".to_owned(), iat.into());
        object.insert("exp".to_owned(), iat.saturating_add(ttl).into());
        let payload = serde_json::to_vec(&value).map_err(|e| Error::Serialize(e.to_string()))?;
        Ok(self.sign_payload(&signable(payload)?, now))
    }

    fn sign_payload(&self, payload: &[u8], now: SystemTime) -> String {
        let derived = self.keys.get(&self.keyring);
        let keys = derived.keys.keys();
        let signing = derived.keys.signing_key_at(now);
        let index = keys
            .iter()
            .position(|key| std::ptr::eq(key, signing))
            .expect("the signing key is one of the set's keys");
        let header = &derived.state.headers[index];
        let mac = &derived.state.macs[self.options.algorithm.index()][index];
        let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 90);
        token.push_str(header);
        B64.encode_string(payload, &mut token);
        let mut tag = [0u8; 64];
        let length = mac.mac_into(token.as_bytes(), &mut tag);
        token.push('.');
        B64.encode_string(&tag[..length], &mut token);
        token
    }

    /// Verifies `token` and decodes its claims into `T`, with the key that
    /// verified it ([`Verified::needs_resign`] when it was not the current
    /// key) and `iat` as the timestamp.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<Verified<T>, Error> {
        self.check(token).inspect_err(Error::count)
    }

    /// [`verify`](Self::verify) without counting a refusal.
    fn check<T: DeserializeOwned>(&self, token: &str) -> Result<Verified<T>, Error> {
        let now = self.now();
        let (payload, key) = self.check_signature(token)?;
        let iat = self.check_claims(&payload, now)?;
        let value = serde_json::from_slice(&payload).map_err(|e| Error::Claims(e.to_string()))?;
        Ok(Verified {
            value,
            key,
            timestamp: iat.map(|seconds| {
                UNIX_EPOCH
                    .checked_add(Duration::from_secs(seconds.max(0).unsigned_abs()))
                    .unwrap_or(UNIX_EPOCH)
            }),
        })
    }

    /// Header, key choice and MAC: returns the decoded payload and the key.
    fn check_signature(&self, token: &str) -> Result<(Vec<u8>, VerifiedBy), Error> {
        if token.len() > self.options.max_token_len {
            return Err(Error::TooLarge {
                limit: self.options.max_token_len,
            });
        }
        let keys = KeysNow::open(&self.keyring, &self.keys, self.options.clock).map_err(|_| Error::Stale)?;
        const NOT_JWS: &str = "not three base64url parts separated by dots";
        let (signed, signature) = token.rsplit_once('.').ok_or(Error::Malformed(NOT_JWS))?;
        let (header, payload) = signed.split_once('.').ok_or(Error::Malformed(NOT_JWS))?;
        if payload.contains('.') {
            return Err(Error::Malformed(NOT_JWS));
        }
        let header = B64
            .decode(header)
            .map_err(|_| Error::Malformed("the header is not base64url"))?;
        if header.first() != Some(&b'{') {
            return Err(Error::Malformed("the header is not a JSON object"));
        }
        let header: Header<'_> = serde_json::from_slice(&header)
            .map_err(|_| Error::Malformed("the header is not a JOSE header"))?;
        let algorithm = self.algorithm_of(&header.alg)?;
        if let Some(crit) = header.crit {
            return Err(Error::UnsupportedCritical(crit));
        }
        let mut raw = [0u8; 64];
        if signature.len() != (algorithm.mac_len() * 4).div_ceil(3) {
            return Err(Error::BadSignature);
        }
        let length = B64
            .decode_slice(signature, &mut raw)
            .map_err(|_| Error::BadSignature)?;
        let signature = &raw[..length];

        let macs = |state: &Keys, index: usize| {
            Ok::<_, Infallible>(
                state.macs[algorithm.index()][index]
                    .verify(signed.as_bytes(), signature)
                    .then_some(()),
            )
        };
        let found = match header.kid {
            Some(kid) => {
                let index = keys.state().by_id.get(&*kid).copied();
                keys.first_named(Format::Jwt, index, macs)
            }
            None if self.options.without_kid == WithoutKid::Refuse => return Err(Error::MissingKeyId),
            // The order of `KeySet::verifying_keys_at`: current, then the rest as stored.
            None => keys.first_verifying(Format::Jwt, macs),
        };
        let ((), key) = found.map_err(|error| match error {
            Unverified::UnknownKey => Error::UnknownKey,
            _ => Error::BadSignature,
        })?;
        let payload = B64
            .decode(payload)
            .map_err(|_| Error::Malformed("the payload is not base64url"))?;
        Ok((payload, key))
    }

    fn now(&self) -> SystemTime {
        self.options.clock.map_or_else(SystemTime::now, |clock| clock())
    }

    /// The accepted HMAC algorithm `alg` names, or why it is refused.
    fn algorithm_of(&self, alg: &str) -> Result<Algorithm, Error> {
        match Algorithm::from_header(alg) {
            Some(algorithm)
                if algorithm == self.options.algorithm || self.options.accepted[algorithm.index()] =>
            {
                Ok(algorithm)
            }
            _ if alg.eq_ignore_ascii_case("none") => Err(Error::NoneAlgorithm),
            _ if ["RS", "PS", "ES", "Ed"]
                .iter()
                .any(|prefix| alg.starts_with(prefix)) =>
            {
                Err(Error::AsymmetricAlgorithm(alg.to_owned()))
            }
            _ => Err(Error::AlgorithmNotAccepted(alg.to_owned())),
        }
    }

    /// `exp`, `nbf`, `iat`, `iss`, `aud`; returns `iat`.
    fn check_claims(&self, payload: &[u8], now: SystemTime) -> Result<Option<i64>, Error> {
        if payload.first() != Some(&b'{') {
            return Err(Error::Malformed("the payload is not a JSON object"));
        }
        let claims: Registered<'_> =
            serde_json::from_slice(payload).map_err(|e| Error::Claims(e.to_string()))?;
        let now = i128::from(unix_seconds(now));
        let leeway = i128::from(self.options.leeway.as_secs());
        match claims.exp {
            Some(exp) if i128::from(exp.0) <= now - leeway => return Err(Error::Expired { exp: exp.0 }),
            None if self.options.require_exp => return Err(Error::MissingClaim("exp")),
            _ => {}
        }
        for (claim, at) in [("nbf", claims.nbf), ("iat", claims.iat)] {
            if let Some(at) = at
                && i128::from(at.0) > now + leeway
            {
                return Err(Error::NotYetValid { claim, at: at.0 });
            }
        }
        if let Some(issuer) = &self.options.issuer {
            match &claims.iss {
                Some(iss) if iss == issuer => {}
                Some(_) => return Err(Error::InvalidIssuer),
                None => return Err(Error::MissingClaim("iss")),
            }
        }
        match (&claims.aud, self.options.audiences.is_empty()) {
            (None, true) => {}
            (None, false) => return Err(Error::MissingClaim("aud")),
            (Some(aud), true) if aud.is_empty() => {}
            (Some(_), true) => return Err(Error::InvalidAudience),
            (Some(aud), false) if aud.contains_any(&self.options.audiences) => {}
            (Some(_), false) => return Err(Error::InvalidAudience),
        }
        Ok(claims.iat.map(|iat| iat.0))
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("options", &self.options)
            .field("generation", &self.keyring.generation())
            .finish_non_exhaustive()
    }
}

/// `payload` if the verifier would take its form: a JSON object whose
/// registered claims have their types (found by the fuzz target `jwt_token`:
/// `{"iss": 0}` signed, then failed its own verification).
fn signable(payload: Vec<u8>) -> Result<Vec<u8>, Error> {
    if payload.first() != Some(&b'{') {
        return Err(Error::Serialize("not an object".to_owned()));
    }
    if let Err(e) = serde_json::from_slice::<Registered<'_>>(&payload) {
        return Err(Error::Serialize(format!(
            "a registered claim has the wrong type ({e}); exp, nbf and iat are numbers, iss a string, aud a string or a list of strings"
        )));
    }
    Ok(payload)
}
