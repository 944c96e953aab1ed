//! Inputs the `django_object` fuzz target (fuzz/) found, kept as specifications.

use keyroll_core::{KeyMaterial, KeySet, Keyring};
use keyroll_django::TimestampSigner;
use serde_json::{Value, json};

fn signer() -> TimestampSigner {
    TimestampSigner::for_dumps(Keyring::new(
        KeySet::single(
            "v1",
            KeyMaterial::from("a sufficiently long secret key, 32+ bytes"),
        )
        .unwrap(),
    ))
}

#[test]
fn floats_survive_a_signed_object_round_trip_bit_for_bit() {
    // serde_json's default float parser may be one ULP off (it read this one
    // back as 1.1111111111111113e23); Python's json.loads is correctly rounded.
    for float in [
        1.1111111111111111e23_f64,
        2.2250738585072014e-308,
        9007199254740993.0,
        0.1,
    ] {
        let value = json!({ "f": float, "list": [float, -float] });
        for compress in [false, true] {
            let token = signer().sign_object(&value, compress).unwrap();
            let back: Value = signer().verify_object(&token, None).unwrap().value;
            assert_eq!(back, value, "{float:e} (compress: {compress})");
            assert_eq!(back["f"].as_f64().unwrap().to_bits(), float.to_bits());
        }
    }
}
