#!/usr/bin/env bash
# tests/conformance/interpreter/run-against.sh: the code interpreter scenarios, JS and Python, against a
# `stasis server` that is already running.
#
#   tests/conformance/interpreter/run-against.sh URL API_KEY [scenario ...]
#
# Uses the SDKs the conformance suite installs (../js/node_modules, the venv in
# $STASIS_CONFORMANCE_VENV, default ../.venv). Prints the PASS/FAIL lines of both generations
# (interp-js, interp-python); exits non-zero when anything failed. The server must have the
# `code-interpreter-v1` template built (`stasis template build code-interpreter-v1`).

set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
URL=${1:?usage: run-against.sh URL API_KEY [scenario ...]}
KEY=${2:?usage: run-against.sh URL API_KEY [scenario ...]}
shift 2
VENV=${STASIS_CONFORMANCE_VENV:-$HERE/../.venv}

common=(env -u E2B_DOMAIN -u E2B_DEBUG -u NODE_OPTIONS "E2B_API_KEY=$KEY" "E2B_API_URL=$URL" "E2B_SANDBOX_URL=$URL")
status=0
"${common[@]}" STASIS_GEN=interp-js timeout -k 10 600 node "$HERE/test_interpreter.mjs" "$@" || status=1
"${common[@]}" STASIS_GEN=interp-python timeout -k 10 600 "$VENV/bin/python" "$HERE/test_interpreter.py" "$@" || status=1
exit "$status"
