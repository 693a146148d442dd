#!/usr/bin/env bash
# The test command: every test of the workspace, unit and integration, against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
# The runtime interface clients have their own suites, in their own languages.
/usr/bin/python3 -m unittest discover -s runtimes/python/tests
/usr/bin/node --test runtimes/node/test/
# Again with the Runtime API connection handed over as an open fd, as Nimbus starts the client.
NIMBUS_TEST_INHERITED_FD=1 /usr/bin/node --test runtimes/node/test/

if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast
fi
