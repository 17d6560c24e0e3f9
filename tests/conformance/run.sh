#!/usr/bin/env bash
# tests/conformance/run.sh: the official E2B SDKs, unmodified, against a real `stasis server`.
#
#   sudo tests/conformance/run.sh [scenario ...]      # e.g. 3-network 5-errors; default: all
#
# Generations (versions pinned in js/package.json + js/package-lock.json and python/requirements.txt):
#   js-current    e2b 2.51.0, @e2b/code-interpreter 2.8.0      E2B_API_URL / E2B_SANDBOX_URL, plain HTTP
#   js-beta       e2b 1.2.0-beta.4, @e2b/code-interpreter 1.2.0-beta.4 (the document's SDK)
#                 E2B_DOMAIN=stasis.test:<port> over HTTPS: a second server with TLS (a throwaway CA
#                 and a *.stasis.test certificate), a `--require` preload that resolves stasis.test
#                 and its sub-domains to 127.0.0.1, NODE_EXTRA_CA_CERTS for the CA
#   python-sync   e2b 2.63.0, e2b-code-interpreter 2.11.5, sync API     E2B_API_URL / E2B_SANDBOX_URL
#   python-async  the same, async API
# Nothing in the SDKs is patched: only name resolution, CA trust and environment variables.
#
# Steps: build `stasis` and `stasis-envd` (cargo, incremental), install the SDKs when missing or
# when their pins changed (npm ci into js/node_modules; a venv, default tests/conformance/.venv),
# build missing templates into the shared cache, start the two servers on free ports with their
# own data directories, run every scenario in every generation, print one line per scenario and
# generation (`PASS js-beta 3-network` / `FAIL python-sync 4-pagination: <reason>`), then the line
# `N passed, N failed`. Exits non-zero when anything failed. Whatever happens, the servers'
# sandboxes are killed, the servers stopped and their data directories removed.
#
# Environment (all optional):
#   STASIS_CONFORMANCE_GENS     generations to run (default: js-current js-beta python-sync python-async)
#   STASIS_CONFORMANCE_JOBS     generations run at once (default 2)
#   STASIS_CONFORMANCE_VENV     the Python venv (default tests/conformance/.venv)
#   STASIS_CONFORMANCE_WORK     where data dirs, certificates and logs go (default /var/lib/stasis-conformance)
#   STASIS_CONFORMANCE_NO_BUILD set to 1 to use target/debug as it is
#   STASIS_CONFORMANCE_KEEP     set to 1 to keep logs (server logs, each generation's stderr)
#   STASIS_CONFORMANCE_DEBUG    set to 1 for progress of each scenario on stderr
#   STASIS_TEMPLATES_DIR        the shared template cache (default /var/lib/stasis/templates)

set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib.sh"

ALL_GENS="js-current js-beta python-sync python-async interp-js interp-python"
ALL_SCENARIOS="1-document 1-document-e2b 2-state 3-network 4-pagination 5-errors 6-timeouts 7-interpreter-state 8-abandoned-pause 9-repeated-cycles 10-egress"
GENS=${STASIS_CONFORMANCE_GENS:-$ALL_GENS}
SCENARIOS=${*:-$ALL_SCENARIOS}
JOBS=${STASIS_CONFORMANCE_JOBS:-2}
VENV=${STASIS_CONFORMANCE_VENV:-$HERE/.venv}
WORK_BASE=${STASIS_CONFORMANCE_WORK:-/var/lib/stasis-conformance}
TEMPLATES_DIR=${STASIS_TEMPLATES_DIR:-/var/lib/stasis/templates}
DOMAIN=stasis.test
STASIS=$ROOT/target/debug/stasis

require_root
for tool in node npm python3 openssl curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: the conformance suite needs it"
done

# --- build ------------------------------------------------------------------------------------
if [ "${STASIS_CONFORMANCE_NO_BUILD:-0}" != 1 ]; then
    require_cargo
    say "building stasis and stasis-envd"
    (cd "$ROOT" && cargo build --locked -q -p stasis -p stasis-envd)
fi
[ -x "$STASIS" ] || die "$STASIS missing"
"$STASIS" server --help >/dev/null 2>&1 || die "$STASIS has no 'server' command yet"

