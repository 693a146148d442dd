#!/usr/bin/env bash
# Installs what building and testing Nimbus needs on a fresh Debian machine with a Rust toolchain.
# Idempotent: quick when everything is present.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# Runtimes run on the distribution's real interpreters (never a version-manager shim), and the
# custom-runtime tests use curl in their bootstrap scripts.
[ -x /usr/bin/python3 ] || need_apt+=(python3)
[ -x /usr/bin/node ] || need_apt+=(nodejs)
[ -x /usr/bin/curl ] || need_apt+=(curl)
# Each environment's /tmp is an ext4 image of its EphemeralStorage size.
[ -x /usr/sbin/mkfs.ext4 ] || [ -x /sbin/mkfs.ext4 ] || need_apt+=(e2fsprogs)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "missing: ${need_apt[*]} (install them, or run as root)" >&2
    exit 1
  fi
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
