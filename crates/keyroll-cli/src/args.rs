//! The command line: every subcommand, flag and help text (clap), and the
//! parsers of flag values. The work they ask for is the library's
//! (`keyroll::ops`, the formats), called from `main.rs`.

use std::time::Duration;

use clap::{Arg, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use keyroll::options::{OPTIONS, Options, Scope, Unit, Value, parse_duration};

#[derive(Debug, Parser)]
#[command(
    name = "keyroll",
    version,
    about = "Zero-downtime secret-key rotation",
    long_about = None,
    after_help = "`keyroll COMMAND --help` shows a command's options and an example; `keyroll --version` the stores \
                  and formats this build includes."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Source {
    #[arg(long, env = "KEYROLL_KEYS", value_name = "URI", help = keys_help())]
    pub(crate) keys: String,
    /// The policy's options (`keyroll::options::OPTIONS`).
    #[command(flatten)]
    pub(crate) policy: Flags<false>,
}

/// A flag for every option of the library's table ([`OPTIONS`]) of one
/// scope: the policy's (`Flags<false>`, every command that reads keys) or the
/// refresher's (`Flags<true>`, commands that keep reading the store).
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags<const REFRESHER: bool>(pub(crate) Options);

impl<const REFRESHER: bool> Flags<REFRESHER> {
    fn options() -> impl Iterator<Item = &'static keyroll::options::RefreshOption> {
        let scope = if REFRESHER {
            Scope::Refresher
        } else {
            Scope::Policy
        };
        OPTIONS.iter().filter(move |option| option.scope == scope)
    }
}

