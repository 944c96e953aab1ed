//! `keyroll`: generate keys, check a key source, sign and verify, watch a
//! source for changes, and rotate a key in the store.
//!
//! Exit codes: 0 success; 1 a token that does not verify (bad, expired), or a
//! source that was read but holds no usable key set (weak, empty, malformed);
//! 2 usage, configuration and provider errors (a missing source included).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use keyroll::ops;
use keyroll::{KeySet, KeyStrength, RefreshError, Refresher, Role};

mod agent;
mod args;
#[cfg(feature = "django")]
mod django;
#[cfg(feature = "fernet")]
mod encryption;
#[cfg(feature = "flask")]
mod flask;
#[cfg(feature = "jwt")]
mod jwt;
mod keys;
mod native;
mod watch;

use args::{Cli, Command, Format, cli};
pub(crate) use args::{SignOptions, Source};

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

/// Nothing signs (the source's keys are past their expiry): no usable key set, exit 1.
impl From<keyroll::Closed> for Failure {
    fn from(closed: keyroll::Closed) -> Self {
        Failure::Rejected(closed.to_string())
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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(keyroll::DEFAULT_LOG_FILTER)),
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
            let form = keys::asked_form(&kind)?.unwrap_or_default();
            let key = ops::generate(form, &KeyStrength::default()).map_err(|e| keys::op_failure(e.into()))?;
            println!("{}", String::from_utf8_lossy(key.expose_secret()));
            Ok(())
        }
        Command::Check { source } => keys::check(&source).await,
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
                Format::Keyroll => native::signer(&source, &options).await?.sign(&value)?,
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
                Format::Keyroll => native::verify(&source, &options, max_age, token).await?,
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
            refresher,
            metrics,
            window,
        } => {
            let usage = metrics.map(|url| watch::Usage::new(&url, window)).transpose()?;
            watch::watch(&source, &refresher.0, usage).await
        }
        Command::Rotate {
            source,
            kind,
            key_use,
            promote,
            disable_old,
            if_older_than,
        } => keys::rotate(&source, kind, key_use, promote, disable_old, if_older_than).await,
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
            rotate_every,
            retire_unless_used,
            usage_window,
            once,
        } => {
            let rotation = agent::Rotation {
                every: rotate_every,
                retire_unless_used,
                usage_window,
            };
            agent::agent(&source, &out, interval, rotation, once).await
        }
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

pub(crate) fn builder(source: &Source) -> Result<keyroll::RefresherBuilder, Failure> {
    Ok(source
        .policy
        .0
        .apply(Refresher::builder(keyroll::open(&source.keys)?)))
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
