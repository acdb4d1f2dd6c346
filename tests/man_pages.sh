#!/bin/sh
# man_pages — docs/man/*.1 and *.8 render without warnings, and every option
# a binary's --help names (drover, each `drover COMMAND --help`, `drover
# local train --help`, drover-broker, drover-worker) appears in its page, so
# the pages cannot drift from the binaries.
#
# usage: man_pages.sh MAN_DIR BIN_DIR
# Needs groff (or mandoc); exits 77 (skipped) when neither is installed.
set -u
man_dir=$1
bin_dir=$2
fail=0

if command -v groff >/dev/null 2>&1; then
    render() { groff -man -ww -z "$1" 2>&1; }
elif command -v mandoc >/dev/null 2>&1; then
    render() { mandoc -T lint -W warning "$1" 2>&1; }
else
    echo "man_pages: neither groff nor mandoc is installed: skipped"
    exit 77
fi

for page in "$man_dir"/drover.1 "$man_dir"/drover-broker.8 \
    "$man_dir"/drover-worker.8; do
    if [ ! -f "$page" ]; then
        echo "man_pages: $page is missing"
        fail=1
        continue
    fi
    out=$(render "$page")
    if [ $? -ne 0 ] || [ -n "$out" ]; then
        echo "man_pages: $page: warnings:"
        echo "$out"
        fail=1
    fi
    # man(1) adds its own checks (tbl, line lengths) when it is there.
    if command -v man >/dev/null 2>&1; then
        out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 \
            >/dev/null)
        if [ -n "$out" ]; then
            echo "man_pages: man --warnings -l $page:"
            echo "$out"
            fail=1
        fi
    fi
done

# The options in a --help text, one per line.
options() {
    grep -o -- '--[a-z][a-z0-9-]*' | sort -u
}

# The page's text as plain words: roff's \- becomes -, font escapes go.
plain() {
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' "$1"
}

# check PAGE: every option on standard input appears in PAGE.
check() {
    text=$(plain "$1")
    while read -r opt; do
        if ! printf '%s\n' "$text" | grep -q -- "$opt\([^a-z0-9-]\|$\)"; then
            echo "man_pages: $(basename "$1") does not name $opt"
            fail=1
        fi
    done
}

drover="$bin_dir/drover"
help=$("$drover" --help) || { echo "man_pages: drover --help failed"; exit 1; }
# The commands are the first word of each "  NAME ..." line of the list.
cmds=$(printf '%s\n' "$help" |
    sed -n '/^commands:/,/^$/s/^  \([a-z][a-z]*\).*/\1/p')
if [ -z "$cmds" ]; then
    echo "man_pages: no commands found in drover --help"
    exit 1
fi
{
    printf '%s\n' "$help"
    for c in $cmds; do
        "$drover" "$c" --help 2>&1
    done
    "$drover" local train --help 2>&1
} | options >"${TMPDIR:-/tmp}/man_pages.$$"
check "$man_dir/drover.1" <"${TMPDIR:-/tmp}/man_pages.$$"
n=$(wc -l <"${TMPDIR:-/tmp}/man_pages.$$")
rm -f "${TMPDIR:-/tmp}/man_pages.$$"
# A help text that stopped naming options would make this pass vacuously.
if [ "$n" -lt 60 ]; then
    echo "man_pages: only $n options found in drover's help texts"
    fail=1
fi

"$bin_dir/drover-broker" --help | options | {
    check "$man_dir/drover-broker.8"
    exit $fail
} || fail=1
"$bin_dir/drover-worker" --help | options | {
    check "$man_dir/drover-worker.8"
    exit $fail
} || fail=1

# Every command of drover --help has its section.
for c in $cmds; do
    case $c in
    version) ;;
    *)
        if ! grep -q "^\.SS \"drover $c" "$man_dir/drover.1"; then
            echo "man_pages: drover.1 has no section for drover $c"
            fail=1
        fi
        ;;
    esac
done

[ $fail -eq 0 ] && echo "man_pages: ok"
exit $fail
