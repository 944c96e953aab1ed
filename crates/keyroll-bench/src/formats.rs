//! `--micro`'s JWT and Flask lines: each format's verify with one key, and
//! with a fallback key (the current key tried first), interleaved.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring};

use keyroll_flask::{SecureCookieSessions, Value};
use keyroll_jwt::Signer as JwtSigner;
use serde::Deserialize;

use crate::django::{keyring, keys};
use crate::measure::{Case, Effort, Timing, interleaved};

/// The claims a JWT verify decodes.
#[derive(Deserialize)]
struct Claims {
    #[allow(dead_code)]
    sub: String,
}

/// Verify costs in ns per call: JWT (`kid` names the key) and Flask
/// (every key tried in order), each with the current key and with the
/// second of two keys.
pub struct FormatTimings {
    pub jwt_current: Timing,
    pub jwt_fallback: Timing,
    pub flask_current: Timing,
    pub flask_fallback: Timing,
}

pub fn micro(effort: Effort) -> FormatTimings {
    let all = keys(2);
    let one = keyring(&all[..1]);
    let two = keyring(&all);
    // A token of the old key ("k1"): signed while it alone was in the set.
    let old_only = Keyring::new(
        KeySet::new(
            vec![KeyEntry::new(
                "k1",
                KeyMaterial::from(all[1].as_str()),
                Some(UNIX_EPOCH),
                None,
                None,
            )],
            SystemTime::now(),
        )
        .expect("one key signs"),
    );
    let claims = serde_json::json!({"sub": "42"});
    let ttl = Duration::from_secs(3600);
    let jwt = JwtSigner::new(one);
    let jwt_token = jwt.sign_with_ttl(&claims, ttl).unwrap();
    let jwt_two = JwtSigner::new(two.clone());
    let jwt_old = JwtSigner::new(old_only.clone())
        .sign_with_ttl(&claims, ttl)
        .unwrap();
    let session = Value::dict([("user_id", Value::from(42))]);
    let flask = SecureCookieSessions::new(keyring(&all[..1]));
    let cookie = flask.save(&session).unwrap();
    let flask_two = SecureCookieSessions::new(two);
    let old_cookie = SecureCookieSessions::new(old_only).save(&session).unwrap();
    let mut cases: Vec<Case<'_>> = vec![
        ("jwt", Box::new(|| jwt.verify::<Claims>(&jwt_token).is_ok())),
        (
            "jwt fallback",
            Box::new(|| jwt_two.verify::<Claims>(&jwt_old).is_ok()),
        ),
        ("flask", Box::new(|| flask.load(&cookie).is_ok())),
        ("flask fallback", Box::new(|| flask_two.load(&old_cookie).is_ok())),
    ];
    let t = interleaved(&mut cases, effort);
    FormatTimings {
        jwt_current: t[0].clone(),
        jwt_fallback: t[1].clone(),
        flask_current: t[2].clone(),
        flask_fallback: t[3].clone(),
    }
}
