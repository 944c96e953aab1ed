//! The two key file formats: plain text and JSON key set.

use std::fmt;
use std::time::SystemTime;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use keyroll_core::{KeyMaterial, KeyState, KeyVersion, Reach, Stage};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The layout of a key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// One key per line, newest (signing) first; blank lines and lines
    /// starting with `#` are skipped.
    Text,
    /// A JSON key set: `{"keys": [{"id": ..., "key": ..., ...}]}`, newest first.
    Json,
}

impl Format {
    /// The format of `contents`: JSON when the first non-whitespace character
    /// is `{`, plain text otherwise.
    pub fn detect(contents: &[u8]) -> Self {
        match contents.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Self::Json,
            _ => Self::Text,
        }
    }

    /// The format named `name` (`text` or `json`), as in `?format=`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// The name used in URIs: `text` or `json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }

    /// Parses `contents` in this format into key versions, newest first.
    pub fn parse(self, contents: &[u8]) -> Result<Vec<KeyVersion>, ParseError> {
        match self {
            Self::Text => parse_text(contents),
            Self::Json => parse_json(contents),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `contents` in the given format, or the [detected](Format::detect)
/// one when `format` is `None`.
pub fn parse(contents: &[u8], format: Option<Format>) -> Result<Vec<KeyVersion>, ParseError> {
    format.unwrap_or_else(|| Format::detect(contents)).parse(contents)
}

/// Why a key file could not be read as a key set. Never contains key material:
/// positions, ids and field names only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// No key in the file: empty, or only blank lines and comments.
    #[error(
        "the file holds no key (it is empty or has only blank lines and # comments); put the signing key on the first line"
    )]
    Empty,
    /// A line of a plain text file is not UTF-8.
    #[error(
        "line {line} is not valid UTF-8; plain key files hold text keys, use a JSON key set with \"key_base64\" for binary keys"
    )]
    NotUtf8 {
        /// The 1-based line number.
        line: usize,
    },
    /// The JSON is malformed or does not match the key set schema.
    #[error("invalid JSON key set at line {line}, column {column}: {problem}")]
    Json {
        /// The 1-based line of the problem.
        line: usize,
        /// The 1-based column of the problem.
        column: usize,
        /// What kind of problem. Never serde's own message, which may quote
        /// the file's text (a key in the wrong place).
        problem: JsonProblem,
    },
    /// The JSON key set has no entries.
    #[error("the JSON key set has an empty \"keys\" list; add at least one key")]
    NoKeys,
    /// The file was written by `keyroll agent`, which could not read its
    /// store since `since`: its readers fail as the store's readers do
    /// (the last good keys keep serving, degraded, until a reader's
    /// `fail_closed_after` closes its keyring), not trust the file forever.
    #[error(
        "the agent that writes this file has not been able to read its store since {}; the keys in it are unconfirmed",
        show_time(*since)
    )]
    StoreUnavailable {
        /// When the agent's first failed read of the store happened.
        since: SystemTime,
    },
    /// One entry of the JSON key set is unusable.
    #[error("key entry {index}{}: {problem}", id.as_ref().map(|id| format!(" (id {id})")).unwrap_or_default())]
    Entry {
        /// The 1-based position in the `keys` list.
        index: usize,
        /// The entry's id, if it has one.
        id: Option<String>,
        /// What is wrong with it.
        problem: EntryProblem,
    },
}

/// What kind of problem a JSON key file has. Built from serde's error
/// category alone, so no text of the file can reach a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonProblem {
    /// Not well-formed JSON.
    #[error("not well-formed JSON")]
    Syntax,
    /// The file ends in the middle of a value.
    #[error("the file ends in the middle of a value (half-written?)")]
    Truncated,
    /// Well-formed JSON that does not match the key set schema.
    #[error(
        "does not match the key set schema: an object {{\"keys\": [...]}} whose entries have only the fields `id`, `key`, `key_base64`, `created`, `activates`, `expires` (RFC 3339 times) `state` (`enabled`, `disabled` or `destroyed`) and `stage` (`pending`, `current` or `previous`), and at the top level `reach` (`shared` or `local`) and `unavailable_since` (an RFC 3339 time)"
    )]
    Schema,
}

/// What is wrong with one entry of a JSON key set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// Neither `key` nor `key_base64` given, or both.
    #[error(
        "give exactly one of \"key\" (text) and \"key_base64\" (binary); only a disabled or destroyed entry may have neither"
    )]
    KeyField,
    /// A disabled or destroyed entry without material and without an id.
    #[error("a disabled or destroyed entry without a key needs an \"id\"")]
    WithdrawnWithoutId,
    /// The key is empty.
    #[error("the key is empty")]
    EmptyKey,
    /// `key_base64` is not base64.
    #[error("\"key_base64\" is not valid base64 (standard or URL-safe alphabet)")]
    Base64,
    /// The id is used by an earlier entry too.
    #[error("the id is used by entry {0} as well; ids must be unique")]
    DuplicateId(usize),
    /// The id is empty.
    #[error("the id is empty; leave \"id\" out to use the key's fingerprint")]
    EmptyId,
    /// Listed before an entry created later.
    #[error("it was created before entry {0}, which is listed after it; list keys newest first")]
    OutOfOrder(usize),
}

