//! `keyroll rotate` against a real OpenBao (Vault API) server: staged
//! activation shown to the operator, and `--disable-old` disabling what the
//! policy retired.

mod common;

use std::process::Output;

use keyroll_testkit::openbao::OpenBao;

fn keyroll(bao: &OpenBao, args: &[&str]) -> Output {
    common::keyroll()
        .args(args)
        .env("VAULT_TOKEN", bao.root_token())
        .env_remove("VAULT_ADDR")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

fn uri(bao: &OpenBao) -> String {
    format!("vault://127.0.0.1:{}/secret/cli-app?tls=false", bao.port())
}

#[test]
fn rotate_publishes_a_pending_version_with_its_activation_moment() {
    let Some(bao) = OpenBao::start() else { return };
    let keys = uri(&bao);
    let first = keyroll(&bao, &["rotate", "--keys", &keys]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("published new key version 1"),
        "{}",
        text(&first.stdout)
    );

    let second = keyroll(&bao, &["rotate", "--keys", &keys]);
    let shown = text(&second.stdout);
    assert!(shown.contains("published new key version 2"), "{shown}");
    assert!(
        shown.contains("it verifies now and starts signing at"),
        "a shared store stages activation: {shown}"
    );
    let check = text(&keyroll(&bao, &["check", "--keys", &keys]).stdout);
    let roles: Vec<&str> = check
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(roles, ["pending", "current"], "{check}");
}

#[test]
fn rotate_disable_old_disables_the_versions_the_policy_retired() {
    let Some(bao) = OpenBao::start() else { return };
    let keys = uri(&bao);
    let now = ["--activation-delay", "0s", "--fallback-window", "0s"];
    for _ in 0..2 {
        assert!(
            keyroll(&bao, &[&["rotate", "--keys", &keys][..], &now[..]].concat())
                .status
                .success()
        );
    }
    let out = keyroll(
        &bao,
        &[&["rotate", "--keys", &keys, "--disable-old"][..], &now[..]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("disabled version 1") && shown.contains("disabled version 2"),
        "{shown}"
    );
    let metadata = bao.bao(&["kv", "metadata", "get", "-format=json", "secret/cli-app"]);
    let deleted = metadata.matches("\"deletion_time\": \"20").count();
    assert_eq!(deleted, 2, "versions 1 and 2 are soft-deleted: {metadata}");
}

#[test]
fn a_vault_that_refuses_the_token_exits_2() {
    let Some(bao) = OpenBao::start() else { return };
    let out = common::keyroll()
        .args(["check", "--keys", &uri(&bao)])
        .env("VAULT_TOKEN", "not-a-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("permission denied"), "{stderr}");
    // keyroll's own message on one line (beside its warning that the URI
    // speaks plain HTTP): no raw log lines of the Vault client
    // (`ERROR rustify::endpoint`, vaultrs), no multi-line server body.
    for raw in ["rustify", "vaultrs", "ERROR", "occurred"] {
        assert!(!stderr.contains(raw), "{raw}: {stderr}");
    }
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.contains("WARN")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("keyroll: error: "), "{stderr}");
}

#[test]
fn a_plain_http_vault_reached_over_https_names_tls_false() {
    let Some(bao) = OpenBao::start() else { return };
    // The dev server speaks plain HTTP; without ?tls=false keyroll speaks TLS.
    let keys = format!("vault://127.0.0.1:{}/secret/cli-app", bao.port());
    let out = keyroll(&bao, &["check", "--keys", &keys]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("plain HTTP"), "{stderr}");
    assert!(stderr.contains("?tls=false"), "{stderr}");
    assert!(!stderr.contains("InvalidContentType"), "{stderr}");
}
