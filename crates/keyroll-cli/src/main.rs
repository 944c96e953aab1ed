//! `keyroll`: generate keys, check a key source, sign and verify, watch a
//! source for changes, and rotate a key in the store.
//!
//! Exit codes: 0 success; 1 a token that does not verify (bad, expired), or a
//! source that was read but holds no usable key set (weak, empty, malformed);
//! 2 usage, configuration and provider errors (a missing source included).

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use keyroll::ops::{self, KeyForm, OpError, RotateOptions};
use keyroll::{KeySet, KeyStrength, Keyring, Policy, RefreshError, Refresher, Role, Signer};

mod agent;
#[cfg(feature = "django")]
mod django;
#[cfg(feature = "fernet")]
mod encryption;
#[cfg(feature = "flask")]
mod flask;
#[cfg(feature = "jwt")]
mod jwt;
mod watch;

#[derive(Debug, Parser)]
#[command(
    name = "keyroll",
    version,
    about = "Zero-downtime secret-key rotation",
    long_about = None,
    after_help = "`keyroll COMMAND --help` shows a command's options and an example; `keyroll --version` the stores \
                  and formats this build includes."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Source {
    #[arg(long, env = "KEYROLL_KEYS", value_name = "URI", help = keys_help())]
    keys: String,
    /// How long a superseded key keeps verifying (e.g. 30d, 12h, 90s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    fallback_window: Option<Duration>,
    /// How long a new key only verifies before it signs (default: 0 for local sources, staged for shared stores).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    activation_delay: Option<Duration>,
    /// How many superseded keys keep verifying at most.
    #[arg(long, value_name = "N")]
    max_fallbacks: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
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
struct SignOptions {
    /// Token format.
    #[arg(long, value_enum, default_value_t = Format::Keyroll)]
    format: Format,
    /// Namespace: a token signed for one salt never verifies for another
    /// (default: none for keyroll, Django's class-name salts for django).
    #[arg(long)]
    salt: Option<String>,
    /// Put (sign) or require (verify) a timestamp.
    #[arg(long)]
    timestamp: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// `--metrics`, also every interval each fallback key's verifications
    /// in the last `--window`, read from the serving process's metrics.
    #[command(
        after_help = "Examples:\n  keyroll watch --keys file:///etc/myapp/keys\n  keyroll watch --keys vault://vault.internal:8200/secret/myapp --metrics http://127.0.0.1:9000/metrics --window 1h"
    )]
    Watch {
        #[command(flatten)]
        source: Source,
        /// Poll interval backstop (push-capable sources apply changes at
        /// once), and how often `--metrics` is read.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
        interval: Duration,
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
        after_help = "Examples:\n  keyroll rotate --keys vault://vault.internal:8200/secret/myapp --disable-old\n  keyroll rotate --keys file:///etc/myapp/fernet-keys --for fernet"
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
        /// Time between two reads of the store.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
        interval: Duration,
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

/// The command line's definition, with the version text of this build.
fn cli() -> clap::Command {
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
enum KeyUse {
    /// A Fernet key: 32 random bytes, URL-safe base64.
    Fernet,
    /// A signing key: 50 characters of Django's key alphabet.
    Signing,
}

/// What kind of key to generate.
#[derive(Debug, Default, clap::Args)]
struct KeyKind {
    /// Number of characters from Django's key alphabet (default 50).
    #[arg(long, value_name = "N", conflicts_with = "bytes")]
    chars: Option<usize>,
    /// Number of random bytes, as URL-safe base64 text (`--bytes 32` is a Fernet key).
    #[arg(long, value_name = "N")]
    bytes: Option<usize>,
}

#[cfg(feature = "fernet")]
#[derive(Debug, clap::Args)]
struct DeriveOption {
    /// How keys become Fernet keys: `raw` (each key is a Fernet key) or `hkdf`
    /// (derived from any secret like django-fernet-fields).
    #[arg(long, value_name = "raw|hkdf", default_value = "raw")]
    derive: keyroll::fernet::Derive,
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

/// A failure, with the exit code it maps to.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A token that does not verify, or a weak or empty key set: exit 1.
    Rejected(String),
    /// Usage, configuration or provider error: exit 2.
    Error(String),
}

impl From<keyroll::ProviderError> for Failure {
    fn from(error: keyroll::ProviderError) -> Self {
        match error.kind() {
            // Read, but no usable key set (empty secret, malformed file).
            keyroll::ProviderErrorKind::Invalid => Failure::Rejected(error.to_string()),
            _ => Failure::Error(error.to_string()),
        }
    }
}

impl From<RefreshError> for Failure {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Policy(policy) => Failure::Rejected(policy.to_string()),
            RefreshError::Provider(provider) => provider.into(),
            other => Failure::Error(other.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&cli().get_matches()).unwrap_or_else(|error| error.exit());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYROLL_LOG")
                // The Vault client's own error lines (rustify, vaultrs) repeat,
                // raw, the failure keyroll then reports with what to do.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rustify=off,vaultrs=off")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Rejected(reason)) => {
            eprintln!("keyroll: {reason}");
            ExitCode::from(1)
        }
        Err(Failure::Error(reason)) => {
            eprintln!("keyroll: error: {reason}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Generate { kind } => {
            let form = asked_form(&kind).unwrap_or_default();
            let key = ops::generate(form, &KeyStrength::default()).map_err(op_failure)?;
            println!("{}", String::from_utf8_lossy(key.expose_secret()));
            Ok(())
        }
        Command::Check { source } => check(&source).await,
        Command::Sign {
            source,
            options,
            ttl,
            value,
        } => {
            #[cfg(feature = "jwt")]
            let ttl_applies = options.format == Format::Jwt;
            #[cfg(not(feature = "jwt"))]
            let ttl_applies = false;
            if ttl.is_some() && !ttl_applies {
                return Err(Failure::Error("--ttl applies to --format jwt only".to_owned()));
            }
            let token = match options.format {
                #[cfg(feature = "django")]
                Format::Django => {
                    django::sign(&source, options.salt.as_deref(), options.timestamp, &value).await?
                }
                #[cfg(feature = "jwt")]
                Format::Jwt => jwt::sign(&source, &options, ttl, &value).await?,
                #[cfg(feature = "flask")]
                Format::Flask => flask::sign(&source, options.salt.as_deref(), &value).await?,
                Format::Keyroll => native_signer(&source, &options).await?.sign(&value),
            };
            println!("{token}");
            Ok(())
        }
        Command::Verify {
            source,
            options,
            max_age,
            token,
        } => {
            let token = token.trim();
            let value = match options.format {
                #[cfg(feature = "django")]
                Format::Django => {
                    django::verify(
                        &source,
                        options.salt.as_deref(),
                        options.timestamp,
                        max_age,
                        token,
                    )
                    .await?
                }
                #[cfg(feature = "jwt")]
                Format::Jwt if max_age.is_some() => {
                    return Err(Failure::Error(
                        "--max-age does not apply to --format jwt: the token's exp decides".to_owned(),
                    ));
                }
                #[cfg(feature = "jwt")]
                Format::Jwt => jwt::verify(&source, &options, token).await?,
                #[cfg(feature = "flask")]
                Format::Flask => flask::verify(&source, options.salt.as_deref(), max_age, token).await?,
                Format::Keyroll => verify_native(&source, &options, max_age, token).await?,
            };
            println!("{value}");
            Ok(())
        }
        #[cfg(feature = "django")]
        Command::Dumps {
            source,
            salt,
            compress,
            json,
        } => django::dumps(&source, salt.as_deref(), compress, &json).await,
        #[cfg(feature = "django")]
        Command::Loads {
            source,
            salt,
            max_age,
            token,
        } => django::loads(&source, salt.as_deref(), max_age, token.trim()).await,
        Command::Watch {
            source,
            interval,
            metrics,
            window,
        } => {
            let usage = metrics.map(|url| watch::Usage::new(&url, window)).transpose()?;
            watch::watch(&source, interval, usage).await
        }
        Command::Rotate {
            source,
            kind,
            key_use,
            promote,
            disable_old,
        } => rotate(&source, kind, key_use, promote, disable_old).await,
        #[cfg(feature = "fernet")]
        Command::Encrypt {
            source,
            derive,
            value,
        } => encryption::encrypt(&source, derive.derive, value).await,
        #[cfg(feature = "fernet")]
        Command::Decrypt {
            source,
            derive,
            ttl,
            token,
        } => encryption::decrypt(&source, derive.derive, ttl, token).await,
        #[cfg(feature = "fernet")]
        Command::Reencrypt { source, derive } => encryption::reencrypt(&source, derive.derive).await,
        Command::Agent {
            source,
            out,
            interval,
            once,
        } => agent::agent(&source, &out, interval, once).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut cli(), "keyroll", &mut std::io::stdout());
            Ok(())
        }
        // The version alone: the page's title line holds one line of text.
        Command::Manpage => clap_mangen::Man::new(Cli::command().version(env!("CARGO_PKG_VERSION")))
            .render(&mut std::io::stdout())
            .map_err(|e| Failure::Error(format!("cannot write the man page: {e}"))),
    }
}

