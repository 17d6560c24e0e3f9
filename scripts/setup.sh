#!/usr/bin/env bash
# scripts/setup.sh: install what Stasis needs on a Debian 12 (bookworm) host.
#
#   sudo scripts/setup.sh [--quiet] [--rebuild-criu]
#
# What it does, each step checked first and skipped when already done:
#   1. apt: runc, debootstrap, iproute2, nftables, iptables, a C toolchain and CRIU's build dependencies
#      (only the missing ones; `apt-get update` runs at most once, and only if something is missing).
#   2. CRIU >= 4.2 in /usr/local/sbin. Debian 12's own CRIU (3.17) does not work on this kernel, so
#      the upstream tarball of Debian's `criu` source package from `sid` is fetched through a
#      *private* apt configuration (the system's own apt sources are never touched) and built with
#      `make criu`. Downloads and the build tree live in /var/cache/stasis/criu, so a rerun reuses them.
#   3. Host checks: user namespaces, overlayfs, nftables, `runc --version`, `criu check`.
#
# Runs as root, non-interactively (CI=true, no stdin is fine). Exits non-zero with a message on the
# first problem. --quiet prints only problems. Logs go to /var/log/stasis/.
#
# Environment (all optional):
#   STASIS_CACHE_DIR      cache root (default /var/cache/stasis)
#   STASIS_LOG_DIR        log directory (default /var/log/stasis)
#   STASIS_DEBIAN_MIRROR  Debian mirror URI for the CRIU source (default: read from the apt sources)
#   STASIS_APT_KEYRING    keyring used to verify sid (default /usr/share/keyrings/debian-archive-keyring.gpg)

set -Eeuo pipefail

readonly CRIU_MIN_VERSION=4.2
readonly CRIU_PREFIX=/usr/local
readonly PROG=${0##*/}

QUIET=0
REBUILD_CRIU=0

usage() {
    sed -n '2,22s/^# \{0,1\}//p' "$0"
}

for arg in "$@"; do
    case $arg in
        -q|--quiet) QUIET=1 ;;
        --rebuild-criu) REBUILD_CRIU=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "$PROG: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

# ---------------------------------------------------------------------------------------------
# Output helpers. `step` lines are hidden by --quiet; warnings and errors are always printed.

step() { [ "$QUIET" -eq 1 ] || printf '%s: %s\n' "$PROG" "$*"; }
ok()   { [ "$QUIET" -eq 1 ] || printf '%s: ok   %s\n' "$PROG" "$*"; }
warn() { printf '%s: WARNING: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

# Show the end of a log file on stderr, then fail with its path.
die_log() {
    local log=$1; shift
    if [ -s "$log" ]; then
        printf '%s: ---- last lines of %s ----\n' "$PROG" "$log" >&2
        tail -n 25 "$log" | sed 's/^/    /' >&2
        printf '%s: ----\n' "$PROG" >&2
    fi
    die "$* (full log: $log)"
}

# Anything that fails without its own message still says where it happened.
trap 'rc=$?; printf "%s: ERROR: unexpected failure (exit %s) at line %s: %s\n" "$PROG" "$rc" "$LINENO" "$BASH_COMMAND" >&2; exit "$rc"' ERR

# sort -V based comparison: is version $1 >= version $2 ?
version_ge() { printf '%s\n%s\n' "$2" "$1" | sort -V -C; }

# ---------------------------------------------------------------------------------------------
# 0. Preconditions: root, a Debian-like system, one instance at a time.

if [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0${*:+ $*})"
fi

for tool in apt-get dpkg-query dpkg; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: this script supports Debian 12 (bookworm) only"
done

if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    os_id=$(. /etc/os-release && echo "${ID:-}:${VERSION_ID:-}")
    [ "$os_id" = "debian:12" ] || warn "this script targets Debian 12, this host is '$os_id'; continuing"
fi

CACHE_ROOT=${STASIS_CACHE_DIR:-/var/cache/stasis}
LOG_DIR=${STASIS_LOG_DIR:-/var/log/stasis}
mkdir -p "$CACHE_ROOT" "$LOG_DIR"

# README's run and test commands (and CI) may start this concurrently: serialise.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_ROOT/.setup.lock"
    if ! flock -n 9; then
        step "another setup.sh is running; waiting for it"
        flock 9
    fi
fi

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C
APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 -o quiet=1)

