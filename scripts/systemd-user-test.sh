#!/usr/bin/env bash
# The project's real units under a real systemd: a `systemd --user` manager in a private mount
# namespace runs copies of systemd/blip-captiond.{socket,service} around the built daemon and the
# tiny-a fixture model, and this script checks
#   1. socket activation: the service stays inactive until the first connection, which it serves
#      with the flags of its EnvironmentFile (the settings file, moved under the runtime dir);
#   2. Type=notify: the unit turns active only after READY=1, and StatusText is the daemon's STATUS=;
#   3. watchdog: a daemon that stops pinging (SIGSTOP) is killed by the watchdog (Result=watchdog);
#   4. restart with the socket kept: the socket keeps listening (same inode) and the next connection
#      is served by a new daemon (new MainPID);
#   5. a template instance beside it: copies of systemd/blip-captiond@.{socket,service} as
#      blip-captiond@test.*, socket-activated on their own socket (the descriptor named after the
#      unit, blip-captiond@test.socket), the model from the instance's folder and extra flags from
#      the instance's EnvironmentFile.
# One line per check (PASS/FAIL + evidence); exit 0 when all pass, 1 when one fails, 77 (with the
# reason) when this machine cannot run a user manager.
#
#   scripts/systemd-user-test.sh              (needs root and the debug build in .build/debug)
#   scripts/systemd-user-test.sh --precheck   (only "can a user manager run here?": exit 0 with
#                                              "OK: …", or 77 with "SKIP: reason"; starts nothing)
#
# How the manager is kept from touching the rest of the machine:
# - It is never the system manager (its boot jobs would empty /tmp): `systemd --user`, and
#   /run/systemd/system exists only on a tmpfs inside the private mount namespace (that marker is how
#   systemd tools decide "booted with systemd").
# - It gets a cgroup of its own (below this script's) before it starts: a user manager adopts the
#   cgroup it finds itself in as its root and moves every process in it into its init.scope, so
#   started from a machine's root cgroup it would move all the machine's processes.
# - Its runtime directory is under /run, not /tmp (PrivateTmp= would hide it from the daemon).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=$root/.build/debug
model=$root/Tests/Fixtures/models/tiny-a

skip() { echo "SKIP: $*"; exit 77; }

# ---- Can this machine run a user manager? -------------------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "needs root (unshare --mount and a cgroup of its own for the manager)"
for tool in systemd systemctl unshare nsenter; do
    # scripts/test.sh installs them (BLIP_TESTS_REQUIRE_TOOLS=1): there a missing one is a failure.
    if ! command -v $tool >/dev/null; then
        [ "${BLIP_TESTS_REQUIRE_TOOLS:-0}" != 1 ] || { echo "FAIL: $tool is not installed (scripts/install-deps.sh --test installs it)"; exit 1; }
        skip "$tool is not installed"
    fi
done
for exe in "$bin/blip-captiond" "$bin/blip-caption"; do
    [ -x "$exe" ] || skip "$exe is not built (swift build)"
done
[ -f "$model/config.json" ] || skip "fixture model $model is missing"
unshare --mount --propagation private true 2>/dev/null || skip "unshare --mount is not permitted here"

# systemd's own hierarchy: name=systemd (v1/hybrid) or the unified one (pure cgroup v2).
if [ -f /sys/fs/cgroup/systemd/cgroup.procs ]; then
    primary=/sys/fs/cgroup/systemd; primary_key='name=systemd'
    [ -f /sys/fs/cgroup/unified/cgroup.procs ] && unified=/sys/fs/cgroup/unified || unified=
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    primary=/sys/fs/cgroup; primary_key=''; unified=
else
    skip "no systemd-usable cgroup hierarchy under /sys/fs/cgroup"
fi
# What is left (the manager coming up in its namespace) is only known by trying: exit 77 below.
if [ "${1:-}" = --precheck ]; then echo "OK: root, systemd tools, debug build, unshare --mount, cgroup hierarchy $primary"; exit 0; fi
# The new cgroup goes below this script's memory cgroup (else its primary one), so the manager and
# the daemon stay accounted where this script is.
base=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
[ -n "$base" ] || base=$(awk -F: -v k="$primary_key" '$2 == k { print $3 }' /proc/self/cgroup)
base=${base%/}
cgroup=$base/blip-systemd-test.$$

