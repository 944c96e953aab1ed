//! Test support for keyroll: the conformance suite every provider runs, and
//! harnesses for the real external components the tests use (Python peers,
//! servers), started on free loopback ports and stopped on drop.
//!
//! External components come from the project's test environment (`scripts/test`
//! installs them into `.venv`). When one is missing a test skips with a message,
//! except when the `CI` variable is set: then a missing component is a failure.

pub mod conformance;
pub mod faults;
pub mod gcp;
pub mod moto;
pub mod openbao;
mod process;
pub mod python;

/// Installs `ring` as the process's default rustls crypto provider unless one
/// is installed already. Test HTTP clients call it before they are built: in a
/// whole-workspace build reqwest gets rustls without a provider of its own.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