# apt-get with logging. `DPkg::Lock::Timeout` only covers the dpkg lock; apt 2.6's `update` does not
# wait for the lists lock, so retry on "Could not get lock" for up to 10 minutes as well.
apt_logged() {
    local log=$1; shift
    local waited=0
    while :; do
        printf '\n==== %s: apt-get %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log"
        local out
        out=$(mktemp)
        if apt-get "${APT_OPTS[@]}" "$@" </dev/null >"$out" 2>&1; then
            cat "$out" >>"$log"; rm -f "$out"
            return 0
        fi
        cat "$out" >>"$log"
        if grep -q 'Could not get lock' "$out" && [ "$waited" -lt 600 ]; then
            rm -f "$out"
            [ "$waited" -gt 0 ] || step "apt is busy (another apt/dpkg is running); waiting up to 10 min"
            sleep 5; waited=$((waited + 5))
            continue
        fi
        rm -f "$out"
        return 1
    done
}

APT_SIG_ERRORS='NO_PUBKEY|EXPKEYSIG|BADSIG|GPG error|is not signed|signatures were invalid|signatures couldn.t be verified'

# Explain the usual reasons an apt command failed, based on its log.
apt_failure_reason() {
    local log=$1
    if grep -Eq 'Temporary failure resolving|Could not resolve|Could not connect|Connection failed|Unable to connect|Network is unreachable|Connection timed out' "$log"; then
        echo "no package registry reachable (Debian mirror unreachable)"
    elif grep -Eq "$APT_SIG_ERRORS" "$log"; then
        echo "repository signature could not be verified"
    elif grep -q 'dpkg was interrupted' "$log"; then
        echo "dpkg was interrupted earlier; run 'dpkg --configure -a' and retry"
    elif grep -q 'Could not get lock' "$log"; then
        echo "apt/dpkg stayed locked by another process for 10 minutes"
    else
        echo "apt-get failed"
    fi
}

# ---------------------------------------------------------------------------------------------
# 1. Debian packages.

APT_PACKAGES=(
    # runtime
    runc debootstrap iproute2 nftables iptables
    # toolchain for building CRIU (dpkg-dev comes with build-essential; xz-utils unpacks the tarball)
    build-essential dpkg-dev xz-utils
    # CRIU build dependencies (see PLATFORM.md)
    libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnl-3-dev libprotobuf-c-dev
    libprotobuf-dev pkgconf protobuf-c-compiler protobuf-compiler uuid-dev python3-protobuf
    libnftables-dev libaio-dev
)

