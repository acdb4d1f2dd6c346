#!/bin/bash
# bash_completion — packaging/bash-completion/drover completes commands,
# subcommands, options, option values and file names, and offers every
# option each `drover COMMAND --help` names (so it cannot drift from the
# binary). Run twice: plain bash, and with the bash-completion package's
# _init_completion when it is installed.
#
# usage: bash_completion.sh COMPLETION_FILE BIN_DIR
set -u
file=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
bin_dir=$(cd "$2" && pwd)
fail=0

run() {
    # run MODE: the checks, in a fresh bash; MODE "full" loads the
    # bash-completion package first.
    bash --norc --noprofile -s "$1" "$file" "$bin_dir" <<'EOS'
mode=$1
file=$2
bin_dir=$3
if [[ $mode == full ]]; then
    source /usr/share/bash-completion/bash_completion || exit 1
fi
source "$file" || exit 1
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
touch "$tmp/iris_train.csv" "$tmp/iris_test.csv" "$tmp/other.txt"
cd "$tmp" || exit 1

# complete WORDS...: COMPREPLY for the last word, sorted, one line.
complete_line() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _drover
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

expect() {
    # expect WANT WORDS...: the completion is exactly WANT.
    local want=$1
    shift
    local got
    got=$(complete_line "$@")
    if [[ $got != "$want" ]]; then
        echo "[$mode] drover ${*:2}: want '$want', got '$got'"
        fail=1
    fi
}

has() {
    # has WANT WORDS...: the completion includes WANT.
    local want=$1
    shift
    local got
    got=" $(complete_line "$@") "
    if [[ $got != *" $want "* ]]; then
        echo "[$mode] drover ${*:2}: '$want' not offered (got '$got')"
        fail=1
    fi
}

expect "status submit" drover s
expect "top train" drover t
expect "push" drover models pu
expect "consumers follow forget" drover results ""
expect "--consumer" drover results forget --con
expect "--queue" drover results consumers --q
expect "watch" drover jobs w
expect "--interval-ms" drover top --int
expect "--max-batch-rows --max-delay-us" drover models config iris --max-
expect "logreg" drover local train --algo lo
expect "minmax" drover train --scale mi
expect "iris_test.csv iris_train.csv" drover infer --model iris --data iris_
expect "iris_train.csv" drover local train --out iris_tr
expect "other.txt" drover local predict --model ot
expect "" drover infer --model ir # a model name: not a file
expect "running" drover jobs list --state ru
expect "commit" drover submit --durability co
# The value of --broker before the command is not the command.
expect "list" drover --broker tcp://127.0.0.1:7470 jobs li
expect "--limit" drover --broker ipc:///x jobs list --li
expect "--wait-ms" drover jobs result 12 --wa
has "--version" drover --v
has "iris_train.csv" drover datasets push ""

# Every option of each command's --help is offered (for a command with
# subcommands: by one of them).
drover="$bin_dir/drover"
cmds=$("$drover" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z]*\).*/\1/p')
[[ -n $cmds ]] || { echo "no commands in drover --help"; exit 1; }
for c in $cmds; do
    [[ $c == version ]] && continue
    subs=$(_drover_subcommands_for "$c")
    offered=" $(complete_line drover "$c" --) "
    for s in $subs; do
        offered+=" $(complete_line drover "$c" "$s" --) "
    done
    help=$("$drover" "$c" --help 2>&1)
    [[ $c == local ]] && help+=$("$drover" local train --help 2>&1)
    for opt in $(grep -o -- '--[a-z][a-z0-9-]*' <<<"$help" | sort -u); do
        # Options a help text names but that belong to something else:
        # the workers' (up), the broker's (models, keygen), train's
        # (datasets).
        case "$c $opt" in
        "up --blas-threads" | "models --require-signed" | \
            "datasets --dataset" | "keygen --authorized-keys" | \
            "keygen --secret-key" | "keygen --broker-key")
            continue
            ;;
        esac
        if [[ $offered != *" $opt "* ]]; then
            echo "[$mode] drover $c: $opt (in its --help) is not offered"
            fail=1
        fi
    done
done
exit $fail
EOS
}

run plain || fail=1
if [[ -f /usr/share/bash-completion/bash_completion ]]; then
    run full || fail=1
else
    echo "bash_completion: the bash-completion package is absent: plain only"
fi
[[ $fail -eq 0 ]] && echo "bash_completion: ok"
exit $fail
