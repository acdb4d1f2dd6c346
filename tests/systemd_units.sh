#!/bin/sh
# systemd_units — the installed drover-broker.service and
# drover-worker@.service pass `systemd-analyze verify` with no warning
# (syntax, the binaries they run exist in the install tree, the man pages
# their Documentation= names are installed) and keep the settings an
# operator relies on: the drover user, the state directory, the
# environment files, SIGTERM with time to drain, restart on failure, SIGHUP
# on reload for the broker, and the hardening.
#
# usage: systemd_units.sh BUILD_DIR
# Exits 77 (skipped) where systemd-analyze is not installed.
set -u
build=$1
fail=0
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd_units: systemd-analyze is not installed: skipped"
    exit 77
fi
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
if ! DESTDIR="$dest/root" cmake --install "$build" --prefix /usr \
    >"$dest/install.log" 2>&1; then
    cat "$dest/install.log"
    echo "systemd_units: cmake --install failed"
    exit 1
fi

say() {
    echo "systemd_units: $*"
    fail=1
}

# The units as installed, but running the binaries of the install tree
# (verify checks that ExecStart's program exists), under their own names.
mkdir "$dest/units"
for u in drover-broker.service drover-worker@.service; do
    src="$dest/root/usr/lib/systemd/system/$u"
    [ -f "$src" ] || { say "$u was not installed"; continue; }
    sed "s|^ExecStart=/usr/bin/|ExecStart=$dest/root/usr/bin/|" "$src" \
        >"$dest/units/$u"
done
cp "$dest/units/drover-worker@.service" "$dest/units/drover-worker@gpu1.service"

out=$(cd "$dest/units" && MANPATH="$dest/root/usr/share/man" \
    systemd-analyze verify drover-broker.service drover-worker@.service \
    drover-worker@gpu1.service 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
    say "systemd-analyze verify (exit $rc):"
    echo "$out"
fi

# has UNIT LINE: UNIT holds LINE exactly.
has() {
    grep -qxF -- "$2" "$dest/units/$1" || say "$1 lacks '$2'"
}
for u in drover-broker.service drover-worker@.service; do
    for line in "User=drover" "KillSignal=SIGTERM" "Restart=on-failure" \
        "RestartPreventExitStatus=2" "NoNewPrivileges=yes" \
        "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" \
        "CapabilityBoundingSet=" "SystemCallFilter=@system-service"; do
        has "$u" "$line"
    done
done
has drover-broker.service "EnvironmentFile=-/etc/drover/broker.env"
has drover-broker.service "StateDirectory=drover"
has drover-broker.service 'ExecReload=/bin/kill -HUP $MAINPID'
grep -q '^ExecStart=.*/drover-broker --data %S/drover ' \
    "$dest/units/drover-broker.service" ||
    say "the broker does not keep its data in the state directory"
has drover-worker@.service "EnvironmentFile=-/etc/drover/worker.env"
has drover-worker@.service "EnvironmentFile=-/etc/drover/worker-%i.env"
grep -q '^ExecStart=.*/drover-worker --name %i ' \
    "$dest/units/drover-worker@.service" ||
    say "the worker template does not name the worker after its instance"
# Long enough to drain: a worker finishes its jobs before it stops.
grep -q '^TimeoutStopSec=10min$' "$dest/units/drover-worker@.service" ||
    say "drover-worker@.service: TimeoutStopSec is not 10min"

# The broker reloads keys on SIGHUP: the unit's ExecReload relies on it.
"$dest/root/usr/bin/drover-broker" --help 2>&1 | grep -q 'SIGHUP' ||
    say "drover-broker --help no longer mentions SIGHUP (ExecReload)"

[ $fail -eq 0 ] && echo "systemd_units: ok"
exit $fail