/// The form `--chars`/`--bytes` ask for, if either is given.
fn asked_form(kind: &KeyKind) -> Option<KeyForm> {
    kind.bytes.map(KeyForm::Bytes).or(kind.chars.map(KeyForm::Chars))
}

/// What an operation's failure exits with, in the flags' words.
fn op_failure(error: OpError) -> Failure {
    match error {
        OpError::Empty(unit) => Failure::Error(format!(
            "--{} must be at least 1",
            if unit == "byte" { "bytes" } else { "chars" }
        )),
        OpError::Weak { weakness, min } => Failure::Error(format!(
            "the generated key would be weak ({weakness}); keyroll and every replica refuse it: \
             use at least --chars {min} or --bytes {min}"
        )),
        OpError::Provider(error) => error.into(),
        OpError::Refresh(error) => error.into(),
        OpError::Policy(error) => Failure::Rejected(error.to_string()),
        other => Failure::Error(other.to_string()),
    }
}

pub(crate) fn builder(source: &Source) -> Result<keyroll::RefresherBuilder, Failure> {
    let mut policy = Policy::default();
    if let Some(window) = source.fallback_window {
        policy = policy.with_fallback_window(window);
    }
    if let Some(delay) = source.activation_delay {
        policy = policy.with_activation_delay(delay);
    }
    if let Some(max) = source.max_fallbacks {
        policy = policy.with_max_fallbacks(max);
    }
    Ok(Refresher::builder(keyroll::open(&source.keys)?).policy(policy))
}

