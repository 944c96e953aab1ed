//! Starting a server process for a test and waiting until it serves.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Everything a server has written to `log` so far.
pub(crate) fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Starts `command` with its output appended to `log`, then waits until
/// `ready()` holds. Returns the running child, or the log when the process
/// exited or `timeout` passed first (the child is then killed).
pub(crate) fn spawn_until_ready(
    mut command: Command,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<Child, String> {
    let out = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .expect("open the server's log file");
    let err = out.try_clone().expect("clone the log handle");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", command.get_program()));
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(child);
        }
        let exited = child.try_wait().ok().flatten().is_some();
        if exited || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(read_log(log));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