# --- SDKs, installed only when missing or when their pins changed ------------------------------
stamp_ok() { [ -f "$2" ] && [ "$(cat "$2")" = "$(sha256sum "$1" | cut -d' ' -f1)" ]; }
stamp() { sha256sum "$1" | cut -d' ' -f1 >"$2"; }

if ! stamp_ok "$HERE/js/package-lock.json" "$HERE/js/node_modules/.stasis-lock"; then
    say "installing the JS SDKs (npm ci)"
    (cd "$HERE/js" && npm ci --no-audit --no-fund --loglevel=error)
    stamp "$HERE/js/package-lock.json" "$HERE/js/node_modules/.stasis-lock"
fi
if ! stamp_ok "$HERE/python/requirements.txt" "$VENV/.stasis-requirements"; then
    say "installing the Python SDKs into $VENV"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/python/requirements.txt"
    stamp "$HERE/python/requirements.txt" "$VENV/.stasis-requirements"
fi

# --- templates: build what is missing into the shared cache ------------------------------------
say "templates (built once into $TEMPLATES_DIR, reused while their recipe is unchanged)"
"$STASIS" template build --templates-dir "$TEMPLATES_DIR" >/dev/null

# --- work dir, certificates, servers; cleaned up whatever happens ------------------------------
mkdir -p "$WORK_BASE"
# Logs of failed runs are kept; keep the newest five. A kept run holds logs only (its data
# directories were removed), so deleting it is safe.
for old in $(ls -1dt "$WORK_BASE"/run-* 2>/dev/null | tail -n +6); do
    [ -e "$old/plain" ] || [ -e "$old/tls" ] || rm -rf "$old"
