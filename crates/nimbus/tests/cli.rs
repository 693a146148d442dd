//! End-to-end tests of the nimbus CLI against a real server live in tests/it (they need the server wiring).
