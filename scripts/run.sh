#!/usr/bin/env bash
# Run Stasis on this machine: installs what is missing (scripts/setup.sh), builds the release
# binaries, builds the default templates on first start, then runs the runtime demo.
#
#   sudo scripts/run.sh
#
# Environment: STASIS_DATA_DIR (default /var/lib/stasis) and the other STASIS_* settings of the
# README's configuration table.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_root
scripts/setup.sh
require_cargo
say "building stasis (release)"
cargo build --release --locked -p stasis -p stasis-envd
say "building default templates (first start only; about a minute)"
target/release/stasis template build
say "starting"
exec target/release/stasis demo
