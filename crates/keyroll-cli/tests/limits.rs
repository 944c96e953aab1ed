//! Settings at the edge of what a duration holds never crash the command:
//! up to a century they are served, beyond it refused as bad input.

use std::process::Command;

#[test]
fn a_century_is_served_and_a_longer_window_or_delay_refused_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(
        &path,
        "limits-key-B-0123456789abcdefghijklmnopqrstuv\nlimits-key-A-0123456789abcdefghijklmnopqrstuv\n",
    )
    .unwrap();
    let uri = format!("file://{}", path.display());
    let keyroll = |flag: &str, value: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .args(["check", "--keys", &uri, flag, value])
            .env_remove("KEYROLL_KEYS")
            .output()
            .expect("keyroll runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{flag} {value}: {stderr}");
        (out.status.code(), stderr)
    };
    // The longest duration any option accepts (a century) is served.
    for flag in ["--fallback-window", "--activation-delay"] {
        let (code, stderr) = keyroll(flag, "36500d");
        assert_eq!(code, Some(0), "{flag} 36500d: {stderr}");
    }
    // Beyond it, up to what no duration holds, a usage error names the option.
    for (flag, value, name) in [
        ("--fallback-window", "36501d", "fallback_window"),
        ("--fallback-window", "999999999999999999d", "fallback_window"),
        ("--fallback-window", "18446744073709551615s", "fallback_window"),
        ("--activation-delay", "18446744073709551615s", "activation_delay"),
    ] {
        let (code, stderr) = keyroll(flag, value);
        assert_eq!(code, Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(&format!("{name} must be at most 3153600000 seconds")),
            "{flag} {value}: {stderr}"
        );
    }
}