impl<const REFRESHER: bool> clap::Args for Flags<REFRESHER> {
    fn augment_args(command: clap::Command) -> clap::Command {
        Self::options().fold(command, |command, option| {
            let value_name = match option.unit {
                Unit::Count => "N",
                _ => "DURATION",
            };
            command.arg(
                Arg::new(option.name)
                    .long(option.name.replace('_', "-"))
                    .value_name(value_name)
                    .help(format!(
                        "{} (default: {}).",
                        capitalized(option.doc),
                        option.default
                    ))
                    .allow_negative_numbers(true)
                    .value_parser(move |text: &str| option.parse(text)),
            )
        })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

impl<const REFRESHER: bool> FromArgMatches for Flags<REFRESHER> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut options = Options::new();
        for option in Self::options() {
            if let Some(&value) = matches.get_one::<Value>(option.name) {
                options
                    .set(option.name, value)
                    .map_err(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, e))?;
            }
        }
        Ok(Self(options))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// keyroll's native format: names its key, one HMAC per verification.
    Keyroll,
    /// Django's django.core.signing format.
    #[cfg(feature = "django")]
    Django,
    /// HS256 JSON Web Token, `kid` = the signing key's id; the value is a JSON object of claims.
    #[cfg(feature = "jwt")]
    Jwt,
    /// Flask's session cookie; the value is the session as Flask's tagged JSON.
    #[cfg(feature = "flask")]
    Flask,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SignOptions {
    /// Token format.
    #[arg(long, value_enum, default_value_t = Format::Keyroll)]
    pub(crate) format: Format,
    /// Namespace: a token signed for one salt never verifies for another
    /// (default: none for keyroll, Django's class-name salts for django).
    #[arg(long)]
    pub(crate) salt: Option<String>,
    /// Put (sign) or require (verify) a timestamp.
    #[arg(long)]
    pub(crate) timestamp: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print a new random key (refused below the strength floor every replica enforces).
    #[command(
        after_help = "Examples:\n  keyroll generate > keys            # 50 characters of Django's alphabet\n  keyroll generate --bytes 32        # a Fernet key"
    )]
    Generate {
        #[command(flatten)]
        kind: KeyKind,
    },
    /// List the keys of a source with their roles; never prints key material.
    #[command(after_help = "Example:\n  keyroll check --keys vault://127.0.0.1:8200/secret/myapp?tls=false")]
    Check {
        #[command(flatten)]
        source: Source,
    },
    /// Sign VALUE with the current key and print the token.
    #[command(
        after_help = "Examples:\n  keyroll sign --keys file:///etc/myapp/keys --timestamp user=42\n  keyroll sign --keys file:///etc/myapp/keys --format jwt --ttl 3600 '{\"sub\":\"42\"}'"
    )]
    Sign {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        options: SignOptions,
        /// With --format jwt: add `iat` = now and `exp` = now + SECS. Required
        /// unless the claims carry `exp`: verify refuses a JWT without it.
        #[arg(long, value_name = "SECS")]
        ttl: Option<u64>,
        /// The value to sign.
        value: String,
    },
    /// Verify TOKEN and print the value that was signed.
    #[command(
        after_help = "Example:\n  keyroll verify --keys file:///etc/myapp/keys --timestamp --max-age 3600 \"$TOKEN\""
    )]
    Verify {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        options: SignOptions,
        /// Refuse tokens older than this many seconds.
        #[arg(long, value_name = "SECS")]
        max_age: Option<u64>,
        /// The token to verify.
        token: String,
    },
    /// Print one line per key set change until interrupted; with
    /// `--metrics`, also every `--interval` (here 5 s by default) each
    /// fallback key's verifications in the last `--window`, read from the
    /// serving process's metrics.
    #[command(
        after_help = "Examples:\n  keyroll watch --keys file:///etc/myapp/keys\n  keyroll watch --keys vault://vault.internal:8200/secret/myapp --metrics http://127.0.0.1:9000/metrics --window 1h",
        mut_arg("interval", |arg| arg
            .default_value(WATCH_INTERVAL)
            .help("Time between two reads of the store (push-capable sources apply changes at once), and of `--metrics`."))
    )]
    Watch {
        #[command(flatten)]
        source: Source,
        /// The refresher's options (`keyroll::options::OPTIONS`).
        #[command(flatten)]
        refresher: Flags<true>,
        /// A service's metrics endpoint in Prometheus' text format (the
        /// `metrics` feature of the keyroll crate, see examples/metrics.rs),
        /// as http://HOST:PORT/PATH: its `keyroll_verifications_total`
        /// counts tell how much each fallback key still verifies. A key with
        /// none over a window as long as its tokens live is safe to retire.
        #[arg(long, value_name = "URL")]
        metrics: Option<String>,
        /// The span the `--metrics` counts cover (e.g. 1h, 30m).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h", requires = "metrics")]
        window: Duration,
    },
    /// Write a freshly generated key to the store as its newest version.
    #[command(
        after_help = "Examples:\n  keyroll rotate --keys vault://vault.internal:8200/secret/myapp --disable-old\n  keyroll rotate --keys file:///etc/myapp/fernet-keys --for fernet\n  keyroll rotate --keys vault://vault.internal:8200/secret/myapp --if-older-than 30d   # from cron, on every host"
    )]
    Rotate {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        kind: KeyKind,
        /// What the key is for: `fernet` (32 random bytes as URL-safe base64,
        /// a Fernet key) or `signing` (50 characters of Django's alphabet).
        /// Default: the form of the key the source serves now, else signing.
        #[arg(long = "for", value_name = "fernet|signing", conflicts_with_all = ["chars", "bytes"])]
        key_use: Option<KeyUse>,
        /// Make the new version the store's current one at once (stores with
        /// stages, such as AWS); staged activation still applies.
        #[arg(long)]
        promote: bool,
        /// Then disable every version the policy has retired (past its fallback
        /// window or beyond the maximum number of fallbacks), as decided by
        /// the core policy (`Policy::retired`) with the policy options given
        /// here: give the fleet's own `--fallback-window` and `--max-fallbacks`.
        #[arg(long)]
        disable_old: bool,
        /// Only when the newest key is at least this old (by the store's own
        /// creation time) or the store holds none, and with the store's
        /// compare-and-set: run it from cron on every host, exactly one
        /// publishes. Prints `rotated: ID` or `not due: …`; exit 0 either way.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        if_older_than: Option<Duration>,
    },
    #[cfg(feature = "django")]
    /// Sign a JSON value like Django's `signing.dumps` (timestamped, salt `django.core.signing`).
    #[command(after_help = "Example:\n  keyroll dumps --keys env://SECRET_KEY --compress '{\"user\": 42}'")]
    Dumps {
        #[command(flatten)]
        source: Source,
        /// Salt (default Django's `django.core.signing`).
        #[arg(long)]
        salt: Option<String>,
        /// zlib-compress the payload when that makes it shorter.
        #[arg(long)]
        compress: bool,
        /// The JSON value to sign.
        json: String,
    },
    #[cfg(feature = "django")]
    /// Verify a Django `signing.dumps` token and print its JSON.
    #[command(after_help = "Example:\n  keyroll loads --keys env://SECRET_KEY --max-age 86400 \"$TOKEN\"")]
    Loads {
        #[command(flatten)]
        source: Source,
        /// Salt (default Django's `django.core.signing`).
        #[arg(long)]
        salt: Option<String>,
        /// Refuse tokens older than this many seconds.
        #[arg(long, value_name = "SECS")]
        max_age: Option<u64>,
        /// The token to verify.
        token: String,
    },
    #[cfg(feature = "fernet")]
    /// Encrypt VALUE (or standard input) into a Fernet token with the current key.
    #[command(
        after_help = "Example:\n  keyroll encrypt --keys file:///etc/myapp/fernet-keys < api-token.txt"
    )]
    Encrypt {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        derive: DeriveOption,
        /// The value to encrypt; read from standard input when absent.
        value: Option<String>,
    },
    #[cfg(feature = "fernet")]
    /// Decrypt a Fernet TOKEN (or standard input) with any verifying key and print the plaintext.
    #[command(
        after_help = "Example:\n  keyroll decrypt --keys file:///etc/myapp/fernet-keys --ttl 86400 \"$TOKEN\""
    )]
    Decrypt {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        derive: DeriveOption,
        /// Refuse tokens older than this many seconds (60 s of clock skew tolerated).
        #[arg(long, value_name = "SECS")]
        ttl: Option<u64>,
        /// The token; read from standard input when absent.
        token: Option<String>,
    },
    /// Write what the store holds to a JSON key file (`file://PATH` for every process on the host), again whenever it changes.
    ///
    /// One store request per interval per host instead of per process. The file is replaced atomically,
    /// mode 0600, and declares the store's reach so readers stage activation from the store's own times.
    #[command(
        after_help = "Example:\n  keyroll agent --keys vault://vault.internal:8200/secret/myapp --out /run/myapp/keys.json --interval 30s"
    )]
    Agent {
        #[command(flatten)]
        source: Source,
        /// The key file to write.
        #[arg(long, value_name = "PATH")]
        out: std::path::PathBuf,
        /// Time between two reads of the store (at least 10ms).
        #[arg(long, value_name = "DURATION", value_parser = agent_interval, default_value = "30s")]
        interval: Duration,
        /// Publish a new key once the newest is this old, by the store's compare-and-set: agents on
        /// every host make one new key between them (stores with compare-and-set; off by default).
        /// Must be longer than the activation delay, which for a shared store counts --interval.
        #[arg(long, value_name = "DURATION", value_parser = rotate_every)]
        rotate_every: Option<Duration>,
        /// With --rotate-every: keep a version the policy retired enabled while this metrics page
        /// (http://, Prometheus text: a /federate URL of the fleet's keyroll_verifications_total)
        /// shows it verified tokens within --usage-window.
        #[arg(long, value_name = "URL", requires = "rotate_every")]
        retire_unless_used: Option<String>,
        /// How long a retired version must go unused on --retire-unless-used's page.
        #[arg(long, value_name = "DURATION", value_parser = usage_window, default_value = "1d")]
        usage_window: Duration,
        /// Write once and exit.
        #[arg(long)]
        once: bool,
    },
    #[cfg(feature = "fernet")]
    /// Re-encrypt Fernet tokens line by line (stdin to stdout) with the current key.
    ///
    /// Lines no key decrypts are written through unchanged and counted; exit 1 if there were any.
    #[command(
        after_help = "Example:\n  keyroll reencrypt --keys file:///etc/myapp/fernet-keys < tokens > tokens.new"
    )]
    Reencrypt {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        derive: DeriveOption,
    },
    /// Print the shell completion script for SHELL.
    #[command(
        after_help = "Examples:\n  keyroll completions bash > /etc/bash_completion.d/keyroll\n  \
                            keyroll completions zsh > \"${fpath[1]}/_keyroll\"\n  \
                            keyroll completions fish > ~/.config/fish/completions/keyroll.fish"
    )]
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff); scripts/release writes it to dist/keyroll.1.
    #[command(
        hide = true,
        after_help = "Example:\n  keyroll manpage > keyroll.1 && man ./keyroll.1"
    )]
    Manpage,
}

