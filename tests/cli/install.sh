#!/usr/bin/env bash
# tests/cli/install.sh BUILD SRC FIXTURES: what a packager and a user of the
# installed files meet.
#  1. cmake --install into a scratch prefix: every file is there; a program
#     including mallard.h builds with pkg-config --cflags and with
#     find_package(mallard), runs without mallard, and under the installed
#     command.
#  2. cpack: the .deb's Depends name libdw1 and libunwind8; dpkg -x into a
#     scratch root; `mallard --version` and a leak report from there.
#  3. -DMALLARD_TESTS=OFF configures and builds where pkg-config cannot see
#     Check (and MALLARD_TESTS=ON then fails for want of it).
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) fixtures=$(cd "$3" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- 1. cmake --install ------------------------------------------------------
inst=$tmp/inst
cmake --install "$build" --prefix "$inst" >/dev/null
libdir=$(dirname "$(find "$inst" -name libmallard.so | head -1)")
[ -f "$libdir/libmallard.so" ] || fail "libmallard.so not installed"
for f in bin/mallard include/mallard.h libexec/mallard/mallard-report share/man/man1/mallard.1 \
    share/man/man3/mallard.3; do
    [ -f "$inst/$f" ] || fail "$f not installed"
done
[ -f "$libdir/pkgconfig/mallard.pc" ] || fail "mallard.pc not installed"
[ -f "$libdir/cmake/mallard/mallardConfig.cmake" ] || fail "mallardConfig.cmake not installed"
[ "$("$inst/bin/mallard" --version)" = "mallard $(sed -n 's/^project(mallard VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" ] ||
    fail "installed mallard --version"

cflags=$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags mallard)
inc=$(echo $cflags)
inc=${inc#-I}
[ "$inc" -ef "$inst/include" ] || fail "pkg-config --cflags mallard: '$cflags'"
[ -z "$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --libs mallard)" ] || fail "pkg-config --libs is not empty"
[ "$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --variable=preload mallard)" -ef "$libdir/libmallard.so" ] ||
    fail "pkg-config --variable=preload"
cc -g -O0 $cflags -I "$src/tests/programs" -o "$tmp/api_pc" "$src/tests/cli/lsan_api.c"
[ "$("$tmp/api_pc")" = "no mallard" ] || fail "a program built with mallard.h runs without mallard"
out=$("$inst/bin/mallard" -q -o "$tmp/pc.txt" -- "$tmp/api_pc")
[ "$out" = $'recoverable 1\nreport_now 1\nafter check' ] || fail "under the installed command: '$out'"
grep -q "definitely lost: 555 bytes in 2 blocks" "$tmp/pc.txt" || fail "the installed library reports"

mkdir "$tmp/proj"
cat >"$tmp/proj/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(uses_mallard C)
find_package(mallard 0.1 REQUIRED)
add_executable(api "$src/tests/cli/lsan_api.c")
target_include_directories(api PRIVATE "$src/tests/programs")
target_link_libraries(api PRIVATE mallard::mallard)
file(WRITE "\${CMAKE_BINARY_DIR}/found.txt" "\${MALLARD_PRELOAD_LIBRARY}\n\${MALLARD_EXECUTABLE}\n")
CMAKE
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$inst" >/dev/null || fail "find_package(mallard)"
cmake --build "$tmp/proj/build" >/dev/null || fail "building with mallard::mallard"
[ "$("$tmp/proj/build/api")" = "no mallard" ] || fail "find_package build runs without mallard"
[ "$(sed -n 1p "$tmp/proj/build/found.txt")" -ef "$libdir/libmallard.so" ] || fail "MALLARD_PRELOAD_LIBRARY"
[ "$(sed -n 2p "$tmp/proj/build/found.txt")" -ef "$inst/bin/mallard" ] || fail "MALLARD_EXECUTABLE"
echo "install: every file in place; pkg-config and find_package(mallard) build a program that runs with and without mallard"

# ---- 2. the .deb ------------------------------------------------------------
(cd "$tmp" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/deb" >/dev/null) || fail "cpack -G DEB"
deb=$(ls "$tmp"/deb/*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
case ", $depends," in *", libdw1"[,\ ]*) ;; *) fail "Depends lacks libdw1: $depends" ;; esac
case ", $depends," in *", libunwind8"[,\ ]*) ;; *) fail "Depends lacks libunwind8: $depends" ;; esac
dpkg -x "$deb" "$tmp/root"
m=$tmp/root/usr/bin/mallard
[ "$("$m" --version)" = "$("$inst/bin/mallard" --version)" ] || fail "mallard --version from the .deb"
pre=$("$m" -q -- sh -c 'echo "$LD_PRELOAD"')
case $pre in "$tmp/root/usr/"*libmallard.so) ;; *) fail "the .deb's command preloads '$pre', not its own library" ;; esac
err=$("$m" -- "$fixtures/simple_leak" 2>&1 >/dev/null)
case $err in *"definitely lost: 100 bytes in 1 block"*leak_one*) ;; *) fail "leak report from the .deb: $err" ;; esac
"$m" -q -f json -o "$tmp/deb.json" -- "$fixtures/simple_leak" >/dev/null
"$m" report "$tmp/deb.json" | grep -q "definitely lost 100 bytes in 1 block" || fail "mallard report from the .deb"
echo "deb: Depends: $depends; --version, a leak report and mallard report run from the scratch root"

# ---- 3. MALLARD_TESTS=OFF without Check ----------------------------------------
pcdir=$tmp/pc
mkdir "$pcdir"
for d in $(pkg-config --variable pc_path pkg-config | tr : ' '); do
    for pc in "$d"/*.pc; do
        [ -e "$pc" ] || continue
        case $(basename "$pc") in check.pc) ;; *) ln -sf "$pc" "$pcdir/" ;; esac
    done
done
! PKG_CONFIG_LIBDIR=$pcdir pkg-config --exists check || fail "check still visible"
PKG_CONFIG_LIBDIR=$pcdir cmake -S "$src" -B "$tmp/notests" -DMALLARD_TESTS=OFF >/dev/null ||
    fail "configure with MALLARD_TESTS=OFF and no Check"
cmake --build "$tmp/notests" --target mallard mallard_cli -j2 >/dev/null || fail "build with MALLARD_TESTS=OFF"
[ -x "$tmp/notests/mallard" ] && [ -f "$tmp/notests/libmallard.so" ] || fail "no library or command built"
[ ! -e "$tmp/notests/tests" ] || fail "MALLARD_TESTS=OFF still configured the tests"
if PKG_CONFIG_LIBDIR=$pcdir cmake -S "$src" -B "$tmp/withtests" -DMALLARD_TESTS=ON >/dev/null 2>&1; then
    fail "MALLARD_TESTS=ON configured without Check (the test above proves nothing)"
fi
echo "MALLARD_TESTS=OFF: configured and built without Check"
