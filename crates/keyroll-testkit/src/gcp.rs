//! A Secret Manager REST server for tests (being written).
