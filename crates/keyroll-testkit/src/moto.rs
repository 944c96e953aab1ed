//! A real moto server (a local AWS API) for tests, on a free loopback port.
//!
//! `moto_server` comes from the `moto[server]` package in the test venv
//! (`scripts/test` installs it). When it is missing, [`Moto::start`] skips the
//! test (returns `None`), or fails it under CI.
//!
//! moto keeps everything in memory, globally per server: give every test its
//! own secret names (or its own server). A [`restart`](Moto::restart) comes
//! back empty on the same port, and the test must seed it again. The server is
//! killed when the value is dropped.
//!
//! Any access key works until IAM enforcement is switched on
//! ([`Moto::start_with_iam_after`]); tests pass [`ACCESS_KEY_ID`] and
//! [`SECRET_ACCESS_KEY`] to the client explicitly instead of changing the
//! process environment.
//!
//! ```no_run
//! let Some(moto) = keyroll_testkit::moto::Moto::start() else { return };
//! assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
//! ```

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::process;
use crate::python::venv_program;

/// The dummy access key id tests give their AWS clients.
pub const ACCESS_KEY_ID: &str = "testing";
/// The dummy secret access key tests give their AWS clients.
pub const SECRET_ACCESS_KEY: &str = "testing";
/// The region tests use.
pub const REGION: &str = "us-east-1";
/// The account id moto reports for everything.
pub const ACCOUNT_ID: &str = "123456789012";

/// How long a (re)started server may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `moto_server`, killed on drop.
pub struct Moto {
    program: PathBuf,
    port: u16,
    child: Option<Child>,
    log: tempfile::NamedTempFile,
    env: Vec<(String, String)>,
}

impl Moto {
    /// Starts a server on a free loopback port and waits until it answers.
    /// `None` when moto is not installed and the test should skip.
    ///
    /// # Panics
    /// When the server cannot be started; the message carries its log.
    pub fn start() -> Option<Self> {
        Self::start_with_env(&[])
    }

    /// Like [`start`](Moto::start), but moto enforces IAM after the first
    /// `actions` requests (`INITIAL_NO_AUTH_ACTION_COUNT`): the test uses those
    /// to seed secrets and create IAM users with policies, and every later
    /// request must be signed by an access key of such a user and allowed by
    /// its policy.
    pub fn start_with_iam_after(actions: u32) -> Option<Self> {
        Self::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", &actions.to_string())])
    }

    /// Starts a server with extra environment variables for moto.
    pub fn start_with_env(env: &[(&str, &str)]) -> Option<Self> {
        let program = venv_program("moto_server")?;
        let mut last_log = String::new();
        for _ in 0..8 {
            let mut server = Self {
                program: program.clone(),
                port: crate::ports::free_ports(1),
                child: None,
                log: tempfile::NamedTempFile::new().expect("temporary log file"),
                env: env
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            };
            match server.launch() {
                Ok(()) => return Some(server),
                // Another test took the port between our probe and the bind: try another.
                Err(log) => last_log = log,
            }
        }
        panic!("moto_server did not start after 8 attempts; last log:\n{last_log}");
    }

    fn launch(&mut self) -> Result<(), String> {
        let mut command = Command::new(&self.program);
        command
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // moto must not pick up the developer's real AWS settings.
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL");
        let (port, log) = (self.port, self.log.path());
        // Our own server answers (moto's banner names our port, and it serves).
        let banner = format!("127.0.0.1:{port}");
        let child = process::spawn_until_ready(command, log, READY_TIMEOUT, || {
            process::read_log(log).contains(&banner) && answers(port)
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL to give AWS clients.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything the server has logged so far (one line per request), for
    /// failure messages.
    pub fn log(&self) -> String {
        process::read_log(self.log.path())
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (as a crash would): connections are refused until
    /// [`restart`](Moto::restart).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (moto keeps no state
    /// across restarts).
    ///
    /// # Panics
    /// When it does not come back (the port was taken meanwhile).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.launch() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(log) if Instant::now() > deadline => {
                    panic!("moto_server did not restart on port {}:\n{log}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

impl fmt::Debug for Moto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Moto")
            .field("endpoint", &self.endpoint())
            .field("running", &self.is_running())
            .finish()
    }
}

/// Whether an HTTP server answers `GET /moto-api/` on `port` with 200.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// A loopback port where nothing listens (bound, then released): requests to
/// it are refused at once. For "dead endpoint" tests.
pub fn closed_port() -> u16 {
    crate::ports::free_ports(1)
}
