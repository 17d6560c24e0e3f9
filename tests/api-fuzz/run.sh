#!/usr/bin/env bash
# tests/api-fuzz/run.sh: schemathesis against the OpenAPI document a real `stasis server` serves.
# Every generated request (valid and invalid bodies, paths, queries) must get an answer that is not
# a 5xx. Seeded, so a run is repeatable; STASIS_FUZZ_EXAMPLES sets examples per operation.
#
#   sudo tests/api-fuzz/run.sh
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib.sh"
require_root

VENV=${STASIS_FUZZ_VENV:-$HERE/.venv}
STAMP=$VENV/.requirements.sha256
want=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    say "installing schemathesis into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" || die "pip install of schemathesis failed (is PyPI reachable?)"
    echo "$want" >"$STAMP"
fi

STASIS=$ROOT/target/debug/stasis
[ -x "$STASIS" ] || die "$STASIS is missing: build it with cargo build -p stasis -p stasis-envd"
DATA=$(mktemp -d /var/lib/stasis-fuzz.XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KEY=fuzz-key
URL=http://127.0.0.1:$PORT
STASIS_API_KEYS=$KEY STASIS_LOG=warn "$STASIS" --data-dir "$DATA" --templates-dir "${STASIS_TEMPLATES_DIR:-/var/lib/stasis/templates}" \
    server --listen "127.0.0.1:$PORT" >"$DATA.log" 2>&1 &
SERVER=$!
cleanup() {
    # Whatever the fuzzer managed to create goes, then the server and its data.
    for id in $(curl -s -H "X-API-KEY: $KEY" "$URL/v2/sandboxes?limit=1000" | python3 -c 'import json, sys; [print(s["sandboxID"]) for s in json.load(sys.stdin)]' 2>/dev/null); do
        curl -s -o /dev/null -X DELETE -H "X-API-KEY: $KEY" "$URL/sandboxes/$id" || true
    done
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$DATA" "$DATA.log"
}
trap cleanup EXIT
for _ in $(seq 1 600); do curl -sf "$URL/health" >/dev/null && break; sleep 0.5; done
curl -sf "$URL/health" >/dev/null || { cat "$DATA.log" >&2; die "the server did not start"; }

EXAMPLES=${STASIS_FUZZ_EXAMPLES:-30}
say "schemathesis: $EXAMPLES examples per operation, no 5xx allowed"
"$VENV/bin/schemathesis" run "$URL/openapi.json" -H "X-API-KEY: $KEY" --checks not_a_server_error \
    --max-examples "$EXAMPLES" --seed 246361736917690423817596683066894774843 --no-color 2>&1 | tail -n 25
