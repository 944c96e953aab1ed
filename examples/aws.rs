//! A service that signs with the key in AWS Secrets Manager and follows
//! rotations live.
//!
//! Against a local moto server (or real AWS: leave out the endpoint and the
//! dummy credentials):
//!
//! ```sh
//! moto_server -p 5000 &
//! export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
//! export AWS_ENDPOINT_URL=http://127.0.0.1:5000
//! aws secretsmanager create-secret --name myapp/signing-key --secret-string "$(head -c 32 /dev/urandom | base64)"
//! cargo run --features aws --example aws                     # in another terminal:
//! keyroll rotate --keys aws-sm://myapp/signing-key --promote   # or a rotation Lambda, or:
//! aws secretsmanager put-secret-value --secret-id myapp/signing-key --secret-string "$(head -c 32 /dev/urandom | base64)"
//! ```
//!
//! Every second the example prints which version signs, the role of each
//! version, whether a token signed at start-up still verifies, and how many
//! (billed) API calls the provider has made. After a rotation the new
//! `AWSCURRENT` is pending for one poll interval plus a clock-skew margin,
//! then signs; the start-up token keeps verifying with the old version and
//! asks for re-signing. Give another source as the first argument, such as
//! `aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:myapp/key-AbCdEf?field=key`.

use std::time::{Duration, SystemTime};

use keyroll::aws::AwsProvider;
use keyroll::raw::FromSource;
use keyroll::{KeyProvider, Policy, Refresher, Signer};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "aws-sm://myapp/signing-key".to_owned());
    let provider = AwsProvider::from_uri(&uri)?;
    println!("reading {}", provider.source());

    // A short poll interval for the demo; the activation delay follows from it.
    let refresher = Refresher::builder(provider.clone())
        .policy(Policy::default())
        .interval(Duration::from_secs(5))
        .start()
        .await?;
    let signer = Signer::new(refresher.keyring().clone()).with_salt("example");
    let first = signer.sign("signed at start-up")?;

    loop {
        let keys = refresher.keyring().load();
        let now = SystemTime::now();
        let roles: Vec<String> = keys
            .keys()
            .iter()
            .map(|k| format!("{}={}", short(k.id()), k.role_at(now)))
            .collect();
        let verified = signer.verify(&first);
        println!(
            "signing with {} | keys: {} | start-up token: {} | health: {:?} | API calls: {}",
            short(keys.signing_key().id()),
            roles.join(" "),
            match &verified {
                Ok(v) if v.needs_resign() => format!("verifies with {}, re-sign it", short(&v.key.id)),
                Ok(v) => format!("verifies with {}", short(&v.key.id)),
                Err(e) => format!("rejected ({e})"),
            },
            refresher.status().health,
            provider.api_calls(),
        );
        drop(keys);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    refresher.shutdown().await;
    Ok(())
}

/// The first 8 characters of an AWS version id (a UUID), enough to tell them apart.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
