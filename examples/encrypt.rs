//! Encryption at rest with a rotating key: encrypt a column of credentials,
//! rotate the key live, read old rows, then re-encrypt the whole column.
//!
//! Run with `cargo run --example encrypt`. In a service the
//! keyring comes from a `Refresher` over any provider (`keyroll::open(uri)`);
//! here it is built by hand so the example needs no key store.

use std::time::{Duration, SystemTime};

use keyroll::fernet::{Derive, Encrypter, generate_key};
use keyroll::{KeyEntry, KeySet, Keyring};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Fernet keys, as Python's `Fernet.generate_key()` makes them. With
    // `Derive::Hkdf` any secret works instead (django-fernet-fields' derivation).
    let first = generate_key();
    let keyring = Keyring::new(KeySet::single("2024-01", first.clone()).unwrap());
    let encrypter = Encrypter::new(keyring.clone(), Derive::Raw)?;

    let column: Vec<String> = ["smtp-password", "stripe-api-key", "s3-secret"]
        .iter()
        .map(|secret| encrypter.encrypt(secret))
        .collect::<Result<_, _>>()?;
    println!("stored {} tokens, e.g. {}…", column.len(), &column[0][..24]);

    // Rotation: a new key signs from now on, the old one keeps decrypting for a day.
    let now = SystemTime::now();
    keyring.install(KeySet::new(
        vec![
            KeyEntry::new("2024-02", generate_key(), Some(now), None, None),
            KeyEntry::new(
                "2024-01",
                first,
                Some(SystemTime::UNIX_EPOCH),
                Some(now),
                Some(now + Duration::from_secs(86_400)),
            ),
        ],
        now,
    )?);

    // Reading an old row says which key decrypted it; rotate it on read if you like.
    let read = encrypter.decrypt(&column[0], Some(Duration::from_secs(3600)))?;
    println!(
        "decrypted {:?} with key {} ({}); needs rotation: {}",
        String::from_utf8_lossy(&read.value),
        read.key.id,
        read.key.role,
        read.needs_resign()
    );

    // Or re-encrypt the whole column in one streaming pass (`keyroll reencrypt`).
    let mut input = column.join("\n");
    input.push_str("\nnot-a-token\n");
    let mut output = Vec::new();
    let counts = encrypter.reencrypt(input.as_bytes(), &mut output, |_| {})?;
    println!(
        "re-encrypted {}, already current {}, undecryptable {} (kept as is)",
        counts.reencrypted, counts.already_current, counts.undecryptable
    );
    for line in String::from_utf8(output)?.lines().take(3) {
        let row = encrypter.decrypt(line, None)?;
        assert!(!row.needs_resign());
        println!("  {} -> key {}", String::from_utf8_lossy(&row.value), row.key.id);
    }
    Ok(())
}
