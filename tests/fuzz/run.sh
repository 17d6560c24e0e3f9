#!/usr/bin/env bash
# tests/fuzz/run.sh: libFuzzer, through cargo-fuzz, on the targets in fuzz/: the Connect
# envelope codec, envd's request and reply messages, and the whole REST API on fakes. No panic,
# no failed check (no 5xx, E2B-shaped errors, no stuck sandbox; see each target's header).
#
# Each target runs for STASIS_FUZZ_SECS (default 30) from the committed seeds in
# fuzz/seeds/<target> and whatever earlier runs on this machine found (fuzz/corpus/<target>,
# not committed). A crash stops the run with the input saved in fuzz/artifacts/<target>/;
# replay it with
#     fuzz/target/x86_64-unknown-linux-gnu/release/<target> fuzz/artifacts/<target>/<file>
#
# Stable Rust is enough: with `--sanitizer none`, cargo-fuzz adds only stable flags
# (-Cpasses=sancov-module and -Cllvm-args for libFuzzer's coverage), so no nightly and no
# RUSTC_BOOTSTRAP. libfuzzer-sys compiles libFuzzer from its C++ sources (g++).
#
#   tests/fuzz/run.sh                    # root is not needed; nothing here touches the system
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib.sh"
require_cargo

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" \
        || die "cargo install cargo-fuzz failed (is crates.io reachable? see the output above)"
fi
command -v c++ >/dev/null 2>&1 || die "no C++ compiler: libfuzzer-sys builds libFuzzer from C++ (apt-get install g++)"

SECS=${STASIS_FUZZ_SECS:-30}
TARGET_DIR=${STASIS_FUZZ_TARGET_DIR:-$ROOT/fuzz/target}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
TARGETS=(connect_envelope envd_messages rest_api)
cd "$ROOT/fuzz"

# cargo fuzz has no --locked: check the lock file first, so a stale one fails here instead of
# being rewritten.
cargo metadata --locked --format-version 1 >/dev/null || die "fuzz/Cargo.lock is out of date: run cargo update -w in fuzz/ and commit it"
say "building ${TARGETS[*]} (libFuzzer, coverage instrumented, no sanitizer)"
build_log=$(mktemp)
# 16 codegen units instead of cargo-fuzz's 1: a build several times faster on 2 cores, for
# somewhat slower runs, which a CI-sized run does not notice.
if ! cargo fuzz build --sanitizer none --codegen-units 16 --target-dir "$TARGET_DIR" >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    rm -f "$build_log"
    die "building the fuzz targets failed (output above; cd fuzz && cargo fuzz build -s none to retry)"
fi
rm -f "$build_log"

summary=()
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    say "fuzzing $t for $SECS s"
    log=$(mktemp)
    # The first directory collects what the run finds; the seeds are only read.
    if ! "$TARGET_DIR/$TRIPLE/release/$t" "corpus/$t" "seeds/$t" -dict=json.dict -max_total_time="$SECS" \
        -timeout=10 -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        rm -f "$log"
        die "fuzz target $t failed; the input is in fuzz/artifacts/$t/ (replay: $TARGET_DIR/$TRIPLE/release/$t fuzz/artifacts/$t/<file>)"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    rm -f "$log"
    summary+=("$(printf '%-18s %10s execs  %6s edges  %5s inputs in corpus' "$t" "${execs:-?}" "${cov:-?}" "$(ls "corpus/$t" | wc -l)")")
done
say "fuzzing done, no crash:"
printf '    %s\n' "${summary[@]}" >&2