done
WORK=$(mktemp -d "$WORK_BASE/run-XXXXXX")
# Sandboxes run as an unprivileged host uid that must traverse the path to their root file system.
chmod 0711 "$WORK_BASE" "$WORK"
RUN_ID=${WORK##*-}
SERVER_PIDS=()
SERVER_DIRS=()
SERVER_URLS=()
API_KEY="stasis-conformance-$(openssl rand -hex 12)"

curl_api() { # url path [curl args...]: a control-plane request to one of our servers
    local url=$1 path=$2
    shift 2
    curl -s --max-time 30 --cacert "$WORK/ca.pem" -H "X-API-KEY: $API_KEY" \
        --resolve "api.$DOMAIN:${url##*:}:127.0.0.1" "$@" "$url$path"
}

sandbox_ids() { # file...: the sandboxID of every sandbox in JSON lists
    python3 - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    try:
        items = json.load(open(path))
    except (OSError, ValueError):
        continue
    for s in items if isinstance(items, list) else []:
        if isinstance(s, dict) and isinstance(s.get("sandboxID"), str):
            print(s["sandboxID"])
PY
}

kill_all_sandboxes() { # url: kill every sandbox the server knows, running or paused
    local url=$1 token="" pages=0 id
    : >"$WORK/left.ids"
    while [ "$pages" -lt 100 ]; do
        pages=$((pages + 1))
        curl_api "$url" "/v2/sandboxes?limit=100${token:+&nextToken=$token}" -D "$WORK/left.headers" \
            -o "$WORK/left.json" || break
        sandbox_ids "$WORK/left.json" >>"$WORK/left.ids"
        token=$(awk 'tolower($1) == "x-next-token:" { print $2 }' "$WORK/left.headers" | tr -d '\r')
        [ -n "$token" ] || break
        token=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$token")
    done
    curl_api "$url" /sandboxes -o "$WORK/left.json" && sandbox_ids "$WORK/left.json" >>"$WORK/left.ids"
    for id in $(sort -u "$WORK/left.ids"); do
        curl_api "$url" "/sandboxes/$id" -X DELETE -o /dev/null --max-time 10 || true
    done
}

remove_data_dir() { # dir: whatever a dead server left behind: runc containers, mounts, files
    local dir=$1 runc_root pid m
    runc_root=/run/stasis/$(printf %s "$dir" | sha256sum | cut -c1-8)
    if [ -d "$runc_root" ] && command -v runc >/dev/null 2>&1; then
        for c in $(runc --root "$runc_root" list -q 2>/dev/null); do
            runc --root "$runc_root" delete -f "$c" >/dev/null 2>&1 || true
        done
        rm -rf "$runc_root"
    fi
    { grep -F " $dir/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$dir"
}

cleanup() {
    local status=$? i pid
    trap - EXIT INT TERM
    set +e # clean up as much as possible, whatever fails
    for f in "$WORK"/*.pid; do # generations still running (interrupted): stop them first
        [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
    done
    for i in "${!SERVER_PIDS[@]}"; do
        pid=${SERVER_PIDS[$i]}
        if kill -0 "$pid" 2>/dev/null; then
            kill_all_sandboxes "${SERVER_URLS[$i]}"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    for dir in "${SERVER_DIRS[@]}"; do remove_data_dir "$dir"; done
    [ "$status" -eq 0 ] || KEEP_LOGS=1
    if [ "${STASIS_CONFORMANCE_KEEP:-0}" = 1 ] || [ -n "${KEEP_LOGS:-}" ]; then
        say "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "test CA and a certificate for $DOMAIN, *.$DOMAIN"
(
    cd "$WORK"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout ca.key -out ca.pem -subj "/CN=Stasis conformance test CA $RUN_ID" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=$DOMAIN" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:$DOMAIN,DNS:*.$DOMAIN,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.pem 2>/dev/null
)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() { # name scheme [server flags...]: starts a server, records it, waits for /health
    local name=$1 scheme=$2 port dir url
    shift 2
    port=$(free_port)
    dir=$WORK/$name
    mkdir -p "$dir"
    local tls=()
    [ "$scheme" = https ] && tls=(--tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key")
    env -u STASIS_TLS_CERT -u STASIS_TLS_KEY -u STASIS_LISTEN -u STASIS_DOMAIN STASIS_API_KEYS="$API_KEY" \
        "$STASIS" server --listen "127.0.0.1:$port" --data-dir "$dir" --templates-dir "$TEMPLATES_DIR" \
        --domain "$DOMAIN:$port" "${tls[@]}" "$@" >"$WORK/$name.log" 2>&1 &
    SERVER_PIDS+=($!)
    SERVER_DIRS+=("$dir")
    if [ "$scheme" = https ]; then url=https://api.$DOMAIN:$port; else url=http://127.0.0.1:$port; fi
    SERVER_URLS+=("$url")
    for _ in $(seq 600); do
        if curl_api "$url" /health -o /dev/null -f 2>/dev/null; then
            say "$name server: $url (data dir $dir)"
            eval "${name^^}_PORT=$port"
            return 0
        fi
        kill -0 "${SERVER_PIDS[-1]}" 2>/dev/null || {
            KEEP_LOGS=1
            tail -n 30 "$WORK/$name.log" >&2
            die "$name server exited during start (log above)"
        }
        sleep 0.5
    done
    KEEP_LOGS=1
    tail -n 30 "$WORK/$name.log" >&2
    die "$name server: no answer on $url/health within 300 s"
}

# The plain server keeps pauses in memory for its default 10 s (the scenarios resume from
# memory); the TLS one writes every checkpoint before the pause answers, so the beta SDK's
# scenarios resume from disk through CRIU.
start_server plain http
needs_tls=0
for g in $GENS; do [ "$g" = js-beta ] && needs_tls=1; done
[ "$needs_tls" = 1 ] && start_server tls https --pause-in-memory-ms off

# --- the generations ---------------------------------------------------------------------------
RESULTS=$WORK/results
: >"$RESULTS"

gen_command() { # gen: the environment and command of one generation, as an array in CMD
    local common=(env -u E2B_API_URL -u E2B_SANDBOX_URL -u E2B_DOMAIN -u E2B_DEBUG -u E2B_ACCESS_TOKEN
        -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS
        "E2B_API_KEY=$API_KEY" "STASIS_RUN_ID=$RUN_ID" "STASIS_GEN=$1")
    local plain=("E2B_API_URL=http://127.0.0.1:$PLAIN_PORT" "E2B_SANDBOX_URL=http://127.0.0.1:$PLAIN_PORT"
        "E2B_DOMAIN=$DOMAIN:$PLAIN_PORT")
    local preload="NODE_OPTIONS=--require $HERE/js/lib/resolve-test-domain.cjs"
    case $1 in
        js-current) CMD=("${common[@]}" "${plain[@]}" "$preload" node "$HERE/js/scenarios.mjs") ;;
        js-beta) CMD=("${common[@]}" "E2B_DOMAIN=$DOMAIN:$TLS_PORT" "NODE_EXTRA_CA_CERTS=$WORK/ca.pem" "$preload"
            node "$HERE/js/scenarios.mjs") ;;
        python-sync) CMD=("${common[@]}" "${plain[@]}" "$VENV/bin/python" "$HERE/python/scenarios_sync.py") ;;
        python-async) CMD=("${common[@]}" "${plain[@]}" "$VENV/bin/python" "$HERE/python/scenarios_async.py") ;;
        # The code interpreter (template code-interpreter-v1, port 49999) through both SDKs.
        interp-js) CMD=("${common[@]}" "${plain[@]}" node "$HERE/interpreter/test_interpreter.mjs") ;;
        interp-python) CMD=("${common[@]}" "${plain[@]}" "$VENV/bin/python" "$HERE/interpreter/test_interpreter.py") ;;
        *) die "unknown generation $1 (known: $ALL_GENS)" ;;
    esac
}

# The interpreter generations have scenarios of their own.
INTERP_SCENARIOS=${STASIS_CONFORMANCE_INTERP_SCENARIOS:-"default-template rich-output error contexts invalid-context interrupt pause-resume"}
# 10-egress needs E2B's network options, which the beta SDK predates; the sync Python API covers
# them for Python.
scenarios_of() {
    case $1 in
        interp-*) echo "$INTERP_SCENARIOS" ;;
        js-beta | python-async) echo "$SCENARIOS" | tr ' ' '\n' | grep -vx 10-egress | tr '\n' ' ' ;;
        *) echo "$SCENARIOS" ;;
    esac
}
dir_of() { case $1 in interp-*) echo "$HERE" ;; *) echo "$HERE/${1%%-*}" ;; esac; }

run_gen() { # gen: runs one generation's scenarios, its result lines to stdout and $RESULTS
    local gen=$1
    gen_command "$gen"
    {
        local status=0
        cd "$(dir_of "$gen")"
        # shellcheck disable=SC2046 # the scenario names are words
        timeout -k 10 480 "${CMD[@]}" $(scenarios_of "$gen") &
        echo $! >"$WORK/$gen.pid"
        wait $! || status=$?
        rm -f "$WORK/$gen.pid"
        echo "$status" >"$WORK/$gen.status"
    } 2>"$WORK/$gen.err" | while IFS= read -r line; do
        case $line in
            PASS\ *|FAIL\ *) printf '%s\n' "$line" | tee -a "$RESULTS" ;;
            *) printf '%s\n' "$line" >>"$WORK/$gen.err" ;;
        esac
    done
}

say "running: $GENS (scenarios: $SCENARIOS; $JOBS at a time)"
started=$SECONDS
for gen in $GENS; do gen_command "$gen"; done # validates the names before anything starts
GEN_PIDS=()
for gen in $GENS; do
    while [ "$(jobs -pr | grep -cvxF "$(printf '%s\n' "${SERVER_PIDS[@]}")")" -ge "$JOBS" ]; do
        sleep 0.5
    done
    run_gen "$gen" &
    GEN_PIDS+=($!)
done
for pid in "${GEN_PIDS[@]}"; do wait "$pid" || true; done

# A scenario without a result line failed too: its process crashed or hung.
for gen in $GENS; do
    for s in $(scenarios_of "$gen"); do
        if ! grep -qE "^(PASS|FAIL) $gen $s(:|$)" "$RESULTS"; then
            why=$(grep -v '^\s*$' "$WORK/$gen.err" 2>/dev/null | tail -n 3 | tr '\n' ' ' | cut -c1-300)
            printf 'FAIL %s %s: no result (the %s run ended with status %s: %s)\n' "$gen" "$s" "$gen" \
                "$(cat "$WORK/$gen.status" 2>/dev/null || echo '?')" "$why" | tee -a "$RESULTS"
        fi
    done
done

for i in "${!SERVER_PIDS[@]}"; do
    kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null || {
        KEEP_LOGS=1
        printf 'FAIL server %s: exited during the run (log: %s)\n' "${SERVER_URLS[$i]}" "$WORK" | tee -a "$RESULTS"
    }
done

passed=$(grep -c '^PASS ' "$RESULTS" || true)
failed=$(grep -c '^FAIL ' "$RESULTS" || true)
say "took $((SECONDS - started)) s; server logs and each generation's stderr: $WORK (kept on failure)"
[ "$failed" -eq 0 ] || KEEP_LOGS=1
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
