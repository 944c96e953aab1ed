//! keyroll provider for AWS Secrets Manager: the versions of a secret, with
//! their stage labels, are key versions.
//!
//! `AWSCURRENT` signs, `AWSPREVIOUS` and versions that lost their labels
//! ("deprecated" versions) verify as fallbacks, `AWSPENDING` only verifies.
//! The provider only translates labels into [`Stage`](keyroll_core::Stage)s
//! and reports creation dates; which key signs, and until when the others
//! verify, is decided by keyroll's [`Policy`](keyroll_core::Policy) (a newly
//! seen `AWSCURRENT` is held verify-only for the activation delay, because a
//! rotation Lambda moves `AWSPENDING` to `AWSCURRENT` within seconds).
//!
//! Change detection costs one billed call per refresh while the secret is
//! unchanged: `DescribeSecret` tells which version ids carry which labels;
//! only when that changes does the provider list the versions and read the
//! ones it does not hold yet ([`AwsProvider::api_calls`] counts them).
//!
//! As a URI (`keyroll::open`, the CLI):
//!
//! | URI | meaning |
//! |---|---|
//! | `aws-sm://SECRET_ID` | a secret name or full ARN; credentials and region from the standard chain |
//! | `?region=R` | the region (default: from the ARN, else `AWS_REGION`, profile, IMDS) |
//! | `?field=F` | the secret string is a JSON object; the key is the string in field `F` |
//! | `?endpoint=URL` | another endpoint (a local server); `AWS_ENDPOINT_URL` is honoured too; plain `http://` only to loopback |
//! | `?insecure_http=true` | allows a plain `http://` endpoint on another host |
//!
//! From code, use the builder:
//!
//! ```
//! use keyroll_aws::AwsProvider;
//!
//! let provider = AwsProvider::builder()
//!     .secret_id("prod/myapp/signing-key")
//!     .region("eu-west-1")
//!     .field("key")
//!     .build()?;
//! # let _ = provider;
//! # Ok::<(), keyroll_core::ProviderError>(())
//! ```
//!
//! Building is synchronous and sends nothing: the AWS configuration
//! (credentials, region) is loaded on the first request. Key material never
//! appears in `Debug`, errors or logs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod builder;
mod errors;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod payload;
mod provider;

pub use builder::{
    AwsProviderBuilder, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS,
};
pub use provider::AwsProvider;

/// The AWS SDK types this crate's API uses ([`SdkConfig`](aws_config::SdkConfig)
/// for [`AwsProviderBuilder::sdk_config`]), re-exported so callers use the
/// same versions.
pub use aws_config;
