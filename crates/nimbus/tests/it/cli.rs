//! The `nimbus` CLI against a real server.
