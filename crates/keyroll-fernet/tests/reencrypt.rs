//! Streaming bulk re-encryption: every line is written, and counted.

mod common;

use std::io::{self, Write};
use std::time::{Duration, Instant, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use common::rotated_set;
use keyroll_core::{KeyMaterial, KeySet, Keyring, Role};
use keyroll_fernet::{DecryptError, Derive, Encrypter, ReencryptCounts, ReencryptError, generate_key};

fn only(id: &str, key: &KeyMaterial) -> Encrypter {
    Encrypter::new(
        Keyring::new(KeySet::single(id, key.clone()).unwrap()),
        Derive::Raw,
    )
    .unwrap()
}

fn tampered(token: &str) -> String {
    let mut bytes = URL_SAFE.decode(token).unwrap();
    bytes[30] ^= 1;
    URL_SAFE.encode(bytes)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Old,
    Current,
    Garbage,
}

#[test]
fn bulk_reencryption_of_100_000_tokens_counts_and_keeps_every_line() {
    const LINES: usize = 100_000;
    let (k1, k2, stranger) = (generate_key(), generate_key(), generate_key());
    let (old, current, unknown) = (only("v1", &k1), only("v2", &k2), only("x", &stranger));
    let encrypter = Encrypter::new(Keyring::new(rotated_set(&k2, &k1)), Derive::Raw).unwrap();

    let mut input: Vec<u8> = Vec::with_capacity(LINES * 110);
    let mut kinds = Vec::with_capacity(LINES);
    for i in 0..LINES {
        let plaintext = format!("row-{i}");
        let (kind, line): (Kind, Vec<u8>) = match i % 20 {
            0..=8 => (Kind::Old, old.encrypt(&plaintext).unwrap().into_bytes()),
            9..=15 => (Kind::Current, current.encrypt(&plaintext).unwrap().into_bytes()),
            16 => (
                Kind::Garbage,
                tampered(&old.encrypt(&plaintext).unwrap()).into_bytes(),
            ),
            17 => (Kind::Garbage, unknown.encrypt(&plaintext).unwrap().into_bytes()),
            18 => (
                Kind::Garbage,
                format!("plaintext that was never encrypted {i}").into_bytes(),
            ),
            _ => (Kind::Garbage, vec![0xff, 0xfe, b'g', b'A', 0x80, b'=']),
        };
        input.extend_from_slice(&line);
        input.push(b'\n');
        kinds.push(kind);
    }

    let mut progress_calls = 0u64;
    let mut last_progress = ReencryptCounts::default();
    let mut output = Vec::with_capacity(input.len());
    let started = Instant::now();
    let counts = encrypter
        .reencrypt(input.as_slice(), &mut output, |counts| {
            progress_calls += 1;
            assert!(counts.lines() == progress_calls && counts.bytes_read > last_progress.bytes_read);
            last_progress = *counts;
        })
        .unwrap();
    eprintln!(
        "re-encrypted {LINES} lines in {:?}: {counts:?}",
        started.elapsed()
    );

    assert_eq!(
        (
            counts.reencrypted,
            counts.already_current,
            counts.undecryptable,
            counts.blank
        ),
        (45_000, 35_000, 20_000, 0)
    );
    assert_eq!(counts.bytes_read, input.len() as u64);
    assert_eq!((progress_calls, last_progress), (LINES as u64, counts));

    let input_lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let output_lines: Vec<&[u8]> = output.split(|&b| b == b'\n').collect();
    assert_eq!(output_lines.len(), input_lines.len(), "no line dropped or added");
    for (i, kind) in kinds.iter().enumerate() {
        let (before, after) = (input_lines[i], output_lines[i]);
        match kind {
            Kind::Garbage | Kind::Current => assert_eq!(before, after, "line {i} ({kind:?}) passes through"),
            Kind::Old => {
                let (before, after) = (
                    std::str::from_utf8(before).unwrap(),
                    std::str::from_utf8(after).unwrap(),
                );
                let original = encrypter.decrypt(before, None).unwrap();
                let fresh = encrypter.decrypt(after, None).unwrap();
                assert_eq!(fresh.value, format!("row-{i}").as_bytes());
                assert_eq!((&*fresh.key.id, fresh.key.role), ("v2", Role::Current));
                assert_eq!(
                    fresh.timestamp, original.timestamp,
                    "line {i} keeps its timestamp"
                );
            }
        }
    }

    // A second pass has nothing left to do.
    let mut second = Vec::new();
    let again = encrypter
        .reencrypt(output.as_slice(), &mut second, |_| {})
        .unwrap();
    assert_eq!(
        (again.reencrypted, again.already_current, again.undecryptable),
        (0, 80_000, 20_000)
    );
    assert_eq!(second, output);
}

#[test]
fn line_endings_surrounding_whitespace_and_blank_lines_are_kept() {
    let (k1, k2) = (generate_key(), generate_key());
    let old = only("v1", &k1);
    let encrypter = Encrypter::new(Keyring::new(rotated_set(&k2, &k1)), Derive::Raw).unwrap();
    let (a, b, c) = (
        old.encrypt("a").unwrap(),
        old.encrypt("b").unwrap(),
        old.encrypt("c").unwrap(),
    );
    let input = format!("{a}\r\n\n   \r\n\t {b}  \n{c}");
    let mut output = Vec::new();
    let counts = encrypter
        .reencrypt(input.as_bytes(), &mut output, |_| {})
        .unwrap();
    assert_eq!((counts.reencrypted, counts.blank, counts.lines()), (3, 2, 5));
    let output = String::from_utf8(output).unwrap();
    let lines: Vec<&str> = output.split('\n').collect();
    assert_eq!(lines.len(), 5, "{output:?}");
    assert!(lines[0].ends_with('\r') && !lines[0].starts_with(&a[..]));
    assert_eq!((lines[1], lines[2]), ("", "   \r"));
    assert!(lines[3].starts_with("\t ") && lines[3].ends_with("  "));
    assert!(
        !output.ends_with('\n'),
        "the last line had no newline and still has none"
    );
    for (line, plaintext) in [(lines[0], "a"), (lines[3], "b"), (lines[4], "c")] {
        let decrypted = encrypter.decrypt(line, None).unwrap();
        assert_eq!(
            (decrypted.value.as_slice(), &*decrypted.key.id),
            (plaintext.as_bytes(), "v2")
        );
    }
}

#[test]
fn a_key_set_whose_signing_key_is_not_fernet_stops_before_writing() {
    let k1 = generate_key();
    let keyring = Keyring::new(KeySet::single("v1", k1.clone()).unwrap());
    let encrypter = Encrypter::new(keyring.clone(), Derive::Raw).unwrap();
    let token = encrypter.encrypt("x").unwrap();
    keyring.install(rotated_set(
        &KeyMaterial::from("a long secret that is not a Fernet key!"),
        &k1,
    ));
    let mut output = Vec::new();
    let error = encrypter
        .reencrypt(format!("{token}\n").as_bytes(), &mut output, |_| {})
        .unwrap_err();
    assert!(matches!(error, ReencryptError::Key { counts, .. } if counts.lines() == 0));
    assert!(error.to_string().contains("--derive hkdf"), "{error}");
    assert!(output.is_empty());
}

/// A writer that accepts `capacity` bytes, then fails.
struct FailingWriter {
    capacity: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.capacity == 0 {
            return Err(io::Error::other("disk full"));
        }
        let n = buf.len().min(self.capacity);
        self.capacity -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_write_failure_is_reported_with_the_counts_so_far() {
    let key = generate_key();
    let encrypter = only("v1", &key);
    let input: String = (0..2000)
        .map(|i| encrypter.encrypt(i.to_string()).unwrap() + "\n")
        .collect();
    let error = encrypter
        .reencrypt(input.as_bytes(), FailingWriter { capacity: 1000 }, |_| {})
        .unwrap_err();
    match error {
        ReencryptError::Io { source, counts } => {
            assert_eq!(source.to_string(), "disk full");
            assert!(counts.lines() > 0 && counts.lines() < 2000, "{counts:?}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn undecryptable_lines_include_expired_looking_and_malformed_tokens() {
    // No TTL applies to re-encryption: an ancient token is rotated, not dropped.
    let (k1, k2) = (generate_key(), generate_key());
    let ancient = only("v1", &k1).with_clock(|| UNIX_EPOCH + Duration::from_secs(1_000));
    let token = ancient.encrypt("from 1970").unwrap();
    let encrypter = Encrypter::new(Keyring::new(rotated_set(&k2, &k1)), Derive::Raw).unwrap();
    let mut output = Vec::new();
    let input = format!("{token}\ngAAAAAAA\n");
    let counts = encrypter
        .reencrypt(input.as_bytes(), &mut output, |_| {})
        .unwrap();
    assert_eq!((counts.reencrypted, counts.undecryptable), (1, 1));
    let output = String::from_utf8(output).unwrap();
    let (first, second) = output.split_once('\n').unwrap();
    assert_eq!(second, "gAAAAAAA\n");
    let decrypted = encrypter.decrypt(first, None).unwrap();
    assert_eq!(decrypted.timestamp, Some(UNIX_EPOCH + Duration::from_secs(1_000)));
    assert_eq!(
        encrypter.decrypt("gAAAAAAA", None),
        Err(DecryptError::Malformed("too short"))
    );
}
