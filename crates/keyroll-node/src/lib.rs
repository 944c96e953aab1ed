//! The native half of the `keyroll` npm package (`keyroll.node`).
//!
//! A [`NativeRing`](ring::NativeRing) shares, with every other ring of the
//! process opened on the same URI and options (`worker_threads` too), one
//! keyroll refresher running on its own tokio threads: polling never blocks
//! the event loop. The JavaScript half (`index.js`) keeps `ring.secrets` in
//! step with what the core serves and maps errors to classes; every rule
//! (staging, fail closed, revocation, expiry, the options' bounds) is the
//! Rust core's.

// napi-derive's generated glue is FFI into Node-API.
#![allow(unsafe_code)]
// Its types are JavaScript classes and objects, never printed from Rust;
// without Debug none can print key material by mistake.
#![allow(missing_debug_implementations)]
// napi-rs registers the exports only outside `cfg(test)`: in a test build
// (clippy --all-targets) everything would read as unused.
#![cfg_attr(test, allow(dead_code))]

mod errors;
mod formats;
mod ops;
mod options;
mod ring;
