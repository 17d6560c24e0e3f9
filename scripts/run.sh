#!/usr/bin/env bash
# Run Stasis on this machine: installs what is missing (scripts/setup.sh), builds the release
# binaries, then starts `stasis server` on 127.0.0.1:3000 (it builds the default templates on
# first start and prints a generated API key unless STASIS_API_KEYS is set).
#
#   sudo scripts/run.sh
#
# Arguments are passed to `stasis server` (e.g. --listen 0.0.0.0:3000). Environment: the STASIS_*
# settings of the README's configuration table.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_root
scripts/setup.sh
require_cargo
say "building stasis (release)"
cargo build --release --locked -p stasis -p stasis-envd
say "starting stasis server"
exec target/release/stasis server "$@"