pub(crate) async fn load(source: &Source) -> Result<KeySet, Failure> {
    Ok(builder(source)?.load_once().await?.1)
}

/// Tells on stderr that a key other than the current one verified.
pub(crate) fn hint(key: &keyroll::VerifiedBy) {
    if key.role != Role::Current {
        eprintln!(
            "keyroll: verified by {} key {}: sign the value again with the current key",
            key.role, key.id
        );
    }
}

/// Verifies a native token; with `--timestamp` (and no `--max-age`) it must carry a timestamp.
async fn verify_native(
    source: &Source,
    options: &SignOptions,
    max_age: Option<u64>,
    token: &str,
) -> Result<String, Failure> {
    let mut signer = native_signer(source, options).await?;
    if let Some(secs) = max_age {
        signer = signer.with_max_age(Duration::from_secs(secs));
    } else if options.timestamp {
        signer = signer.with_max_age(Duration::MAX);
    }
    let verified = signer
        .verify(token)
        .map_err(|e| Failure::Rejected(e.to_string()))?;
    hint(&verified.key);
    Ok(verified.value)
}

async fn native_signer(source: &Source, options: &SignOptions) -> Result<Signer, Failure> {
    let signer =
        Signer::new(Keyring::new(load(source).await?)).with_salt(options.salt.clone().unwrap_or_default());
    Ok(if options.timestamp {
        signer.with_timestamps()
    } else {
        signer
    })
}

async fn check(source: &Source) -> Result<(), Failure> {
    let set = load(source).await?;
    println!("{}", source.keys);
    for key in ops::describe(&set, SystemTime::now()) {
        println!("  {key}");
    }
    Ok(())
}

async fn rotate(
    source: &Source,
    kind: KeyKind,
    key_use: Option<KeyUse>,
    promote: bool,
    disable_old: bool,
) -> Result<(), Failure> {
    let form = asked_form(&kind).or(key_use.map(|key_use| match key_use {
        KeyUse::Fernet => KeyForm::FERNET,
        KeyUse::Signing => KeyForm::SIGNING,
    }));
    let mut options = RotateOptions::default().promote(promote).disable_old(disable_old);
    options.form = form;
    ops::rotate(&builder(source)?, &options, |step| println!("{step}"))
        .await
        .map_err(|error| {
            // Refused before anything was written.
            let unwritten = matches!(error, OpError::Empty(_) | OpError::Weak { .. });
            match op_failure(error) {
                Failure::Error(reason) if unwritten => {
                    Failure::Error(format!("{reason}; nothing was published"))
                }
                other => other,
            }
        })?;
    Ok(())
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 90s, 15m, 12h or 30d"))?;
    let unit_millis = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("unknown unit `{unit}` in `{text}`; use ms, s, m, h or d")),
    };
    Ok(Duration::from_millis(number.saturating_mul(unit_millis)))
}