rt=$(mktemp -d /run/blip-systemd-test.XXXXXX)
sock=$rt/blip-captiond/blip-captiond.sock
units=$rt/units
mkdir -p "$units"
upid=; mpid=
# Path prefixes of $cgroup that did not exist before, per hierarchy: removed again at the end.
created=()
for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    p=$cgroup
    while [ -n "$p" ] && [ "$p" != / ]; do
        [ -d "$h${p#/}" ] || created+=("$h${p#/}")
        p=${p%/*}
    done
done

cleanup() {
    set +e
    if [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null; then
        kill -TERM "$mpid"     # a user manager stops its units and exits on SIGTERM
        for _ in $(seq 50); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$mpid" 2>/dev/null
    fi
    [ -n "$upid" ] && wait "$upid" 2>/dev/null
    # Anything the manager left in its cgroup (it started all of it) goes too.
    for p in $(cat "$primary/${cgroup#/}"/cgroup.procs "$primary/${cgroup#/}"/*/cgroup.procs \
                   "$primary/${cgroup#/}"/*/*/cgroup.procs 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    sleep 0.2
    # The mount namespace (tmpfs, bind mounts) died with its last process; the cgroups remain.
    for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
        [ -d "$h${cgroup#/}" ] && find "$h${cgroup#/}" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    for d in "${created[@]}"; do rmdir "$d" 2>/dev/null; done
    rm -rf "$rt"
}
trap cleanup EXIT

# ---- User-unit copies of the project's units ----------------------------------------------------
# Kept: Type=notify, NotifyAccess, Restart=on-failure, FileDescriptorName, Accept=no, the sandbox
# options this manager can still apply (PrivateTmp, PrivateNetwork, ProtectHostname, NoNewPrivileges,
# MemoryDenyWriteExecute, RestrictAddressFamilies, SystemCallFilter, CapabilityBoundingSet…).
# Changed: the socket path, ExecStart (built binary, tiny-a), WatchdogSec 30 → 2, RestartSec=1 (the
# failed state stays visible for a second before the restart), TimeoutAbortSec=3 (the watchdog's
# SIGABRT otherwise waits TimeoutStopSec=20 for the Swift runtime's crash handler before SIGKILL),
# logs to a file (no journald here).
# Dropped: DynamicUser/StateDirectory/BLIP_MODEL (no users or state directory to create),
# SocketGroup (the blip-caption group need not exist), and the mount-namespace options that make
# the exec fail with 226/NAMESPACE inside this nested private namespace (ProtectSystem, ProtectHome,
# PrivateDevices, ProtectKernelTunables/Modules/Logs, ProtectControlGroups, ProtectClock). DefaultDependencies=no: a user manager
# without a system manager has no basic.target/shutdown.target to order against.
sed -e 's|^\[Unit\]$|[Unit]\nDefaultDependencies=no|' \
    -e "s|^ListenStream=.*|ListenStream=$sock|" \
    -e '/^SocketGroup=/d' \
    systemd/blip-captiond.socket > "$units/blip-captiond.socket"
