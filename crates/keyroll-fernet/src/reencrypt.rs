//! Streaming bulk re-encryption: one token per line, no line ever dropped.

use std::io::{self, BufRead, BufWriter, Write};

use keyroll_core::Role;

use crate::encrypter::open;
use crate::token::RawToken;
use crate::{DecryptError, Encrypter, KeyError};

/// What a [`reencrypt`](Encrypter::reencrypt) run did, line by line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReencryptCounts {
    /// Lines decrypted with a key other than the current one and replaced by
    /// a token of the current key (same plaintext, same timestamp).
    pub reencrypted: u64,
    /// Lines already encrypted with the current key, written unchanged.
    pub already_current: u64,
    /// Lines no key of the set decrypts (garbage, tampered, or a key that is
    /// gone), written through unchanged.
    pub undecryptable: u64,
    /// Empty or whitespace-only lines, written through unchanged.
    pub blank: u64,
    /// Bytes read so far, line endings included (for a progress bar over a
    /// file of known size).
    pub bytes_read: u64,
}

impl ReencryptCounts {
    /// Every line seen so far; equal to the number of lines written.
    pub fn lines(&self) -> u64 {
        self.reencrypted + self.already_current + self.undecryptable + self.blank
    }
}

/// Why a re-encryption stopped early. The output holds every line before the
/// one that failed, so nothing already written was lost, but it is
/// incomplete: do not replace the input with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReencryptError {
    /// Reading the input or writing the output failed.
    #[error("re-encryption stopped after {} line(s): {source}", counts.lines())]
    Io {
        /// The I/O error.
        #[source]
        source: io::Error,
        /// What was done before it.
        counts: ReencryptCounts,
    },
    /// A key of the set is not usable, so tokens cannot be re-encrypted (or
    /// might be miscounted as undecryptable).
    #[error("re-encryption stopped after {} line(s): {source}", counts.lines())]
    Key {
        /// Which key, and why.
        #[source]
        source: KeyError,
        /// What was done before it.
        counts: ReencryptCounts,
    },
}

impl Encrypter {
    /// Streams `reader` to `writer` line by line, replacing each token that a
    /// non-current key decrypts with a token of the current key (same
    /// plaintext, original timestamp, like [`rotate`](Encrypter::rotate)).
    ///
    /// Every line is written, in order: tokens of the current key, blank lines
    /// and lines no key decrypts pass through byte for byte, and are counted.
    /// Whitespace around a token and each line's ending (`\n`, `\r\n`, none on
    /// the last line) are kept. `on_progress` is called after every line. No
    /// TTL applies: an old token is re-encrypted, not dropped.
    ///
    /// ```
    /// use keyroll_core::{KeySet, Keyring};
    /// use keyroll_fernet::{Derive, Encrypter};
    ///
    /// let encrypter = Encrypter::new(Keyring::new(KeySet::single("v1", keyroll_fernet::generate_key()).unwrap()), Derive::Raw).unwrap();
    /// let input = format!("{}\nnot a token\n", encrypter.encrypt("x").unwrap());
    /// let mut output = Vec::new();
    /// let counts = encrypter.reencrypt(input.as_bytes(), &mut output, |_| {}).unwrap();
    /// assert_eq!((counts.already_current, counts.undecryptable), (1, 1));
    /// assert_eq!(output, input.as_bytes());
    /// ```
    pub fn reencrypt(
        &self,
        mut reader: impl BufRead,
        writer: impl Write,
        mut on_progress: impl FnMut(&ReencryptCounts),
    ) -> Result<ReencryptCounts, ReencryptError> {
        let mut counts = ReencryptCounts::default();
        self.check()
            .map_err(|source| ReencryptError::Key { source, counts })?;
        let mut out = BufWriter::with_capacity(64 * 1024, writer);
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|source| ReencryptError::Io { source, counts })?;
            if read == 0 {
                break;
            }
            counts.bytes_read += read as u64;
            self.reencrypt_line(&line, &mut out, &mut counts)
                .map_err(|failure| failure.with_counts(counts))?;
            on_progress(&counts);
        }
        out.flush()
            .map_err(|source| ReencryptError::Io { source, counts })?;
        Ok(counts)
    }

    fn reencrypt_line(
        &self,
        line: &[u8],
        out: &mut impl Write,
        counts: &mut ReencryptCounts,
    ) -> Result<(), LineFailure> {
        let content_end = line.len() - usize::from(line.ends_with(b"\n"));
        let content = &line[..content_end];
        let token = content.trim_ascii();
        if token.is_empty() {
            counts.blank += 1;
            return Ok(out.write_all(line)?);
        }
        let opened = std::str::from_utf8(token)
            .map_err(|_| DecryptError::Malformed("not UTF-8"))
            .and_then(RawToken::parse)
            .and_then(|raw| open(&self.keys_for_rotation()?, raw));
        match opened {
            Ok(opened) if opened.key.role == Role::Current => {
                counts.already_current += 1;
                Ok(out.write_all(line)?)
            }
            Ok(opened) => {
                let fresh = self.seal(&opened.plaintext, opened.timestamp, self.now())?;
                let start = content.len() - content.trim_ascii_start().len();
                out.write_all(&content[..start])?;
                out.write_all(fresh.as_bytes())?;
                out.write_all(&line[start + token.len()..])?;
                counts.reencrypted += 1;
                Ok(())
            }
            Err(DecryptError::Key(error)) => Err(LineFailure::Key(error)),
            Err(_) => {
                counts.undecryptable += 1;
                Ok(out.write_all(line)?)
            }
        }
    }
}

enum LineFailure {
    Io(io::Error),
    Key(KeyError),
}

impl LineFailure {
    fn with_counts(self, counts: ReencryptCounts) -> ReencryptError {
        match self {
            Self::Io(source) => ReencryptError::Io { source, counts },
            Self::Key(source) => ReencryptError::Key { source, counts },
        }
    }
}

impl From<io::Error> for LineFailure {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

impl From<KeyError> for LineFailure {
    fn from(error: KeyError) -> Self {
        Self::Key(error)
    }
}
