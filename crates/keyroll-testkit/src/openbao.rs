//! A real OpenBao (Vault API) dev server for tests (being written).
