# Shared by scripts/run.sh and scripts/test.sh: common checks. Source it, don't run it.

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): sandboxes need runc, CRIU, overlay mounts and cgroups"
}

# Rust comes from rustup on these machines; a non-login shell may lack ~/.cargo/bin in PATH.
require_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        for dir in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin /usr/local/cargo/bin; do
            if [ -x "$dir/cargo" ]; then
                export PATH="$dir:$PATH"
                break
            fi
        done
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain (https://rustup.rs, or Debian's cargo >= 1.85)"
}
