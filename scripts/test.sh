#!/usr/bin/env bash
# Run the whole test suite: installs what is missing (scripts/setup.sh), builds the templates the
# tests use (reusing a build from an earlier run when its recipe is unchanged), runs clippy and
# every test, as root, against real runc and CRIU, then the official E2B SDKs (JS and Python,
# pinned in tests/conformance) against a real server. STASIS_CYCLES sets the pause/resume cycle
# count of the soak test (default 100; 1000 for the full soak); STASIS_LOAD_SECS the length of
# the load test (default 30; 120 for the full run); STASIS_FUZZ_SECS the time per fuzz target
# (default 30).
#
#   sudo scripts/test.sh
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_root
scripts/setup.sh
require_cargo

# Both lock files up to date, checked before anything long runs: fuzz/ has its own (it is not a
# workspace member) and it follows the workspace crates' dependencies.
cargo metadata --locked --format-version 1 >/dev/null || die "Cargo.lock is out of date: run cargo update -w and commit it"
(cd fuzz && cargo metadata --locked --format-version 1 >/dev/null) \
    || die "fuzz/Cargo.lock is out of date (a workspace crate's dependencies changed): run cargo update -w in fuzz/ and commit it"

say "building (debug, all targets)"
cargo build --locked --workspace --all-targets

say "building default templates (reused when unchanged)"
export STASIS_TEMPLATES_DIR=${STASIS_TEMPLATES_DIR:-/var/lib/stasis/templates}
target/debug/stasis --data-dir /var/lib/stasis template build

say "clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

say "tests"
export STASIS_TEST_DATA_DIR=${STASIS_TEST_DATA_DIR:-/var/lib/stasis-test}
cargo test --locked --workspace --no-fail-fast -- --test-threads "$(nproc)"

say "API fuzzing: schemathesis against the served OpenAPI document"
tests/api-fuzz/run.sh

say "fuzzing: libFuzzer on the Connect codec, envd's messages and the REST API"
tests/fuzz/run.sh

say "conformance: the official E2B SDKs against a real server"
STASIS_CONFORMANCE_NO_BUILD=1 tests/conformance/run.sh