# PrivateTmp= would hide a checkout under /tmp (where CI may clone) from the daemon itself.
privtmp='s|^$||'
case "$bin$model" in */tmp/*|/tmp/*) privtmp='/^PrivateTmp=/d' ;; esac
sed -e 's|^\[Unit\]$|[Unit]\nDefaultDependencies=no|' \
    -e "$privtmp" \
    -e "s|^ExecStart=/usr/local/bin/blip-captiond |ExecStart=$bin/blip-captiond --model $model |" \
    -e "s|^EnvironmentFile=-/etc/blip-captiond/blip-captiond.conf$|EnvironmentFile=-$rt/conf/blip-captiond.conf|" \
    -e 's|^WatchdogSec=.*|WatchdogSec=2\nRestartSec=1\nTimeoutAbortSec=3|' \
    -e "s|^Type=notify$|Type=notify\nStandardOutput=append:$rt/daemon.log\nStandardError=inherit|" \
    -e '/^DynamicUser=/d' -e '/^StateDirectory=/d' -e '/^Environment=BLIP_MODEL=/d' \
    -E -e '/^(ProtectSystem|ProtectHome|PrivateDevices|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectClock)=/d' \
    systemd/blip-captiond.service > "$units/blip-captiond.service"
for key in Type=notify WatchdogSec=2 Restart=on-failure DefaultDependencies=no "EnvironmentFile=-$rt/conf/blip-captiond.conf" \
           "ExecStart=$bin/blip-captiond --model $model --idle-exit 600 \$BLIP_CAPTIOND_OPTIONS"; do
    grep -qxF "$key" "$units/blip-captiond.service" || { echo "FAIL units: $key missing from the generated service"; exit 1; }
done
grep -q '^FileDescriptorName=blip-captiond' "$units/blip-captiond.socket" || { echo "FAIL units: FileDescriptorName missing"; exit 1; }

# The templates, changed the same way, except that the instance's model folder and
# EnvironmentFile are kept (moved under $rt) and ExecStart= keeps the template's own arguments
# (--idle-exit 600 $BLIP_CAPTIOND_OPTIONS): instance "test" serves $rt/models/test (a link to
# tiny-a) with the flags in $rt/conf/test.conf.
sed -e 's|^\[Unit\]$|[Unit]\nDefaultDependencies=no|' \
    -e "s|^ListenStream=/run/blip-captiond/|ListenStream=$rt/blip-captiond/|" \
    -e '/^SocketGroup=/d' \
    systemd/blip-captiond@.socket > "$units/blip-captiond@.socket"
sed -e 's|^\[Unit\]$|[Unit]\nDefaultDependencies=no|' \
    -e "$privtmp" \
    -e "s|^ExecStart=/usr/local/bin/blip-captiond |ExecStart=$bin/blip-captiond |" \
    -e 's|^WatchdogSec=.*|WatchdogSec=2\nRestartSec=1\nTimeoutAbortSec=3|' \
    -e "s|^Type=notify$|Type=notify\nStandardOutput=append:$rt/daemon-%i.log\nStandardError=inherit|" \
    -e "s|^Environment=BLIP_MODEL=/var/lib/blip-captiond/%i$|Environment=BLIP_MODEL=$rt/models/%i|" \
    -e "s|^EnvironmentFile=-/etc/blip-captiond/%i.conf$|EnvironmentFile=-$rt/conf/%i.conf|" \
    -e '/^DynamicUser=/d' -e '/^StateDirectory=/d' \
    -E -e '/^(ProtectSystem|ProtectHome|PrivateDevices|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectClock)=/d' \
    systemd/blip-captiond@.service > "$units/blip-captiond@.service"
for key in "ListenStream=$rt/blip-captiond/%i.sock"; do
    grep -qxF "$key" "$units/blip-captiond@.socket" || { echo "FAIL units: $key missing from the generated template socket"; exit 1; }
done
for key in "Environment=BLIP_MODEL=$rt/models/%i" "EnvironmentFile=-$rt/conf/%i.conf" WatchdogSec=2 Type=notify \
           "ExecStart=$bin/blip-captiond --idle-exit 600 \$BLIP_CAPTIOND_OPTIONS"; do
    grep -qxF "$key" "$units/blip-captiond@.service" || { echo "FAIL units: $key missing from the generated template service"; exit 1; }
done
mkdir -p "$rt/models" "$rt/conf"
ln -s "$model" "$rt/models/test"
echo 'BLIP_CAPTIOND_OPTIONS=--queue-depth 7 --max-beams 4' > "$rt/conf/test.conf"
echo 'BLIP_CAPTIOND_OPTIONS=--queue-depth 9' > "$rt/conf/blip-captiond.conf"

# ---- The manager ---------------------------------------------------------------------------------
# Inside the namespace: join the new cgroup (and refuse to start if that failed), mount the tmpfs
# with the /run/systemd/system marker, then exec the manager (its pid is the one in manager.pid).
unshare --mount --propagation private --fork bash -c '
    set -e
    rt=$1 primary=$2 unified=$3 cgroup=$4 key=$5
    mkdir -p "$primary/${cgroup#/}"; echo $$ > "$primary/${cgroup#/}/cgroup.procs"
    if [ -n "$unified" ]; then mkdir -p "$unified/${cgroup#/}"; echo $$ > "$unified/${cgroup#/}/cgroup.procs"; fi
    now=$(awk -F: -v k="$key" "\$2 == k { print \$3 }" /proc/self/cgroup)
    [ "$now" = "$cgroup" ] || { echo "could not move into cgroup $cgroup (in ${now:-?})" >&2; exit 3; }
    mount -t tmpfs -o mode=0755 tmpfs /run/systemd
    mkdir /run/systemd/system
    echo $$ > "$rt/manager.pid"
    export XDG_RUNTIME_DIR=$rt SYSTEMD_UNIT_PATH=$rt/units:
    exec systemd --user
' manager "$rt" "$primary" "$unified" "$cgroup" "$primary_key" >"$rt/manager.out" 2>&1 &
upid=$!

sctl() { nsenter -t "$mpid" -m -- env XDG_RUNTIME_DIR="$rt" systemctl --user --no-pager "$@"; }
prop() { sctl show -p "$2" --value "$1"; }

for _ in $(seq 100); do
    [ -s "$rt/manager.pid" ] && mpid=$(cat "$rt/manager.pid") && [ -S "$rt/systemd/private" ] && \
        sctl is-system-running >/dev/null 2>&1 && break
    kill -0 "$upid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$mpid" ] || ! sctl is-system-running >/dev/null 2>&1; then
    state=$( [ -n "$mpid" ] && sctl is-system-running 2>&1 || true)
    reason=$(tail -n 3 "$rt/manager.out" | tr '\n' ' ')
    case $state in
        degraded|running|starting|initializing) ;;  # up, only some stock user unit failed
        *) skip "systemd --user did not come up in a private mount namespace: ${reason:-no output} ${state}" ;;
    esac
fi
echo "manager: systemd --user pid $mpid ($(systemd --version | head -n1)), cgroup $cgroup, runtime dir $rt"

set +e   # from here every check reports instead of stopping the script
failed=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failed=1; }
health() { timeout -s KILL 20 "$bin/blip-caption" health --socket "$sock" 2>&1; }

# ---- 1. Socket activation -----------------------------------------------------------------------
sctl start blip-captiond.socket
before=$(prop blip-captiond.service ActiveState)
socket_state="$(prop blip-captiond.socket ActiveState)/$(prop blip-captiond.socket SubState)"
inode=$(stat -c %i "$sock" 2>/dev/null || echo none)
# While the first connection starts the daemon, sample the unit's state (for check 2).
# (Stopped by a file, not a signal: a test runner may start this script with SIGTERM blocked.)
( while [ ! -e "$rt/stop-sampling" ]; do
      echo "$(sctl show -p ActiveState,SubState,StatusText blip-captiond.service | tr '\n' ' ')"; sleep 0.02
  done ) > "$rt/samples" 2>/dev/null &
sampler=$!
first=$(health) && first_rc=0 || first_rc=$?
touch "$rt/stop-sampling"; wait "$sampler" 2>/dev/null || true
after=$(prop blip-captiond.service ActiveState)/$(prop blip-captiond.service SubState)
pid1=$(prop blip-captiond.service MainPID)
limits=$(timeout -s KILL 20 "$bin/blip-caption" info --socket "$sock" 2>&1 | grep -o 'limits:.*' | head -n1)
if [ "$before" = inactive ] && [ "$socket_state" = active/listening ] && [ "$first_rc" -eq 0 ] && \
   [ "$first" = SERVING ] && [ "$after" = active/running ] && [ "$pid1" -gt 0 ] && [[ $limits == *"queue 9" ]]; then
    pass "socket activation: socket $socket_state at $sock, service $before before the first connection; health said '$first', service then $after (MainPID $pid1); Info '$limits' (--queue-depth 9 from the service's EnvironmentFile)"
else
    fail "socket activation: socket $socket_state, service '$before' before; health (exit $first_rc) said '$first'; service then '$after', MainPID $pid1; Info '${limits:-no limits line}' (want queue 9 from the EnvironmentFile)"
fi

# ---- 2. Type=notify -----------------------------------------------------------------------------
type=$(prop blip-captiond.service Type)
status=$(prop blip-captiond.service StatusText)
started=$(prop blip-captiond.service ExecMainStartTimestampMonotonic)
active=$(prop blip-captiond.service ActiveEnterTimestampMonotonic)
# A Type=simple unit is active the moment the process is forked; this one only after READY=1, which
# the daemon sends after loading the model and a warm-up caption (its log says how long they took).
# The sampler may also have caught the unit in activating/start with the daemon's earlier STATUS=.
delay_ms=$(( (active - started) / 1000 ))
warm_ms=$(grep -m1 -o 'warm-up caption took [0-9]* ms' "$rt/daemon.log" | grep -o '[0-9]*' || echo 0)
load_ms=$(grep -m1 -o 'model loaded in [0-9]* ms' "$rt/daemon.log" | grep -o '[0-9]*' || echo 0)
seen=$(grep 'ActiveState=activating' "$rt/samples" 2>/dev/null | grep -o 'StatusText=[^=]*' | sed 's/ [A-Za-z]*$//' | grep -v '^StatusText=$' | sort -u | tr '\n' ';')
if [ "$type" = notify ] && [[ $status == serving:* ]] && [ "$started" -gt 0 ] && [ "$delay_ms" -ge $(( warm_ms + load_ms )) ]; then
    pass "Type=notify: StatusText='$status'; active $delay_ms ms after exec, after the model load ($load_ms ms) and warm-up ($warm_ms ms) that precede READY=1; while activating: ${seen:-not sampled}"
else
    fail "Type=notify: Type=$type StatusText='$status'; active $delay_ms ms after exec (load $load_ms ms, warm-up $warm_ms ms)"
fi

# ---- 3. Watchdog --------------------------------------------------------------------------------
watchdog_usec=$(prop blip-captiond.service WatchdogUSec)
restarts0=$(prop blip-captiond.service NRestarts)
[ "$pid1" -gt 0 ] && kill -STOP "$pid1"   # never pid 0: that is this script's process group
stopped_at=$(date +%s.%N)
result=; r=; pid2=0
for _ in $(seq $(( pid1 > 0 ? 150 : 0 ))); do
    r=$(prop blip-captiond.service Result)
    echo "$(date +%T.%N | cut -c1-12) $(sctl show -p ActiveState,SubState,Result,MainPID,NRestarts blip-captiond.service | tr '\n' ' ')" >> "$rt/watchdog-trace"
    [ "$r" = watchdog ] && result=watchdog
    pid2=$(prop blip-captiond.service MainPID)
    [ -n "$result" ] && [ "$pid2" -gt 0 ] && [ "$pid2" != "$pid1" ] && break
    sleep 0.1
done
killed_after=$(awk -v a="$stopped_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
restarts1=$(prop blip-captiond.service NRestarts)
gone=yes; { [ "$pid1" -le 0 ] || kill -0 "$pid1" 2>/dev/null; } && gone=no
if [ "$result" = watchdog ] && [ "$gone" = yes ] && [ "$restarts1" -gt "$restarts0" ]; then
    pass "watchdog: WatchdogUSec=$watchdog_usec; SIGSTOPped PID $pid1 → Result=watchdog, PID $pid1 gone, NRestarts $restarts0 → $restarts1 (${killed_after} s after SIGSTOP); states: $(uniq -f1 "$rt/watchdog-trace" | awk '{ print $5 "/" $6 }' | sed 's/[A-Za-z]*State=//g' | tr '\n' ' ')"
else
    fail "watchdog: WatchdogUSec=$watchdog_usec; after SIGSTOP of $pid1: Result seen '${result:-$r}', old pid gone: $gone, NRestarts $restarts0 → $restarts1, MainPID $pid2"
    [ "$pid1" -gt 0 ] && kill -CONT "$pid1" 2>/dev/null
fi

# ---- 4. Restart with the socket kept -------------------------------------------------------------
socket_after="$(prop blip-captiond.socket ActiveState)/$(prop blip-captiond.socket SubState)"
inode_after=$(stat -c %i "$sock" 2>/dev/null || echo none)
second=$(health) && second_rc=0 || second_rc=$?
pid3=$(prop blip-captiond.service MainPID)
if [[ $socket_after == active/listening || $socket_after == active/running ]] && [ "$inode_after" = "$inode" ] && [ "$second_rc" -eq 0 ] && \
   [ "$second" = SERVING ] && [ "$pid3" -gt 0 ] && [ "$pid3" != "$pid1" ]; then
    pass "restart with the socket kept: socket still $socket_after (inode $inode unchanged); health said '$second' from new MainPID $pid3 (was $pid1)"
else
    fail "restart with the socket kept: socket $socket_after, inode $inode → $inode_after, health (exit $second_rc) '$second', MainPID $pid1 → $pid3"
fi

# ---- 5. A template instance beside it ------------------------------------------------------------
# Two models on one host: blip-captiond@test runs next to the plain service (still running from 4).
tsock=$rt/blip-captiond/test.sock
sctl start blip-captiond@test.socket
tbefore=$(prop blip-captiond@test.service ActiveState)
tsocket_state="$(prop blip-captiond@test.socket ActiveState)/$(prop blip-captiond@test.socket SubState)"
tanswer=$(timeout -s KILL 20 "$bin/blip-caption" health --socket "$tsock" 2>&1) && trc=0 || trc=$?
tafter=$(prop blip-captiond@test.service ActiveState)/$(prop blip-captiond@test.service SubState)
tpid=$(prop blip-captiond@test.service MainPID)
tlimits=$(timeout -s KILL 20 "$bin/blip-caption" info --socket "$tsock" 2>&1 | grep -o 'limits:.*' | head -n1)
tlog=$(cat "$rt/daemon-test.log" 2>/dev/null)
adopted=$(grep -o 'adopted 1 socket(s) from systemd: .*' <<<"$tlog" | head -n1)
loading=$(grep -o "loading model $rt/models/test" <<<"$tlog" | head -n1)
plain=$(prop blip-captiond.service ActiveState)
if [ "$tbefore" = inactive ] && [ "$tsocket_state" = active/listening ] && [ "$trc" -eq 0 ] && [ "$tanswer" = SERVING ] && \
   [ "$tafter" = active/running ] && [ "$tpid" -gt 0 ] && [ "$tpid" != "$pid3" ] && \
   [ "$adopted" = "adopted 1 socket(s) from systemd: blip-captiond@test.socket" ] && [ -n "$loading" ] && \
   [[ $tlimits == *" 4 beams,"*"queue 7" ]] && [ "$plain" = active ]; then
    pass "template instance: blip-captiond@test.socket $tsocket_state at $tsock, service $tbefore before; health said '$tanswer', service then $tafter (MainPID $tpid, beside blip-captiond.service $plain at MainPID $pid3); log: '$adopted', '$loading'; Info '$tlimits' (--queue-depth 7 --max-beams 4 from the EnvironmentFile)"
else
    fail "template instance: socket $tsocket_state, service '$tbefore' before; health (exit $trc) said '$tanswer'; service then '$tafter', MainPID $tpid; log: '${adopted:-no adoption line}', '${loading:-no loading line for $rt/models/test}'; Info '${tlimits:-no limits line}' (want 4 beams, queue 7); plain service $plain"
fi

if [ "$failed" -ne 0 ]; then
    echo "--- systemctl --user status ---"; sctl status blip-captiond.service blip-captiond.socket blip-captiond@test.service blip-captiond@test.socket 2>&1 | head -n 60
    echo "--- states after SIGSTOP ---"; uniq -f1 "$rt/watchdog-trace" 2>/dev/null | head -n 20
    echo "--- daemon log ---"; tail -n 30 "$rt/daemon.log" 2>/dev/null
    echo "--- template daemon log ---"; tail -n 30 "$rt/daemon-test.log" 2>/dev/null
fi
exit "$failed"
