//! Test support for keyroll: the conformance suite every provider runs, and
//! harnesses for the real external components the tests use (Python peers,
//! servers), started on free loopback ports and stopped on drop.
//!
//! External components come from the project's test environment (`scripts/test`
//! installs them into `.venv`). When one is missing a test skips with a message,
//! except when the `CI` variable is set: then a missing component is a failure.

pub mod conformance;
pub mod gcp;
pub mod moto;
pub mod openbao;
pub mod python;