fn parse_text(contents: &[u8]) -> Result<Vec<KeyVersion>, ParseError> {
    let mut versions = Vec::new();
    for (index, line) in contents.split(|&b| b == b'\n').enumerate() {
        let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8 { line: index + 1 })?;
        let key = line.trim();
        if key.is_empty() || key.starts_with('#') {
            continue;
        }
        versions.push(KeyVersion::from_material(key));
    }
    if versions.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(versions)
}

/// The JSON key file, as written and read.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyFile {
    /// `"shared"` when many processes read copies of one store's keys (a file
    /// written by `keyroll agent`): readers then stage activation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reach: Option<FileReach>,
    /// Set by `keyroll agent` while it cannot read its store: readers then
    /// fail their reads as the store's own readers do.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) unavailable_since: Option<OffsetDateTime>,
    pub(crate) keys: Vec<Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FileReach {
    Shared,
    Local,
}

/// One entry of the JSON key file. `Debug` is written by hand: it must not
/// show the key.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_base64: Option<Zeroizing<String>>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) created: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) activates: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) expires: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<EntryState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stage: Option<EntryStage>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("created", &self.created)
            .field("activates", &self.activates)
            .field("expires", &self.expires)
            .field("state", &self.state)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EntryState {
    Enabled,
    Disabled,
    Destroyed,
}

/// A store's stage label (AWS `AWSPENDING`, `AWSCURRENT`, `AWSPREVIOUS`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EntryStage {
    Pending,
    Current,
    Previous,
}

pub(crate) fn read_key_file(contents: &[u8]) -> Result<KeyFile, ParseError> {
    serde_json::from_slice(contents).map_err(|error| ParseError::Json {
        line: error.line(),
        column: error.column(),
        problem: match error.classify() {
            serde_json::error::Category::Eof => JsonProblem::Truncated,
            serde_json::error::Category::Data => JsonProblem::Schema,
            _ => JsonProblem::Syntax,
        },
    })
}

fn parse_json(contents: &[u8]) -> Result<Vec<KeyVersion>, ParseError> {
    let file = read_key_file(contents)?;
    if let Some(since) = file.unavailable_since {
        return Err(ParseError::StoreUnavailable { since: since.into() });
    }
    if file.keys.is_empty() {
        return Err(ParseError::NoKeys);
    }
    let mut versions: Vec<KeyVersion> = Vec::with_capacity(file.keys.len());
    for (position, entry) in file.keys.iter().enumerate() {
        let index = position + 1;
        let fail = |problem| ParseError::Entry {
            index,
            id: entry.id.clone(),
            problem,
        };
        let state = match entry.state {
            None | Some(EntryState::Enabled) => KeyState::Enabled,
            Some(EntryState::Disabled) => KeyState::Disabled,
            Some(EntryState::Destroyed) => KeyState::Destroyed,
        };
        // A withdrawn version (disabled or destroyed) is listed by its id and
        // state alone: Vault and GCP report no material for it, and it never
        // verifies; the policy drops it from a key set that held it.
        let withdrawn = state != KeyState::Enabled;
        let material = match (&entry.key, &entry.key_base64) {
            (Some(text), None) => KeyMaterial::from(text.as_str()),
            (None, Some(encoded)) => {
                KeyMaterial::new(decode_base64(encoded.trim()).ok_or_else(|| fail(EntryProblem::Base64))?)
            }
            (None, None) if withdrawn => KeyMaterial::new(Vec::new()),
            _ => return Err(fail(EntryProblem::KeyField)),
        };
        if material.is_empty() && !withdrawn {
            return Err(fail(EntryProblem::EmptyKey));
        }
        let id = match &entry.id {
            Some(id) if id.trim().is_empty() => return Err(fail(EntryProblem::EmptyId)),
            Some(id) => id.clone(),
            None if material.is_empty() => return Err(fail(EntryProblem::WithdrawnWithoutId)),
            None => material.fingerprint(),
        };
        if let Some(earlier) = versions.iter().position(|v| v.id == id) {
            return Err(fail(EntryProblem::DuplicateId(earlier + 1)));
        }
        let created = entry.created.map(SystemTime::from);
        if let (Some(created), Some(newer)) = (created, versions.last().and_then(|v| v.created))
            && created > newer
        {
            return Err(ParseError::Entry {
                index: index - 1,
                id: versions.last().map(|v| v.id.clone()),
                problem: EntryProblem::OutOfOrder(index),
            });
        }
        let mut version = KeyVersion::new(id, material).with_state(state);
        if let Some(created) = created {
            version = version.with_created(created);
        }
        if let Some(at) = entry.activates {
            version = version.with_activates(at.into());
        }
        if let Some(at) = entry.expires {
            version = version.with_expires(at.into());
        }
        if let Some(stage) = entry.stage {
            version = version.with_stage(match stage {
                EntryStage::Pending => Stage::Pending,
                EntryStage::Current => Stage::Current,
                EntryStage::Previous => Stage::Previous,
            });
        }
        versions.push(version);
    }
    Ok(versions)
}

