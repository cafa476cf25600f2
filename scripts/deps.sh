#!/usr/bin/env bash
# scripts/deps.sh: installs, from Debian 12's own packages, everything that
# building mallard and running its tests needs.
#
# Idempotent: when every package is already installed it does nothing (set
# ML_DEPS_FORCE=1 to run apt-get anyway).  Runs apt-get directly as root
# and through sudo otherwise.  Quiet unless something fails.
set -euo pipefail

packages=(
    # build
    build-essential cmake pkg-config g++ binutils
    libunwind-dev libdw-dev check
    # tests: the trace tests' helpers and JSON schema check, valgrind to
    # compare leak totals with, groff for the man page check
    python3 python3-jsonschema valgrind groff-base file clang-format
    # tests: the real programs run under every backend (tests/real)
    perl git make xz-utils sqlite3 coreutils util-linux findutils mawk
    # tests/real: interpreters with threads and fork, and a server on
    # loopback driven by its benchmark (issue 7); cmake is listed above
    ruby nodejs redis-server redis-tools
    # tests: numpy maps its own memory next to the allocator's
    # (trace_valgrind_python3_numpy*)
    python3-numpy
    # hardening (issue 8): cppcheck for the static analysis step, clang 14 and
    # its libFuzzer runtime for tests/fuzz, gdb for the soak watchdog's
    # backtraces (util-linux above gives unshare and setpriv to tests/hostile)
    cppcheck clang-14 libclang-rt-14-dev gdb
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ] && [ "${ML_DEPS_FORCE:-0}" != 1 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "scripts/deps.sh: missing packages: ${missing[*]}" >&2
    echo "scripts/deps.sh: run this script as root, or install sudo" >&2
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt_get() {
    if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
        -o Dpkg::Use-Pty=0 "$@" >"$log" 2>&1; then
        echo "scripts/deps.sh: apt-get $* failed:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
}
echo "scripts/deps.sh: installing ${missing[*]:-(forced)}" >&2
apt_get update
apt_get install --no-install-recommends "${packages[@]}"
