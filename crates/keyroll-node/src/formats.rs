//! Django-format, native, Fernet and JWT signers over a ring, the Rust
//! implementations doing the work. Each is built once over its ring's
//! keyring (they derive their keys once per key-set generation) and
//! refuses once the ring is closed.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyroll::django::json::JsonText;
use keyroll::django::{self as django, Algorithm};
use keyroll::fernet::{Derive, Encrypter};
use keyroll::options::duration_of_seconds;
use keyroll::raw::kit::Rejection;
use keyroll::{Role, VerifiedBy, jwt};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use serde_json::value::RawValue;

use crate::errors::{Code, Result, closed, error};
use crate::ring::Hold;

/// A refused token as the class JavaScript throws: every format's errors
/// name their kind of refusal in the core's words ([`Rejection`]).
fn refused(rejection: Option<Rejection>, message: String, bad: Code) -> napi::Error<Code> {
    let code = match rejection {
        Some(Rejection::Expired) => Code::SignatureExpired,
        Some(Rejection::Stale) => Code::FailedClosed,
        Some(_) => bad,
        None => Code::Config,
    };
    error(code, message)
}

/// `seconds` (a `maxAge`, `ttl` or `leeway`) as a [`Duration`]; negative,
/// NaN, infinite or absurdly large values are a `config` error naming it.
fn seconds(name: &str, value: Option<f64>) -> Result<Option<Duration>> {
    value
        .map(|value| {
            duration_of_seconds(value).map_err(|problem| error(Code::Config, format!("{name} {problem}")))
        })
        .transpose()
}

/// A verified value with the key that verified it.
#[napi(object)]
pub struct Verified {
    /// What was signed: text, or JSON text for objects and claims.
    pub value: String,
    /// The store's id of the key that verified.
    pub key_id: String,
    /// `current`, `pending` or `fallback`.
    pub role: String,
    /// True when a key other than the current one verified: sign again.
    pub needs_resign: bool,
    /// When it was signed (Unix seconds), for timestamped tokens.
    pub timestamp: Option<f64>,
}

impl Verified {
    fn new(value: String, key: VerifiedBy, timestamp: Option<SystemTime>) -> Self {
        Self {
            value,
            key_id: key.id.to_string(),
            role: key.role.to_string(),
            needs_resign: key.role != Role::Current,
            timestamp: timestamp
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                .map(|at| at.as_secs_f64()),
        }
    }
}

enum DjangoKind {
    Plain(django::Signer),
    Timestamp(django::TimestampSigner),
}

/// Django's `Signer` / `TimestampSigner`: the same tokens, every verifying
/// key tried.
#[napi]
pub struct DjangoSigner {
    hold: Arc<Hold>,
    signer: DjangoKind,
}

fn django_error(e: django::Error) -> napi::Error<Code> {
    refused(e.rejection(), e.to_string(), Code::BadSignature)
}

impl DjangoSigner {
    pub(crate) fn new(
        hold: Arc<Hold>,
        salt: Option<String>,
        timestamp: bool,
        separator: String,
        algorithm: &str,
    ) -> Result<Self> {
        let algorithm = Algorithm::from_str(algorithm).map_err(|e| error(Code::Config, e.to_string()))?;
        let keyring = hold.engine()?.keyring.clone();
        let config = |e: django::ConfigError| error(Code::Config, e.to_string());
        macro_rules! configure {
            ($builder:expr) => {{
                let mut builder = $builder.separator(separator).algorithm(algorithm);
                if let Some(salt) = salt {
                    builder = builder.salt(salt);
                }
                builder.build().map_err(config)?
            }};
        }
        let signer = if timestamp {
            DjangoKind::Timestamp(configure!(django::TimestampSigner::builder(keyring)))
        } else {
            DjangoKind::Plain(configure!(django::Signer::builder(keyring)))
        };
        Ok(Self { hold, signer })
    }

