//! The conformance suite every provider runs (being written).
