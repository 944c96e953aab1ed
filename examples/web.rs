//! Placeholder for the web example (being written).
fn main() {}
