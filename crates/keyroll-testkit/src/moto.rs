//! A moto (AWS) server for tests (being written).
