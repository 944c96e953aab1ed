//! Interop with real Flask 3.1.3 (its own `SecureCookieSessionInterface`,
//! from the test venv), both ways and with rotation: at the same frozen time
//! both make the same bytes, each opens the other's cookies, cookies of a
//! fallback key open here and ask for a new cookie, cookies of a retired key
//! are refused by both.

mod common;

use common::{CURRENT, NEWER, OLDER, RETIRED, T, at, at_t, only, rotated};
use keyroll_core::Role;
use keyroll_flask::{Error, SecureCookieSessions, Value};
use keyroll_testkit::python::run_peer;
use serde_json::{Value as Json, json};

const PEER: &str = include_str!("flask_peer.py");

/// Runs `ops` in Flask; `None` when the venv is missing (outside CI).
fn flask(ops: &[Json]) -> Option<Vec<Json>> {
    run_peer(&["flask"], PEER, ops)
}

fn ok(result: &Json) -> &str {
    result
        .get("ok")
        .and_then(Json::as_str)
        .unwrap_or_else(|| panic!("Flask raised: {result}"))
}

/// Flask after the rotation: `SECRET_KEY` and the fallbacks oldest first,
/// the order Flask >= 3.1.1 tries last to first.
fn rotated_flask(op: Json) -> Json {
    with_keys(op, CURRENT, &[OLDER, NEWER])
}

fn with_keys(mut op: Json, secret_key: &str, fallbacks: &[&str]) -> Json {
    op["secret_key"] = json!(secret_key);
    op["fallbacks"] = json!(fallbacks);
    op
}

/// Sessions with every tag Flask writes, text that needs escaping, floats,
/// nesting, a dict that needs the ` di` escape, and one large enough to be
/// compressed.
fn sessions() -> Vec<&'static str> {
    vec![
        r#"{}"#,
        r#"{"_fresh":true,"_permanent":false,"csrf_token":"6f1c0a8e","user_id":42}"#,
        r#"{"_flashes":{" t":[{" t":["message","Welcome back, Zo\u00eb \ud83d\ude00 \"quoted\" <b>"]}]}}"#,
        r#"{"blob":{" b":"AP+AAQ=="},"html":{" m":"<em>safe</em>"},"id":{" u":"12345678123456781234567812345678"}}"#,
        r#"{"at":{" d":"Tue, 14 Nov 2023 22:13:20 GMT"},"born":{" d":"Sat, 01 Jan 2005 00:00:00 GMT"}}"#,
        r#"{"deep":[[{"a":[{}]}]],"f":[0.1,1e+16,1e-05,2.0,-0.0,1.7976931348623157e+308],"n":null}"#,
        r#"{"escaped":{" di":{" t__":[1,2]}},"nested":{"x":{" di":{" b__":"not bytes"}}}}"#,
        r#"{" di":{" u__":"a"}}"#,
        r#"{"cart":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}"#,
    ]
}

#[test]
fn same_bytes_as_flask_at_the_same_time_and_each_opens_the_others_cookies() {
    let sessions = sessions();
    let mut ops: Vec<Json> = sessions
        .iter()
        .map(|tagged| rotated_flask(json!({"op": "save", "tagged": tagged, "time": T})))
        .collect();
    let ours = SecureCookieSessions::builder(rotated()).clock(at_t).build();
    let mut cookies = Vec::new();
    for tagged in &sessions {
        let value = Value::from_tagged_json(tagged).unwrap();
        assert_eq!(
            value.to_tagged_json().unwrap(),
            *tagged,
            "tagged JSON is Flask's, sorted"
        );
        cookies.push(ours.save(&value).unwrap());
    }
    // Flask opens ours (at a real time: its own max_age check applies).
    let now = SecureCookieSessions::new(rotated());
    for tagged in &sessions {
        let cookie = now.save(&Value::from_tagged_json(tagged).unwrap()).unwrap();
        ops.push(rotated_flask(json!({"op": "open", "cookie": cookie})));
    }
    let Some(results) = flask(&ops) else {
        return;
    };
    let (saved, opened) = results.split_at(sessions.len());
    for (((tagged, flask_cookie), own), flask_opened) in sessions.iter().zip(saved).zip(&cookies).zip(opened)
    {
        if *tagged == "{}" {
            // Flask deletes the cookie of an empty session, and reads none back;
            // the value itself still round-trips.
            assert_eq!((ok(flask_cookie), ok(flask_opened)), ("", ""));
            assert_eq!(ours.load(own).unwrap().value, Value::dict::<String>([]));
            continue;
        }
        assert_eq!(ok(flask_cookie), own, "{tagged}");
        assert_eq!(ok(flask_opened), *tagged);
        let loaded = ours.load(ok(flask_cookie)).unwrap();
        assert_eq!(loaded.value.to_tagged_json().unwrap(), *tagged);
        assert_eq!((&*loaded.key.id, loaded.timestamp), ("current", Some(at_t())));
    }
    assert!(
        cookies.last().unwrap().starts_with('.'),
        "the large session is compressed"
    );
}