    fn max_age(&self, max_age: Option<f64>) -> Result<Option<Duration>> {
        let max_age = seconds("maxAge", max_age)?;
        if max_age.is_some() && matches!(self.signer, DjangoKind::Plain(_)) {
            return Err(error(
                Code::Config,
                "maxAge needs a timestamped signer: djangoSigner({ timestamp: true })",
            ));
        }
        Ok(max_age)
    }
}

#[napi]
impl DjangoSigner {
    /// `value:signature` (`value:timestamp:signature`) with the current key.
    #[napi]
    pub fn sign(&self, value: String) -> Result<String> {
        self.hold.check_serving()?;
        match &self.signer {
            DjangoKind::Plain(signer) => signer.sign(&value),
            DjangoKind::Timestamp(signer) => signer.sign(&value),
        }
        .map_err(closed)
    }

    /// The signed value and the key that verified it.
    #[napi]
    pub fn verify(&self, token: String, max_age: Option<f64>) -> Result<Verified> {
        let max_age = self.max_age(max_age)?;
        self.hold.check_serving()?;
        let verified = match &self.signer {
            DjangoKind::Plain(signer) => signer.verify(&token),
            DjangoKind::Timestamp(signer) => signer.verify(&token, max_age),
        }
        .map_err(django_error)?;
        Ok(Verified::new(
            verified.value.to_owned(),
            verified.key,
            verified.timestamp,
        ))
    }

    /// Django's `signing.dumps` of `json` (JSON text as Django writes it:
    /// compact, ASCII).
    #[napi]
    pub fn sign_object(&self, json: String, compress: bool) -> Result<String> {
        self.hold.check_serving()?;
        match &self.signer {
            DjangoKind::Plain(signer) => signer.sign_object(&JsonText(&json), compress),
            DjangoKind::Timestamp(signer) => signer.sign_object(&JsonText(&json), compress),
        }
        .map_err(django_error)
    }

    /// Django's `signing.loads`: the JSON text signed.
    #[napi]
    pub fn verify_object(&self, token: String, max_age: Option<f64>) -> Result<Verified> {
        let max_age = self.max_age(max_age)?;
        self.hold.check_serving()?;
        let verified = match &self.signer {
            DjangoKind::Plain(signer) => signer.verify_object::<Box<RawValue>>(&token),
            DjangoKind::Timestamp(signer) => signer.verify_object::<Box<RawValue>>(&token, max_age),
        }
        .map_err(django_error)?;
        Ok(Verified::new(
            verified.value.get().to_owned(),
            verified.key,
            verified.timestamp,
        ))
    }
}

/// keyroll's native signer: the token names its key, one HMAC per verify.
#[napi]
pub struct NativeSigner {
    hold: Arc<Hold>,
    signer: keyroll::Signer,
}

impl NativeSigner {
    pub(crate) fn new(hold: Arc<Hold>, salt: String, timestamp: bool, max_age: Option<f64>) -> Result<Self> {
        let max_age = seconds("maxAge", max_age)?;
        let mut signer = keyroll::Signer::new(hold.engine()?.keyring.clone()).with_salt(salt);
        if timestamp || max_age.is_some() {
            signer = signer.with_timestamps();
        }
        if let Some(max_age) = max_age {
            signer = signer.with_max_age(max_age);
        }
        Ok(Self { hold, signer })
    }
}

#[napi]
impl NativeSigner {
    /// A token for `value` with the current key.
    #[napi]
    pub fn sign(&self, value: String) -> Result<String> {
        self.hold.check_serving()?;
        self.signer.sign(&value).map_err(closed)
    }

    /// The signed value and the key that verified it.
    #[napi]
    pub fn verify(&self, token: String) -> Result<Verified> {
        self.hold.check_serving()?;
        let verified = self
            .signer
            .verify(&token)
            .map_err(|e| refused(Some(e.rejection()), e.to_string(), Code::BadSignature))?;
        Ok(Verified::new(verified.value, verified.key, verified.timestamp))
    }
}

