//! Settings at the edge of what a duration holds never crash the command.

use std::process::Command;

#[test]
fn a_huge_fallback_window_or_activation_delay_is_served_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(
        &path,
        "limits-key-B-0123456789abcdefghijklmnopqrstuv\nlimits-key-A-0123456789abcdefghijklmnopqrstuv\n",
    )
    .unwrap();
    let uri = format!("file://{}", path.display());
    for (flag, value) in [
        ("--fallback-window", "999999999999999999d"),
        ("--fallback-window", "18446744073709551615s"),
        ("--activation-delay", "18446744073709551615s"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .args(["check", "--keys", &uri, flag, value])
            .env_remove("KEYROLL_KEYS")
            .output()
            .expect("keyroll runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{flag} {value}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{flag} {value}: {stderr}");
    }
}