#[test]
fn rotation_fallback_cookies_open_and_ask_for_a_new_cookie_retired_ones_do_not() {
    let tagged = r#"{"user_id":7}"#;
    let ops = vec![
        // Replicas that still sign with an old key.
        with_keys(json!({"op": "save", "tagged": tagged}), NEWER, &[]),
        with_keys(json!({"op": "save", "tagged": tagged}), OLDER, &[]),
        with_keys(json!({"op": "save", "tagged": tagged}), RETIRED, &[]),
        // Flask 3.1.0 signed with the last fallback; 3.1.1+ with SECRET_KEY.
        rotated_flask(json!({"op": "save", "tagged": tagged})),
    ];
    let Some(results) = flask(&ops) else {
        return;
    };
    let ours = SecureCookieSessions::new(rotated());
    let newer = ours.load(ok(&results[0])).unwrap();
    assert_eq!(
        (&*newer.key.id, newer.key.role),
        ("newer-fallback", Role::Fallback)
    );
    assert!(newer.needs_resign());
    assert_eq!(newer.value.to_tagged_json().unwrap(), tagged);
    let older = ours.load(ok(&results[1])).unwrap();
    assert_eq!((&*older.key.id, older.needs_resign()), ("older-fallback", true));
    assert_eq!(ours.load(ok(&results[2])).unwrap_err(), Error::BadSignature);
    let current = ours.load(ok(&results[3])).unwrap();
    assert_eq!((&*current.key.id, current.needs_resign()), ("current", false));

    // The other way: cookies each old replica signs here open in a rotated Flask;
    // the retired key's cookie gives an empty session there too.
    let value = Value::from_tagged_json(tagged).unwrap();
    let mut ops = Vec::new();
    for (id, key) in [
        ("newer", NEWER),
        ("older", OLDER),
        ("current", CURRENT),
        ("retired", RETIRED),
    ] {
        let cookie = SecureCookieSessions::new(only(id, key)).save(&value).unwrap();
        ops.push(rotated_flask(json!({"op": "open", "cookie": cookie})));
        ops.push(rotated_flask(json!({"op": "loads", "cookie": cookie})));
    }
    let results = flask(&ops).unwrap();
    for result in results[..6].iter().step_by(2) {
        assert_eq!(ok(result), tagged);
    }
    assert_eq!(ok(&results[6]), "");
    // itsdangerous' BadTimeSignature, a BadSignature.
    assert_eq!(results[7]["error"], "BadTimeSignature");
}

#[test]
fn expiry_and_future_timestamps_match_flask() {
    let tagged = r#"{"user_id":7}"#;
    let day = 24 * 60 * 60;
    let ops = vec![
        rotated_flask(json!({"op": "save", "tagged": tagged, "time": T - 32 * day})),
        rotated_flask(json!({"op": "save", "tagged": tagged, "time": T - 30 * day})),
    ];
    let Some(results) = flask(&ops) else {
        return;
    };
    let ours = SecureCookieSessions::builder(rotated()).clock(at_t).build();
    assert!(ours.load(ok(&results[0])).unwrap_err().is_expired());
    assert_eq!(
        ours.load(ok(&results[1])).unwrap().timestamp,
        Some(at(T - 30 * day))
    );

    // Flask refuses what is older than its lifetime, or from the future.
    let old = SecureCookieSessions::builder(rotated())
        .clock(|| at(T - 32 * 24 * 60 * 60))
        .build();
    let ahead = SecureCookieSessions::builder(rotated())
        .clock(|| at(T + 10))
        .build();
    let value = Value::from_tagged_json(tagged).unwrap();
    let ops = vec![
        rotated_flask(json!({"op": "loads", "cookie": old.save(&value).unwrap(), "time": T})),
        rotated_flask(json!({"op": "loads", "cookie": ahead.save(&value).unwrap(), "time": T})),
    ];
    let results = flask(&ops).unwrap();
    assert_eq!(results[0]["error"], "SignatureExpired");
    assert_eq!(results[1]["error"], "SignatureExpired");
    assert!(results[1]["message"].as_str().unwrap().contains("< 0"));
    assert_eq!(
        ours.load(&ahead.save(&value).unwrap()).unwrap_err(),
        Error::FromTheFuture {
            ahead: std::time::Duration::from_secs(10)
        }
    );
}
