"""Nimbus Python runtime interface client (stdlib only); see runtimes/README.md."""
