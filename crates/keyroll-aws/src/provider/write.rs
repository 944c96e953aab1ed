//! What [`AwsProvider`] writes: a new version under a label, and the
//! `ClientRequestToken` that makes `publish_if` one version per predecessor.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::primitives::Blob;
use keyroll_core::remote::JsonSecret;
use keyroll_core::{KeyMaterial, ProviderError, Published};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::AwsProvider;

/// The `ClientRequestToken` of the version that follows `expected` in
/// `secret` (`None`: the first): a UUID from SHA-256 of both, the same for
/// every writer.
pub(super) fn successor_token(secret: &str, expected: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"keyroll successor of\0")
        .chain_update(secret.as_bytes())
        .chain_update(b"\0")
        .chain_update(expected.unwrap_or_default().as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

impl AwsProvider {
    /// The version labelled `label`, if any.
    pub(super) async fn labelled(
        &self,
        client: &Client,
        label: &str,
    ) -> Result<Option<String>, ProviderError> {
        let stages = self.describe(client).await?;
        Ok(stages
            .into_iter()
            .find(|(_, labels)| labels.iter().any(|l| l == label))
            .map(|(id, _)| id))
    }

    /// Writes `material` as a new version labelled `stage`, with `token` as its id.
    pub(super) async fn put(
        &self,
        material: &KeyMaterial,
        token: &str,
        stage: &str,
    ) -> Result<Published, ProviderError> {
        let client = self.client().await?;
        let secret = &self.inner.secret_id;
        let request = client
            .put_secret_value()
            .secret_id(secret)
            .client_request_token(token)
            .version_stages(stage);
        let text = std::str::from_utf8(material.expose_secret());
        let request = match (&self.inner.field, text) {
            (None, Ok(text)) => request.secret_string(text),
            (None, Err(_)) => request.secret_binary(Blob::new(material.expose_secret().to_vec())),
            (Some(field), Err(_)) => {
                return Err(ProviderError::invalid(format!(
                    "the new key is not UTF-8 text, so it cannot go into JSON field `{field}` of AWS secret `{secret}`; \
                     generate a text key or leave `field` out"
                )));
            }
            (Some(field), Ok(text)) => {
                let mut object = match self.current_string(client).await? {
                    None => JsonSecret::from_value(Value::Object(Map::new())),
                    Some(current) => JsonSecret::parse(&current).map_err(|problem| {
                        ProviderError::invalid(format!(
                            "the current version of AWS secret `{secret}` {problem}, so field `{field}` cannot be set"
                        ))
                    })?,
                };
                let Value::Object(map) = object.value_mut() else {
                    return Err(ProviderError::invalid(format!(
                        "the current version of AWS secret `{secret}` is not a JSON object, so field `{field}` cannot be set"
                    )));
                };
                map.insert(field.clone(), Value::String(text.to_owned()));
                let body = Zeroizing::new(object.value().to_string());
                request.secret_string(body.as_str())
            }
        };
        let output = self.call("PutSecretValue", request.send()).await?;
        let id = output.version_id().unwrap_or(token).to_owned();
        // PutSecretValue does not say when; GetSecretValue does (best effort).
        let created = match self.read_version(client, &id).await {
            Ok(held) => {
                let created = held.created;
                self.inner.cache.lock().await.held.insert(id.clone(), held);
                created
            }
            Err(_) => None,
        };
        Ok(Published::new(id, created))
    }

    /// Creates the secret with `material` as its first (current) version,
    /// `token` as the version's id: what the first key of an absent secret
    /// does. A second creator gets a [`Conflict`](keyroll_core::ProviderErrorKind::Conflict).
    pub(super) async fn create(
        &self,
        material: &KeyMaterial,
        token: &str,
    ) -> Result<Published, ProviderError> {
        let client = self.client().await?;
        let secret = &self.inner.secret_id;
        if secret.starts_with("arn:") {
            return Err(ProviderError::not_found(format!(
                "AWS secret `{secret}` does not exist, and a secret named by its ARN cannot be created: \
                 create it, or name it by its name"
            )));
        }
        let text = std::str::from_utf8(material.expose_secret());
        let request = client.create_secret().name(secret).client_request_token(token);
        let body;
        let request = match (&self.inner.field, text) {
            (None, Ok(text)) => request.secret_string(text),
            (None, Err(_)) => request.secret_binary(Blob::new(material.expose_secret().to_vec())),
            (Some(field), Ok(text)) => {
                let mut object = Map::new();
                object.insert(field.clone(), Value::String(text.to_owned()));
                body = Zeroizing::new(Value::Object(object).to_string());
                request.secret_string(body.as_str())
            }
            (Some(field), Err(_)) => {
                return Err(ProviderError::invalid(format!(
                    "the new key is not UTF-8 text, so it cannot go into JSON field `{field}` of AWS secret `{secret}`; \
                     generate a text key or leave `field` out"
                )));
            }
        };
        let output = self.call("CreateSecret", request.send()).await?;
        let id = output.version_id().unwrap_or(token).to_owned();
        tracing::info!(secret = %secret, "created the secret with its first key");
        Ok(Published::new(id, None))
    }
}