/// The reach a JSON key file declares (`"reach": "shared"` or `"local"`);
/// `None` for plain text files, JSON without the field, or unreadable JSON.
pub(crate) fn declared_reach(contents: &[u8]) -> Option<Reach> {
    if Format::detect(contents) != Format::Json {
        return None;
    }
    match read_key_file(contents).ok()?.reach? {
        FileReach::Shared => Some(Reach::Shared),
        FileReach::Local => Some(Reach::Local),
    }
}

/// Why [`key_file_json`] cannot write what a store reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// A time outside what RFC 3339 can write (years 0 to 9999): a store's
    /// answer no reader of the file could be given.
    #[error(
        "the store reports version {id} {field} at a moment beyond year 9999 (or before year 0), which a key file cannot hold"
    )]
    TimeOutOfRange {
        /// The version's id.
        id: String,
        /// `created`, `activates` or `expires`.
        field: &'static str,
    },
}

/// A JSON key file holding `versions` exactly as a store reported them
/// (ids, material, creation times, states, stages; newest first), declaring
/// `reach`. What `keyroll agent` writes; [`parse`] reads it back unchanged.
///
/// A withdrawn version (disabled or destroyed) is written with its id and
/// state and without material (the stores report none for it, and no reader
/// needs it), so readers drop it from their key sets as readers of the store
/// do.
///
/// # Errors
/// [`KeyFileError::TimeOutOfRange`] for a time RFC 3339 cannot write.
pub fn key_file_json(versions: &[KeyVersion], reach: Reach) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let keys = versions
        .iter()
        .map(|version| {
            let material = version.material.expose_secret();
            let (key, key_base64) = match std::str::from_utf8(material) {
                _ if version.state != KeyState::Enabled => (None, None),
                Ok(text) => (Some(Zeroizing::new(text.to_owned())), None),
                Err(_) => (
                    None,
                    Some(Zeroizing::new(
                        base64::engine::general_purpose::STANDARD.encode(material),
                    )),
                ),
            };
            let time = |field: &'static str, at: Option<SystemTime>| {
                at.map(|at| {
                    file_time(at).ok_or_else(|| KeyFileError::TimeOutOfRange {
                        id: version.id.clone(),
                        field,
                    })
                })
                .transpose()
            };
            Ok(Entry {
                id: Some(version.id.clone()),
                key,
                key_base64,
                created: time("created", version.created)?,
                activates: time("activates", version.activates)?,
                expires: time("expires", version.expires)?,
                state: Some(match version.state {
                    KeyState::Disabled => EntryState::Disabled,
                    KeyState::Destroyed => EntryState::Destroyed,
                    _ => EntryState::Enabled,
                }),
                stage: version.stage.map(|stage| match stage {
                    Stage::Pending => EntryStage::Pending,
                    Stage::Current => EntryStage::Current,
                    _ => EntryStage::Previous,
                }),
            })
        })
        .collect::<Result<_, _>>()?;
    let file = KeyFile {
        reach: Some(match reach {
            Reach::Shared => FileReach::Shared,
            _ => FileReach::Local,
        }),
        unavailable_since: None,
        keys,
    };
    Ok(key_file_bytes(&file))
}

/// `file` as pretty JSON with a final newline. Every time in it came
/// through [`file_time`], so serializing cannot fail.
pub(crate) fn key_file_bytes(file: &KeyFile) -> Zeroizing<Vec<u8>> {
    let mut contents =
        Zeroizing::new(serde_json::to_vec_pretty(file).expect("a key file always serializes to JSON"));
    contents.push(b'\n');
    contents
}

/// `at` as a time a key file can hold (RFC 3339: years 0 to 9999), or
/// `None`. `OffsetDateTime::from(SystemTime)` panics outside that range.
pub(crate) fn file_time(at: SystemTime) -> Option<OffsetDateTime> {
    let epoch = OffsetDateTime::UNIX_EPOCH;
    let time = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => epoch.checked_add(time::Duration::try_from(after).ok()?),
        Err(before) => epoch.checked_sub(time::Duration::try_from(before.duration()).ok()?),
    }?;
    (0..=9999).contains(&time.year()).then_some(time)
}

/// `at` in RFC 3339 for messages, or a description when it cannot be.
fn show_time(at: SystemTime) -> String {
    file_time(at)
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{at:?}"))
}

/// Decodes standard or URL-safe base64, padded or not.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(text))
        .ok()
}

#[cfg(test)]
mod tests;
