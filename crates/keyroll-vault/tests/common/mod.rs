//! Shared set-up for the tests that run against a real OpenBao dev server.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use keyroll_testkit::openbao::OpenBao;
use keyroll_vault::{Auth, Credential, VaultProvider, VaultProviderBuilder};

/// The KV v2 mount every dev server has.
pub const MOUNT: &str = "secret";

/// A builder for `path` on `bao`, authenticated with the root token, with a
/// short request timeout so outages show up quickly.
pub fn builder(bao: &OpenBao, path: &str) -> VaultProviderBuilder {
    VaultProvider::builder()
        .address(bao.address())
        .secret(MOUNT, path)
        .auth(Auth::token(Credential::value(bao.root_token())))
        .attempt_timeout(Duration::from_secs(1))
}

/// A root-token provider for `path` on `bao`.
pub fn provider(bao: &OpenBao, path: &str) -> VaultProvider {
    builder(bao, path).build().expect("provider builds")
}

/// Writes `key` (field `key`) as the newest version of `secret/<path>` and
/// returns the version number Vault assigned.
pub fn put(bao: &OpenBao, path: &str, key: &str) -> u64 {
    let out = bao.bao(&[
        "kv",
        "put",
        "-format=json",
        &format!("{MOUNT}/{path}"),
        &format!("key={key}"),
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("kv put prints JSON");
    json["data"]["version"]
        .as_u64()
        .expect("kv put reports the version")
}

/// The field `key` of version `version`.
pub fn get(bao: &OpenBao, path: &str, version: u64) -> String {
    bao.bao(&[
        "kv",
        "get",
        "-field=key",
        &format!("-version={version}"),
        &format!("{MOUNT}/{path}"),
    ])
}

/// A policy that may only read `secret/<path>` (data and metadata).
pub fn read_only_policy(bao: &OpenBao, name: &str, path: &str) {
    let policy = format!(
        "path \"{MOUNT}/data/{path}\" {{ capabilities = [\"read\"] }}\n\
         path \"{MOUNT}/metadata/{path}\" {{ capabilities = [\"read\"] }}\n"
    );
    bao.bao_with_stdin(&["policy", "write", name, "-"], &policy);
}

/// Creates a token with `policies` (comma-separated) and extra `bao token
/// create` flags, and returns it.
pub fn token(bao: &OpenBao, policies: &str, flags: &[&str]) -> String {
    let mut args = vec!["token", "create", "-field=token", "-policy", policies];
    args.extend_from_slice(flags);
    bao.bao(&args).trim().to_owned()
}
