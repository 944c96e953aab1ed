//! A service that enables every store builds one TLS stack: rustls with the
//! ring crypto provider (issue: with `aws` and `vault`/`gcp` together the
//! build used to compile aws-lc-rs and its C library as well).

use std::process::Command;

/// `cargo tree` of this crate with every store, inverted on `package`
/// (normal dependencies only: what a service compiles).
fn dependents_of(package: &str) -> (bool, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "-p", "keyroll"])
        .args([
            "--no-default-features",
            "--features",
            "env,file,docker,vault,aws,gcp",
        ])
        .args(["-e", "normal", "-i", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let text =
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success() && !output.stdout.is_empty(), text)
}

#[test]
fn every_store_together_builds_rustls_with_ring_only() {
    let (found, tree) = dependents_of("ring");
    assert!(found && tree.contains("rustls"), "{tree}");
    for store in ["keyroll-aws", "keyroll-vault", "keyroll-gcp"] {
        assert!(
            tree.contains(store),
            "{store} does not use ring's rustls:\n{tree}"
        );
    }
    let (found, tree) = dependents_of("aws-lc-rs");
    assert!(
        !found,
        "aws-lc-rs is compiled into a service with every store:\n{tree}"
    );
}
