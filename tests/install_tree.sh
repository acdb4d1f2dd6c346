#!/bin/sh
# install_tree — `cmake --install` into a DESTDIR holds what an operator and
# a C programmer need, where they look for it: the three binaries (which
# run), libdrover.so with its soname links, drover.h and drover.pc (a
# program builds and runs against them through pkg-config), the man pages,
# the systemd units (naming the installed binaries), the sysusers.d entry
# and the bash completion (which parses). drover.pc names the installed
# dirs, also for a multiarch libdir (lib/x86_64-linux-gnu).
#
# usage: install_tree.sh BUILD_DIR [EXTRA_CFLAGS]
#   EXTRA_CFLAGS: what a program linking this build's libdrover needs
#   (the sanitizer flags of an ASan build).
set -u
build=$1
extra=${2:-}
fail=0
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
prefix=/usr

say() {
    echo "install_tree: $*"
    fail=1
}

if ! DESTDIR="$dest" cmake --install "$build" --prefix "$prefix" \
    >"$dest.log" 2>&1; then
    cat "$dest.log"
    rm -f "$dest.log"
    echo "install_tree: cmake --install failed"
    exit 1
fi
rm -f "$dest.log"
root="$dest$prefix"

# Binaries: present, executable, and they run from the tree.
for b in drover drover-broker drover-worker; do
    [ -x "$root/bin/$b" ] || say "bin/$b missing or not executable"
done
v=$("$root/bin/drover" --version 2>&1) || say "installed drover --version failed"
case $v in
"drover "[0-9]*) ;;
*) say "installed drover --version printed '$v'" ;;
esac
"$root/bin/drover-broker" --help >/dev/null 2>&1 ||
    say "installed drover-broker --help failed"
"$root/bin/drover-worker" --help >/dev/null 2>&1 ||
    say "installed drover-worker --help failed"

# libdrover: the header, the pkg-config file, the library and its soname.
pc=$(find "$root/lib" -name drover.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || say "no lib/.../pkgconfig/drover.pc"
[ -f "$root/include/drover.h" ] || say "include/drover.h missing"
so=$(find "$root/lib" -name 'libdrover.so.*.*.*' | head -n 1)
[ -n "$so" ] || say "no libdrover.so.X.Y.Z"
libdir=$(dirname "${so:-$root/lib/x}")
[ -L "$libdir/libdrover.so" ] || say "libdrover.so (the link name) missing"
soname=$(objdump -p "$so" 2>/dev/null | awk '/SONAME/ {print $2}')
[ -n "$soname" ] && [ -e "$libdir/$soname" ] ||
    say "the soname link ($soname) is missing"
# Only the drover_* API is exported.
if command -v nm >/dev/null 2>&1 && [ -n "$so" ]; then
    leaked=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}' |
        grep '^dv_' | head -n 3)
    [ -z "$leaked" ] || say "libdrover.so exports internal symbols: $leaked"
fi

# A program built only from the installed header and pkg-config file.
if [ -n "$pc" ] && command -v pkg-config >/dev/null 2>&1 &&
    command -v cc >/dev/null 2>&1; then
    # drover.pc names the real /usr dirs; the sysroot maps them into DESTDIR.
    flags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$dest" \
        pkg-config --cflags --libs drover)
    cat >"$dest/prog.c" <<'EOF'
#include <drover.h>
#include <stdio.h>
#include <string.h>

int
main(void)
{
    // An error name from the library, and a refused endpoint.
    drover_t *d = NULL;
    drover_error_t err = {0};
    int rc = drover_connect(&d, "bogus://x", 100, &err);
    printf("%s %s\n", drover_err_name(rc), DROVER_DEFAULT_ENDPOINT);
    drover_destroy(&d);
    return rc == 0;
}
EOF
    # shellcheck disable=SC2086 # flags are words
    if cc $extra -o "$dest/prog" "$dest/prog.c" $flags 2>"$dest/cc.log"; then
        out=$(LD_LIBRARY_PATH="$libdir" "$dest/prog" 2>&1)
        case $out in
        "DV_EINVAL tcp://127.0.0.1:7470") ;;
        *) say "the program built against the tree printed '$out'" ;;
        esac
    else
        cat "$dest/cc.log"
        say "a program does not build against the installed drover.h/drover.pc"
    fi
