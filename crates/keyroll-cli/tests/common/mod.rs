//! The `keyroll` binary under test.

use std::path::PathBuf;
use std::process::Command;

/// The variable naming an installed `keyroll` to test instead of the one
/// cargo built for these tests. `scripts/test` installs the command with the
/// README's install line and points this at it, so the tests run what users
/// get.
pub const INSTALLED: &str = "KEYROLL_CLI";

/// The binary under test: `$KEYROLL_CLI` when set (it must exist), else the
/// one cargo built for this test run.
pub fn binary() -> PathBuf {
    match std::env::var_os(INSTALLED) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{INSTALLED}={} is not a file; scripts/test installs it",
                path.display()
            );
            path
        }
        None => PathBuf::from(env!("CARGO_BIN_EXE_keyroll")),
    }
}

/// A `keyroll` command with no key source from the environment.
pub fn keyroll() -> Command {
    let mut command = Command::new(binary());
    command.env_remove("KEYROLL_KEYS");
    command
}
