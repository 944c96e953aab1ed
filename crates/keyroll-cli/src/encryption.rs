//! `keyroll encrypt`, `decrypt` and `reencrypt`: Fernet tokens with the keys
//! of a source (MultiFernet semantics over the key set).

use std::io::{BufReader, IsTerminal, Read, Write};
use std::time::Duration;

use keyroll::Keyring;
use keyroll::fernet::{Derive, Encrypter, ReencryptCounts, ReencryptError};

use crate::{Failure, Source, load};

/// Reads VALUE from the argument, or all of stdin without one trailing newline.
fn argument_or_stdin(value: Option<String>) -> Result<Vec<u8>, Failure> {
    if let Some(value) = value {
        return Ok(value.into_bytes());
    }
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| Failure::Error(format!("cannot read standard input: {e}")))?;
    if input.ends_with(b"\n") {
        input.pop();
        if input.ends_with(b"\r") {
            input.pop();
        }
    }
    Ok(input)
}

async fn encrypter(source: &Source, derive: Derive) -> Result<Encrypter, Failure> {
    Encrypter::new(Keyring::new(load(source).await?), derive).map_err(|e| Failure::Error(e.to_string()))
}

pub(crate) async fn encrypt(source: &Source, derive: Derive, value: Option<String>) -> Result<(), Failure> {
    let plaintext = argument_or_stdin(value)?;
    let token = encrypter(source, derive)
        .await?
        .encrypt(&plaintext)
        .map_err(|e| Failure::Error(e.to_string()))?;
    println!("{token}");
    Ok(())
}

pub(crate) async fn decrypt(
    source: &Source,
    derive: Derive,
    ttl: Option<u64>,
    token: Option<String>,
) -> Result<(), Failure> {
    let token = String::from_utf8(argument_or_stdin(token)?)
        .map_err(|_| Failure::Rejected("malformed Fernet token: not UTF-8".into()))?;
    let decrypted = encrypter(source, derive)
        .await?
        .decrypt(token.trim(), ttl.map(Duration::from_secs))
        .map_err(|e| {
            if e.is_invalid_token() {
                Failure::Rejected(e.to_string())
            } else {
                Failure::Error(e.to_string())
            }
        })?;
    if decrypted.needs_resign() {
        eprintln!(
            "keyroll: decrypted with {} key {}: run `keyroll reencrypt` to move it to the current key",
            decrypted.key.role, decrypted.key.id
        );
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&decrypted.value)
        .and_then(|()| stdout.write_all(b"\n"))
        .map_err(|e| Failure::Error(format!("cannot write standard output: {e}")))
}

pub(crate) async fn reencrypt(source: &Source, derive: Derive) -> Result<(), Failure> {
    let encrypter = encrypter(source, derive).await?;
    // A bar over bytes when stdin is a file of known size, a counter otherwise;
    // drawn only when stderr is a terminal.
    let size = std::fs::metadata("/dev/stdin")
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let bar = match size {
        Some(len) => indicatif::ProgressBar::new(len).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .expect("a valid template"),
        ),
        None => indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"),
        ),
    };
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let progress = |counts: &ReencryptCounts| {
        let lines = counts.lines();
        if lines.is_multiple_of(1024) {
            bar.set_position(counts.bytes_read);
            bar.set_message(format!("{lines} lines"));
        }
    };
    let stdin = BufReader::with_capacity(64 * 1024, std::io::stdin().lock());
    let result = encrypter.reencrypt(stdin, std::io::stdout().lock(), progress);
    bar.finish_and_clear();
    let counts = match result {
        Ok(counts) => counts,
        Err(ReencryptError::Io { source, counts }) => {
            report(&counts);
            return Err(Failure::Error(format!("re-encryption stopped: {source}")));
        }
        Err(error) => return Err(Failure::Error(error.to_string())),
    };
    report(&counts);
    if counts.undecryptable > 0 {
        return Err(Failure::Rejected(format!(
            "{} line(s) could not be decrypted with any key and were written through unchanged",
            counts.undecryptable
        )));
    }
    Ok(())
}

fn report(counts: &ReencryptCounts) {
    eprintln!(
        "keyroll: re-encrypted {}, already current {}, undecryptable {} (kept unchanged), blank {}",
        counts.reencrypted, counts.already_current, counts.undecryptable, counts.blank
    );
}