/// `MultiFernet` over the ring: encrypt with the current key, decrypt with
/// any verifying key.
#[napi]
pub struct Fernet {
    hold: Arc<Hold>,
    encrypter: Encrypter,
}

impl Fernet {
    pub(crate) fn new(hold: Arc<Hold>, derive: &str) -> Result<Self> {
        let derive = Derive::from_str(derive).map_err(|e| error(Code::Config, e.to_string()))?;
        let encrypter = Encrypter::new(hold.engine()?.keyring.clone(), derive)
            .map_err(|e| error(Code::Keys, e.to_string()))?;
        Ok(Self { hold, encrypter })
    }
}

fn fernet_error(e: keyroll::fernet::DecryptError) -> napi::Error<Code> {
    refused(e.rejection(), e.to_string(), Code::InvalidToken)
}

#[napi]
impl Fernet {
    /// A Fernet token of `data` with the current key.
    #[napi]
    pub fn encrypt(&self, data: Buffer) -> Result<String> {
        self.hold.check_serving()?;
        self.encrypter
            .encrypt(&data[..])
            .map_err(|e| error(Code::Keys, e.to_string()))
    }

    /// The plaintext; `ttl` in seconds.
    #[napi]
    pub fn decrypt(&self, token: String, ttl: Option<f64>) -> Result<Buffer> {
        let ttl = seconds("ttl", ttl)?;
        self.hold.check_serving()?;
        let decrypted = self.encrypter.decrypt(&token, ttl).map_err(fernet_error)?;
        Ok(decrypted.value.into())
    }

    /// `token` encrypted again with the current key, its timestamp kept.
    #[napi]
    pub fn rotate(&self, token: String) -> Result<String> {
        self.hold.check_serving()?;
        self.encrypter.rotate(&token).map_err(fernet_error)
    }
}

/// keyroll's JWT signer: HS256 with the current key, `kid` its id; a verify
/// takes the key the `kid` names.
#[napi]
pub struct JwtSigner {
    hold: Arc<Hold>,
    signer: jwt::Signer,
}

fn jwt_error(e: jwt::Error) -> napi::Error<Code> {
    refused(e.rejection(), e.to_string(), Code::BadSignature)
}

impl JwtSigner {
    pub(crate) fn new(
        hold: Arc<Hold>,
        issuer: Option<String>,
        audience: Option<String>,
        leeway: Option<f64>,
    ) -> Result<Self> {
        let mut builder = jwt::Signer::builder(hold.engine()?.keyring.clone());
        if let Some(issuer) = issuer {
            builder = builder.issuer(issuer);
        }
        if let Some(audience) = audience {
            builder = builder.audience(audience);
        }
        if let Some(leeway) = seconds("leeway", leeway)? {
            builder = builder.leeway(leeway);
        }
        Ok(Self {
            hold,
            signer: builder.build(),
        })
    }
}

#[napi]
impl JwtSigner {
    /// A JWT of the claims `json` (JSON text of an object); with `ttl`
    /// (seconds), `iat` and `exp` are set.
    #[napi]
    pub fn sign(&self, json: String, ttl: Option<f64>) -> Result<String> {
        let ttl = seconds("ttl", ttl)?;
        self.hold.check_serving()?;
        let claims: Box<RawValue> = serde_json::from_str(&json)
            .map_err(|e| error(Code::Config, format!("the claims are not JSON: {e}")))?;
        match ttl {
            Some(ttl) => self.signer.sign_with_ttl(&claims, ttl),
            None => self.signer.sign(&claims),
        }
        .map_err(jwt_error)
    }

    /// The claims (JSON text) and the key that verified them.
    #[napi]
    pub fn verify(&self, token: String) -> Result<Verified> {
        self.hold.check_serving()?;
        let verified = self.signer.verify::<Box<RawValue>>(&token).map_err(jwt_error)?;
        Ok(Verified::new(
            verified.value.get().to_owned(),
            verified.key,
            verified.timestamp,
        ))
    }
}
