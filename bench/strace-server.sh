#!/usr/bin/env bash
# Trace the syscalls of a running `stasis server`'s own threads (not of its children: CRIU must
# be free to ptrace the sandbox's processes), one strace per thread, re-scanning for new threads
# every 50 ms (tokio's blocking pool starts threads on demand). Absolute timestamps (-ttt) and
# durations (-T), so the files merge into one timeline:
#
#   bench/strace-server.sh PID OUTDIR &     # stop it with kill -INT <the script's pid>
#   sort -n OUTDIR/*.trace | less
#
# Used for the profile in bench/results/api.md: it shows where the server spends a pause or a
# resume outside CRIU (SQLite commits, spawning and waiting for runc, fsync/syncfs, unmounting).
set -Eeuo pipefail
pid=${1:?server pid}
out=${2:?output dir}
mkdir -p "$out"
declare -A traced
tracers=()
stop() {
    # Our own tracers only: the ones we started, and any strace that is still our child.
    for t in "${tracers[@]}" $(pgrep -P $$ -x strace || true); do kill -TERM "$t" 2>/dev/null || true; done
    wait || true
    exit 0
}
trap stop INT TERM
while kill -0 "$pid" 2>/dev/null; do
    for task in /proc/"$pid"/task/*; do
        tid=${task##*/}
        if [[ -z ${traced[$tid]:-} ]]; then
            traced[$tid]=1
            # Tag each line with the tid, after the timestamp, so the merged timeline sorts by
            # time and says which thread did what.
            strace -qq -ttt -T -s 96 -p "$tid" -o >(sed -E "s/^([0-9.]+) /\1 [$tid] /" >"$out/$tid.trace") 2>/dev/null &
            tracers+=($!)
        fi
    done
    sleep 0.05
done
stop