fi

# pkg-config names the dirs the files went to.
check_pc_dirs() { # PC_FILE LIBDIR INCLUDEDIR
    for v in libdir:$2 includedir:$3; do
        got=$(PKG_CONFIG_PATH=$(dirname "$1") pkg-config \
            --variable="${v%%:*}" drover 2>&1)
        [ "$got" = "${v#*:}" ] ||
            say "$1: pkg-config's ${v%%:*} is '$got', not '${v#*:}'"
    done
}
if [ -n "$pc" ] && command -v pkg-config >/dev/null 2>&1; then
    check_pc_dirs "$pc" "$prefix/lib" "$prefix/include"
fi

# A Debian-style multiarch libdir (lib/x86_64-linux-gnu, one level deeper
# than lib/): a second, plain build of libdrover installed with it; its
# drover.pc must still name /usr/lib/x86_64-linux-gnu and /usr/include.
src=$(cd "$(dirname "$0")/.." && pwd)
multi=lib/x86_64-linux-gnu
if command -v pkg-config >/dev/null 2>&1; then
    b="$dest/multiarch-build"
    if cmake -S "$src" -B "$b" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_LIBDIR=$multi >"$dest/multi.log" 2>&1 &&
        cmake --build "$b" --target libdrover_shared drover -j2 \
            >>"$dest/multi.log" 2>&1 &&
        DESTDIR="$dest/multi" cmake -DCMAKE_INSTALL_PREFIX="$prefix" \
            -P "$b/clients/cmake_install.cmake" >>"$dest/multi.log" 2>&1; then
        mpc="$dest/multi$prefix/$multi/pkgconfig/drover.pc"
        if [ -f "$mpc" ]; then
            check_pc_dirs "$mpc" "$prefix/$multi" "$prefix/include"
            ls "$dest/multi$prefix/$multi"/libdrover.so >/dev/null 2>&1 ||
                say "no libdrover.so in $prefix/$multi"
        else
            say "no $multi/pkgconfig/drover.pc"
        fi
    else
        tail -n 20 "$dest/multi.log"
        say "building/installing with CMAKE_INSTALL_LIBDIR=$multi failed"
    fi
fi

# Man pages.
for p in man1/drover.1 man8/drover-broker.8 man8/drover-worker.8; do
    [ -f "$root/share/man/$p" ] || say "share/man/$p missing"
done

# systemd units, naming the installed binaries; the sysusers.d entry.
units="$root/lib/systemd/system"
for u in drover-broker.service drover-worker@.service; do
    [ -f "$units/$u" ] || say "lib/systemd/system/$u missing"
done
grep -q "^ExecStart=$prefix/bin/drover-broker " \
    "$units/drover-broker.service" 2>/dev/null ||
    say "drover-broker.service does not run $prefix/bin/drover-broker"
grep -q "^ExecStart=$prefix/bin/drover-worker " \
    "$units/drover-worker@.service" 2>/dev/null ||
    say "drover-worker@.service does not run $prefix/bin/drover-worker"
grep -q '^u drover ' "$root/lib/sysusers.d/drover.conf" 2>/dev/null ||
    say "lib/sysusers.d/drover.conf does not create the drover user"

# bash completion.
comp="$root/share/bash-completion/completions/drover"
[ -f "$comp" ] || say "share/bash-completion/completions/drover missing"
bash -n "$comp" 2>/dev/null || say "the bash completion does not parse"

[ $fail -eq 0 ] && echo "install_tree: ok ($(cd "$dest" && find . -type f |
    wc -l) files)"
exit $fail