missing_packages() {
    local native installed
    native=$(dpkg --print-architecture)
    # One dpkg-query call for all packages; it exits 1 when some are unknown, hence `|| true`.
    installed=$(dpkg-query -W -f='${Package} ${Architecture} ${Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null \
        | awk -v arch="$native" '($2 == arch || $2 == "all") && $3 == "install" && $4 == "ok" && $5 == "installed" { print $1 }' || true)
    local p
    for p in "${APT_PACKAGES[@]}"; do
        grep -qxF "$p" <<<"$installed" || echo "$p"
    done
}

APT_LOG="$LOG_DIR/setup-apt.log"
mapfile -t MISSING < <(missing_packages)
if [ "${#MISSING[@]}" -eq 0 ]; then
    ok "apt packages: all ${#APT_PACKAGES[@]} installed"
else
    step "apt packages missing: ${MISSING[*]}"
    step "apt-get update (log: $APT_LOG)"
    apt_logged "$APT_LOG" update || die_log "$APT_LOG" "apt-get update failed: $(apt_failure_reason "$APT_LOG")"
    # `update` exits 0 even when some index could not be fetched; the install below may still work
    # from older lists, so only warn here.
    if grep -Eq '^(W|E): (Failed to fetch|Some index files failed)' "$APT_LOG"; then
        warn "apt-get update could not refresh every index ($(apt_failure_reason "$APT_LOG")); trying to install anyway"
    fi
    step "apt-get install ${MISSING[*]}"
    apt_logged "$APT_LOG" install -y \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${MISSING[@]}" \
        || die_log "$APT_LOG" "apt-get install failed: $(apt_failure_reason "$APT_LOG")"
    mapfile -t STILL_MISSING < <(missing_packages)
    [ "${#STILL_MISSING[@]}" -eq 0 ] || die_log "$APT_LOG" "still not installed after apt-get install: ${STILL_MISSING[*]}"
    ok "apt packages: installed ${MISSING[*]}"
fi

# ---------------------------------------------------------------------------------------------
# 2. CRIU >= 4.2 in /usr/local.

CRIU_CACHE="$CACHE_ROOT/criu"
CRIU_LOG="$LOG_DIR/setup-criu.log"
CRIU_CHECK_OUT="$LOG_DIR/criu-check.out"

installed_criu() {
    local p
    for p in "$CRIU_PREFIX/sbin/criu" "$CRIU_PREFIX/bin/criu"; do
        if [ -x "$p" ]; then echo "$p"; return 0; fi
    done
    return 1
}

criu_version() { "$1" --version 2>/dev/null | sed -n 's/^Version: *//p' | head -n 1; }

# `criu check` prints "Looks good." on success; warnings such as "Can't keep kdat cache on
# non-tempfs" go to stderr and are harmless.
criu_check_ok() {
    "$1" check >"$CRIU_CHECK_OUT" 2>&1 && grep -q 'Looks good' "$CRIU_CHECK_OUT"
}

# The mirror already configured for this machine's Debian archive (not the security archive):
# the first http(s) URI whose suite is a plain codename such as "bookworm" or "stable".
debian_mirror() {
    if [ -n "${STASIS_DEBIAN_MIRROR:-}" ]; then
        echo "${STASIS_DEBIAN_MIRROR%/}"; return 0
    fi
    local files=() f
    for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && files+=("$f"); done
    {
        for f in "${files[@]}"; do
            # deb822: one paragraph per source.
            awk 'BEGIN { RS = ""; FS = "\n" }
                 {
                     types = ""; uris = ""; suites = ""; enabled = "yes"
                     for (i = 1; i <= NF; i++) {
                         line = $i
                         if (line ~ /^[ \t]*#/) continue
                         split(line, kv, ":")
                         key = tolower(kv[1]); val = substr(line, length(kv[1]) + 2)
                         gsub(/^[ \t]+|[ \t]+$/, "", val)
                         if (key == "types") types = val
                         else if (key == "uris") uris = val
                         else if (key == "suites") suites = val
                         else if (key == "enabled") enabled = tolower(val)
                     }
                     if (enabled == "no" || types !~ /deb/) next
                     n = split(suites, s, /[ \t]+/); m = split(uris, u, /[ \t]+/)
                     for (j = 1; j <= n; j++)
                         if (s[j] ~ /^[a-z]+$/)
                             for (k = 1; k <= m; k++) print u[k]
                 }' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            # one-line format: deb [options] URI suite components...
            sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" \
                | awk '($1 == "deb" || $1 == "deb-src") && $3 ~ /^[a-z]+$/ { print $2 }'
        done
    } | grep -E '^https?://' | sed 's:/*$::' | head -n 1
}

# Private apt configuration rooted in $CRIU_CACHE/apt: its own sources list, lists and cache.
# The system's sources, lists and package cache are neither read nor changed.
PRIV="$CRIU_CACHE/apt"
priv_apt_opts() {
    printf '%s\n' \
        -o "Dir::Etc::SourceList=$PRIV/sources.list" \
        -o "Dir::Etc::SourceParts=$PRIV/sources.list.d" \
        -o "Dir::State::Lists=$PRIV/lists" \
        -o "Dir::Cache=$PRIV/cache" \
        -o "Dir::Etc::Preferences=$PRIV/preferences" \
        -o "Dir::Etc::PreferencesParts=$PRIV/preferences.d"
}

priv_apt_prepare() {
    mkdir -p "$PRIV/sources.list.d" "$PRIV/preferences.d" "$PRIV/lists/partial" \
             "$PRIV/cache/archives/partial" "$PRIV/keyring"
    : >"$PRIV/preferences"
    # Let apt's unprivileged download user write where it downloads (avoids "unsandboxed" warnings).
    if id _apt >/dev/null 2>&1; then
        chown _apt:root "$PRIV/lists/partial" "$PRIV/cache/archives/partial"
    fi
}

# sid must be verifiable with Debian's archive keyring. If it is not (the archive moved to a key this
# host's debian-archive-keyring does not have yet), take a newer debian-archive-keyring .deb from a
# suite that *is* verifiable with the current keyring (its hash is checked by apt through the signed
# index, so the chain of trust stays intact) and retry. `[trusted=yes]` is never used: if no
# verifiable keyring is found, stop with an explanation. Sets SID_KEYRING.
SID_KEYRING=""
find_sid_keyring() {
    local base_keyring=${STASIS_APT_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
    [ -r "$base_keyring" ] || die "keyring $base_keyring not found (install debian-archive-keyring)"
    : >"$CRIU_LOG.last"
    if priv_apt_update deb-src sid "$base_keyring"; then
        SID_KEYRING=$base_keyring; return 0
    fi
    if ! grep -Eq "$APT_SIG_ERRORS" "$CRIU_LOG.last"; then
        die_log "$CRIU_LOG" "could not fetch sid's source index from $MIRROR: $(apt_failure_reason "$CRIU_LOG.last")"
    fi
    warn "sid's Release is not verifiable with $base_keyring; looking for a newer debian-archive-keyring"
    local suite deb found newring
    local opts; mapfile -t opts < <(priv_apt_opts)
    if id _apt >/dev/null 2>&1; then chown _apt:root "$PRIV/keyring"; fi
    for suite in testing stable-updates stable; do
        priv_apt_update deb "$suite" "$base_keyring" || continue
        rm -rf "$PRIV/keyring/"*.deb "$PRIV/keyring/root"
        (cd "$PRIV/keyring" && apt_logged "$CRIU_LOG" "${opts[@]}" download "debian-archive-keyring/$suite") || continue
        deb=$(compgen -G "$PRIV/keyring/debian-archive-keyring_*.deb" | head -n 1) || continue
        dpkg-deb -x "$deb" "$PRIV/keyring/root" || continue
        # Regular files only (a symlink in the package could point at the host's own keyring).
        found=$(find "$PRIV/keyring/root/usr/share/keyrings" -maxdepth 1 -type f \
                    \( -name 'debian-archive-keyring.pgp' -o -name 'debian-archive-keyring.gpg' \) | sort | head -n 1)
        [ -n "$found" ] && [ -s "$found" ] || continue
        newring="$PRIV/keyring/$suite-debian-archive-keyring.gpg"
        cp "$found" "$newring"
        if priv_apt_update deb-src sid "$newring"; then
            step "sid verified with the keyring of $(basename "$deb") from $suite"
            SID_KEYRING=$newring; return 0
        fi
    done
    die_log "$CRIU_LOG" "cannot verify the signature of sid's Release with any Debian keyring available; refusing to use an unverified source"
}

# Point the private configuration at one suite (deb or deb-src), verified with one keyring, and
# refresh its index. Returns 0 when the index was fetched and its signature verified. This run's
# part of the log is also left in $CRIU_LOG.last for diagnosis.
priv_apt_update() {
    local kind=$1 suite=$2 keyring=$3
    local before=0
    [ ! -f "$CRIU_LOG" ] || before=$(stat -c %s "$CRIU_LOG")
    local rc=0
    printf '%s [signed-by=%s] %s %s main\n' "$kind" "$keyring" "$MIRROR" "$suite" >"$PRIV/sources.list"
    rm -rf "$PRIV/lists"; mkdir -p "$PRIV/lists/partial"
    if id _apt >/dev/null 2>&1; then chown _apt:root "$PRIV/lists/partial"; fi
    local opts; mapfile -t opts < <(priv_apt_opts)
    apt_logged "$CRIU_LOG" "${opts[@]}" update || rc=1
    tail -c "+$((before + 1))" "$CRIU_LOG" >"$CRIU_LOG.last"
    [ "$rc" -eq 0 ] || return 1
    # `apt-get update` only warns about signature and network problems: check the result.
    if grep -Eq "^(W|E): .*($APT_SIG_ERRORS|Failed to fetch|Some index files failed)" "$CRIU_LOG.last"; then
        return 1
    fi
    compgen -G "$PRIV/lists/*_dists_${suite}_InRelease" >/dev/null \
        || compgen -G "$PRIV/lists/*_dists_${suite}_Release" >/dev/null
}

# Is there a downloaded .dsc + upstream tarball in $CRIU_CACHE/src whose version is new enough and
# whose tarball matches the .dsc's SHA-256? Prints "<dsc> <tarball> <version>".
cached_source() {
    local dscs=() dsc ver tar sum want f
    for f in "$CRIU_CACHE"/src/criu_*.dsc; do [ -f "$f" ] && dscs+=("$f"); done
    [ "${#dscs[@]}" -gt 0 ] || return 1
    for dsc in $(printf '%s\n' "${dscs[@]}" | sort -V -r); do
        ver=$(sed -n 's/^Version: *//p' "$dsc" | head -n 1)
        ver=${ver#*:}; ver=${ver%-*}           # epoch and Debian revision off: upstream version
        version_ge "$ver" "$CRIU_MIN_VERSION" || continue
        tar=""
        for f in "$CRIU_CACHE/src/criu_${ver}.orig.tar."*; do
            case $f in *.asc) ;; *) [ -f "$f" ] && tar=$f ;; esac
        done
        [ -n "$tar" ] || continue
        want=$(awk -v f="$(basename "$tar")" '/^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == f { print $1 }' "$dsc")
        sum=$(sha256sum "$tar" | cut -d' ' -f1)
        [ -n "$want" ] && [ "$want" = "$sum" ] || continue
        echo "$dsc $tar $ver"; return 0
    done
    return 1
}

fetch_criu_source() {
    MIRROR=$(debian_mirror) || true
    [ -n "${MIRROR:-}" ] || die "could not find a Debian mirror in /etc/apt/sources.list{,.d}; set STASIS_DEBIAN_MIRROR=http://deb.debian.org/debian"
    step "fetching criu source package from sid via $MIRROR (private apt config in $PRIV, log: $CRIU_LOG)"
    priv_apt_prepare
    find_sid_keyring
    ok "sid's Release verified with $SID_KEYRING"
    mkdir -p "$CRIU_CACHE/src"
    if id _apt >/dev/null 2>&1; then chown _apt:root "$CRIU_CACHE/src"; fi
    local opts; mapfile -t opts < <(priv_apt_opts)
    # Only the .dsc and the upstream tarball: Debian's patches are not applied (see build_criu),
    # and this host's mirror does not even serve the debian.tar.xz. apt checks both files against
    # the hashes in the signed Sources index; cached_source re-checks the tarball against the .dsc.
    (cd "$CRIU_CACHE/src" && apt_logged "$CRIU_LOG" "${opts[@]}" source --download-only --dsc-only criu/sid) \
        || die_log "$CRIU_LOG" "apt-get source --dsc-only criu failed: $(apt_failure_reason "$CRIU_LOG")"
    (cd "$CRIU_CACHE/src" && apt_logged "$CRIU_LOG" "${opts[@]}" source --download-only --tar-only criu/sid) \
        || die_log "$CRIU_LOG" "apt-get source --tar-only criu failed: $(apt_failure_reason "$CRIU_LOG")"
}

# Debian patches: NOT applied, on purpose. PLATFORM.md verified the plain upstream tarball built
# with `make criu` (checkpoint/restore through runc works with it), we only need the `criu` binary,
# not Debian's packaging, and the debian.tar.xz is not even served by this host's mirror (404).
build_criu() {
    local tarball=$1 ver=$2
    local build="$CRIU_CACHE/build" src="$CRIU_CACHE/build/criu-$ver"
    if [ ! -f "$src/.stasis-unpacked" ]; then
        rm -rf "$src"; mkdir -p "$build"
        step "unpacking $(basename "$tarball")"
        tar -xf "$tarball" -C "$build" >>"$CRIU_LOG" 2>&1 || die_log "$CRIU_LOG" "could not unpack $tarball"
        [ -f "$src/Makefile" ] || die "unexpected layout in $tarball: no criu-$ver/Makefile"
        touch "$src/.stasis-unpacked"
    fi
    step "building CRIU $ver (make criu, usually under a minute; log: $CRIU_LOG)"
    local start=$SECONDS
    { printf '\n==== %s: make criu in %s\n' "$(date -u +%FT%TZ)" "$src"; } >>"$CRIU_LOG"
    local before=0
    [ ! -f "$CRIU_LOG" ] || before=$(stat -c %s "$CRIU_LOG")
    if ! make -C "$src" -j"$(nproc)" criu </dev/null >>"$CRIU_LOG" 2>&1; then
        # With -j the first error is usually not in the last lines: show the error lines too.
        printf '%s: first errors from the build:\n' "$PROG" >&2
        tail -c "+$((before + 1))" "$CRIU_LOG" | grep -E -i -m 10 'error|\*\*\*|not found|No such file' | sed 's/^/    /' >&2 || true
        die_log "$CRIU_LOG" "building CRIU $ver failed"
    fi
    ok "built CRIU $ver in $((SECONDS - start)) s"

    # `make install-criu` installs criu and criu-ns into $PREFIX/sbin, its UAPI headers and one
    # helper script; fall back to copying the binary alone if that ever fails.
    { printf '\n==== %s: make install-criu PREFIX=%s\n' "$(date -u +%FT%TZ)" "$CRIU_PREFIX"; } >>"$CRIU_LOG"
    if ! make -C "$src" install-criu PREFIX="$CRIU_PREFIX" </dev/null >>"$CRIU_LOG" 2>&1; then
        warn "make install-criu failed (see $CRIU_LOG); installing the criu binary alone"
        install -D -m 0755 "$src/criu/criu" "$CRIU_PREFIX/sbin/criu"
    fi
    hash -r
}

# Skip the build when /usr/local already has CRIU >= 4.2. If that CRIU then fails `criu check`
# (section 3), the kernel is the problem and rebuilding the same version would not help: stop
# there with the check's output (use --rebuild-criu to force a rebuild anyway).
CRIU_BIN=$(installed_criu || true)
CRIU_VER=""
[ -z "$CRIU_BIN" ] || CRIU_VER=$(criu_version "$CRIU_BIN")

if [ "$REBUILD_CRIU" -eq 0 ] && [ -n "$CRIU_VER" ] && version_ge "$CRIU_VER" "$CRIU_MIN_VERSION"; then
    ok "criu $CRIU_VER at $CRIU_BIN (>= $CRIU_MIN_VERSION)"
else
    if [ -n "$CRIU_BIN" ]; then
        step "criu at $CRIU_BIN reports '${CRIU_VER:-no version}'; building CRIU >= $CRIU_MIN_VERSION"
    else
        step "no criu in $CRIU_PREFIX; building CRIU >= $CRIU_MIN_VERSION"
    fi
    mkdir -p "$CRIU_CACHE"
    SRC_INFO=$(cached_source || true)
    if [ -n "$SRC_INFO" ] && [ "$REBUILD_CRIU" -eq 0 ]; then
        step "reusing downloaded source in $CRIU_CACHE/src"
    else
        fetch_criu_source
        SRC_INFO=$(cached_source || true)
        [ -n "$SRC_INFO" ] || die_log "$CRIU_LOG" "downloaded criu source is missing, older than $CRIU_MIN_VERSION, or fails its .dsc checksum (in $CRIU_CACHE/src)"
    fi
    read -r _dsc SRC_TARBALL SRC_VER <<<"$SRC_INFO"
    [ "$REBUILD_CRIU" -eq 0 ] || rm -rf "$CRIU_CACHE/build/criu-$SRC_VER"
    build_criu "$SRC_TARBALL" "$SRC_VER"
    CRIU_BIN=$(installed_criu || true)
    [ -n "$CRIU_BIN" ] || die_log "$CRIU_LOG" "criu was built but is not in $CRIU_PREFIX/sbin"
    CRIU_VER=$(criu_version "$CRIU_BIN")
    { [ -n "$CRIU_VER" ] && version_ge "$CRIU_VER" "$CRIU_MIN_VERSION"; } \
        || die_log "$CRIU_LOG" "installed $CRIU_BIN reports version '${CRIU_VER:-?}', need >= $CRIU_MIN_VERSION"
    ok "installed criu $CRIU_VER at $CRIU_BIN"
fi

# ---------------------------------------------------------------------------------------------
# 3. Host checks, one line each.

# User namespaces (sandboxes map container uid 0 to host uid 100000+).
userns_max=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)
[ "${userns_max:-0}" -gt 0 ] \
    || die "kernel feature missing: user namespaces are disabled (/proc/sys/user/max_user_namespaces = ${userns_max:-unreadable}); enable with: sysctl -w user.max_user_namespaces=15000"
ok "user namespaces: max_user_namespaces=$userns_max"

# overlayfs (every sandbox root is an overlay on a read-only template).
if ! grep -qw overlay /proc/filesystems; then
    command -v modprobe >/dev/null 2>&1 && modprobe overlay >/dev/null 2>&1 || true
fi
grep -qw overlay /proc/filesystems \
    || die "kernel feature missing: overlayfs (not in /proc/filesystems, and 'modprobe overlay' did not load it)"
ok "overlayfs: available"

# nftables (sandbox egress: NAT and per-sandbox rules; --no-sandbox-network does without).
nft list tables >/dev/null 2>"$LOG_DIR/nft-check.err" \
    || die "nftables does not work here ('nft list tables' failed: $(head -c 300 "$LOG_DIR/nft-check.err")); run the server with --no-sandbox-network to do without sandbox egress"
ok "nftables: $(nft --version 2>/dev/null)"

# runc.
RUNC_VER=$(runc --version 2>/dev/null | sed -n 's/^runc version *//p' | head -n 1) || true
[ -n "$RUNC_VER" ] || die "'runc --version' failed (is the runc package broken? try: apt-get install --reinstall runc)"
ok "runc: $RUNC_VER ($(command -v runc))"

# criu check: kernel support for checkpoint/restore.
if ! criu_check_ok "$CRIU_BIN"; then
    sed 's/^/    /' "$CRIU_CHECK_OUT" >&2
    die "kernel feature missing: '$CRIU_BIN check' did not report 'Looks good' (output above, saved in $CRIU_CHECK_OUT)"
fi
ok "criu check: Looks good"

# runc finds criu through PATH: make sure ours is the one it finds (Debian's 3.17 is in /usr/sbin).
path_criu=$(command -v criu 2>/dev/null || true)
if [ -z "$path_criu" ]; then
    warn "'criu' is not on PATH: add $(dirname "$CRIU_BIN") to PATH or pass runc --criu $CRIU_BIN"
elif [ "$path_criu" != "$CRIU_BIN" ]; then
    warn "'criu' on PATH is $path_criu (version $(criu_version "$path_criu" || true)), not $CRIU_BIN: put $(dirname "$CRIU_BIN") before /usr/sbin in PATH or pass runc --criu $CRIU_BIN"
fi

# Network locking during checkpoint uses iptables-restore (or --network-lock skip).
command -v iptables-restore >/dev/null 2>&1 || warn "iptables-restore not found: CRIU network locking needs it (or use --network-lock skip)"

# ---------------------------------------------------------------------------------------------
# 4. Summary.

if [ "$QUIET" -eq 0 ]; then
    printf '%s: summary: kernel %s | runc %s | criu %s (%s) | debootstrap %s | iptables %s\n' "$PROG" \
        "$(uname -r)" "$RUNC_VER" "$CRIU_VER" "$CRIU_BIN" \
        "$(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null)" \
        "$(iptables --version 2>/dev/null | awk '{ print $2 }')"
fi