/// `keyroll agent --interval`: a duration of at least
/// [`MIN_INTERVAL`](keyroll::options::MIN_INTERVAL).
fn agent_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    let minimum = keyroll::options::MIN_INTERVAL;
    if interval < minimum {
        return Err(format!("must be at least {minimum:?}"));
    }
    Ok(interval)
}

/// `keyroll agent --rotate-every`: the library's `rotate_every` option.
fn rotate_every(text: &str) -> Result<Duration, String> {
    keyroll::options::RefreshOption::named("rotate_every")
        .ok_or("no rotate_every option")?
        .parse(text)
        .map_err(|error| error.to_string())?
        .duration()
        .ok_or_else(|| "must be a duration".to_owned())
}

/// `keyroll agent --usage-window`: a duration longer than zero.
fn usage_window(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        window if window.is_zero() => Err("must be longer than 0".to_owned()),
        window => Ok(window),
    }
}

/// `keyroll watch`'s default `--interval`: a person is watching.
const WATCH_INTERVAL: &str = "5s";

/// The command line's definition, with the version text of this build.
pub(crate) fn cli() -> clap::Command {
    Cli::command().version(version_text())
}

/// `keyroll --version`: the version, the commit it was built from, and the
/// stores and formats compiled in.
fn version_text() -> &'static str {
    let stores: Vec<&str> = keyroll::SCHEMES
        .iter()
        .filter(|scheme| scheme.enabled)
        .map(|scheme| scheme.name)
        .collect();
    let formats: Vec<&str> = [
        ("keyroll", true),
        ("django", cfg!(feature = "django")),
        ("jwt", cfg!(feature = "jwt")),
        ("flask", cfg!(feature = "flask")),
        ("fernet", cfg!(feature = "fernet")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let text = format!(
        "{} (commit {})\nstores: {}\nformats: {}",
        env!("CARGO_PKG_VERSION"),
        env!("KEYROLL_GIT_COMMIT"),
        stores.join(" "),
        formats.join(" ")
    );
    // Built once per process, for clap, which keeps `&'static str`s.
    Box::leak(text.into_boxed_str())
}

/// What a rotated key is for, which decides its form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyUse {
    /// A Fernet key: 32 random bytes, URL-safe base64.
    Fernet,
    /// A signing key: 50 characters of Django's key alphabet.
    Signing,
}

/// What kind of key to generate.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct KeyKind {
    /// Number of characters from Django's key alphabet (default 50).
    #[arg(long, value_name = "N", conflicts_with = "bytes")]
    pub(crate) chars: Option<usize>,
    /// Number of random bytes, as URL-safe base64 text (`--bytes 32` is a Fernet key).
    #[arg(long, value_name = "N")]
    pub(crate) bytes: Option<usize>,
}

#[cfg(feature = "fernet")]
#[derive(Debug, clap::Args)]
pub(crate) struct DeriveOption {
    /// How keys become Fernet keys: `raw` (each key is a Fernet key) or `hkdf`
    /// (derived from any secret like django-fernet-fields).
    #[arg(long, value_name = "raw|hkdf", default_value = "raw")]
    pub(crate) derive: keyroll::fernet::Derive,
}

/// The `--keys` help: an example of every store this build includes.
fn keys_help() -> String {
    let examples: Vec<&str> = keyroll::SCHEMES
        .iter()
        .filter(|scheme| scheme.enabled)
        .map(|scheme| scheme.example)
        .collect();
    format!("Key source URI: {}", examples.join(", "))
}
