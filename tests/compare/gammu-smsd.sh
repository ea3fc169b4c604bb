#!/usr/bin/env bash
# gsmgate vs Debian's gammu-smsd on the same simulated modem: how long 200 queued messages take
# to reach the network, and how long an inbound text takes to get its automatic reply (time from
# the phone's text to the reply's SMS-SUBMIT at the network). Anyone can rerun it:
#
#   tests/compare/gammu-smsd.sh            # builds gsmgate --release if GSMGATE is not set
#   GSMGATE=/path/to/gsmgate SAMPLES=5 tests/compare/gammu-smsd.sh
#
# Needs: gammu-smsd and gammu-smsd-inject (Debian package gammu-smsd), python3.
# Both gateways drive a fresh `gsmgate sim --modems 1` with zero simulated latency, so the figures
# are each gateway's own overhead (AT round trips, polling, storage), not the network's.
# gammu-smsd: FILES backend, CommTimeout = 1 (poll the outbox and the SIM every second; its
# default is 30), RunOnReceive = gammu-smsd-inject of the reply; run twice, with LoopSleep = 1
# (its default: at most one outbox pass per second) and LoopSleep = 0 (no sleep, a busy loop).
# gsmgate: `gsmgate daemon` with per_minute = 600 (limits out of the way), jitter 0, quiet hours
# off; the 200 messages are one broadcast to 200 imported members; the reply is the welcome text
# an unknown number gets.
# The replies are measured before the 200-message batch, on both sides: after about 30 sends with
# status reports, gsmgate stops reading the reports its modem stores in SR (docs/benchmarks.md,
# known defect), the simulated SR memory fills and later inbound texts wait in the network.
# Every process started here is stopped by PID on exit, also on failure or Ctrl-C.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
N="${N:-200}"
SAMPLES="${SAMPLES:-5}"
simctl="$here/simctl.py"

for tool in gammu-smsd gammu-smsd-inject python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
if [ -z "${GSMGATE:-}" ]; then
    (cd "$repo" && cargo build --release --quiet)
    GSMGATE="${CARGO_TARGET_DIR:-$repo/target}/release/gsmgate"
fi

W="$(mktemp -d /tmp/gcmp.XXXXXX)"
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    if [ "$status" -ne 0 ]; then
        echo "FAILED (status $status); logs kept in $W" >&2
    elif [ -z "${KEEP:-}" ]; then
        rm -rf "$W"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # wait_for SECONDS DESCRIPTION CMD...
    local secs="$1" what="$2"; shift 2
    for _ in $(seq $((secs * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for $what" >&2
    return 1
}

start_sim() { # start_sim DIR
    "$GSMGATE" sim --modems 1 --dir "$1" --send-latency-ms 0-0 --latency-ms 0-0 \
        >"$1.json" 2>"$1.log" &
    pids+=($!)
    wait_for 20 "simulator in $1" test -S "$1/control.sock"
}

stop_pid() { # stop_pid PID
    kill "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
}

is_number() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

numbers() { # the N recipients, 312-2xx-xxxx
    for i in $(seq 0 $((N - 1))); do printf '+13122%02d%04d\n' $((i / 10000)) $((i % 10000)); done
}

# ------------------------------------------------------------------------------------------------
# run_gammu NAME LOOPSLEEP: one gammu-smsd run on a fresh simulator; sets g_batch, g_queue, g_reply,
# g_samples and g_cpu.
run_gammu() {
    local name="$1" loopsleep="$2"
    echo "== gammu-smsd $(gammu-smsd --version | head -1 | awk '{print $NF}'), LoopSleep = $loopsleep"
    local G="$W/$name"
    mkdir -p "$G/inbox" "$G/outbox" "$G/sent" "$G/error" "$G/staging"
    start_sim "$W/sim-$name"
    local ctl="$W/sim-$name/control.sock"
    cat >"$G/smsdrc" <<EOF
[gammu]
device = $W/sim-$name/modem0
connection = at115200

[smsd]
Service = files
PhoneID = sim
LogFile = $G/smsd.log
DebugLevel = 1
InboxPath = $G/inbox/
OutboxPath = $G/outbox/
SentSMSPath = $G/sent/
ErrorSMSPath = $G/error/
CommTimeout = 1
ReceiveFrequency = 1
LoopSleep = $loopsleep
StatusFrequency = 0
CheckSecurity = 0
CheckBattery = 0
RunOnReceive = $G/on-receive.sh
EOF
    # Same backend, other outbox: messages are prepared there, then moved into the outbox at once.
    sed "s|^OutboxPath = .*|OutboxPath = $G/staging/|" "$G/smsdrc" >"$G/stagerc"
    cat >"$G/on-receive.sh" <<EOF
#!/bin/sh
exec gammu-smsd-inject -c "$G/smsdrc" TEXT "\$SMS_1_NUMBER" -text "Thanks, we got your message." >>"$G/on-receive.log" 2>&1
EOF
    chmod +x "$G/on-receive.sh"

    gammu-smsd -c "$G/smsdrc" >"$G/stdout.log" 2>&1 &
    local gammu_pid=$!
    pids+=("$gammu_pid")
    # Warm-up: one message through proves the phone is initialised and the outbox is read.
    gammu-smsd-inject -c "$G/smsdrc" TEXT +13129990000 -text "warm-up" >/dev/null
    if ! python3 "$simctl" "$ctl" batch 1 60 -- true >/dev/null; then
        echo "gammu-smsd did not send the warm-up message; its log:" >&2
        tail -n 40 "$G/smsd.log" >&2
        exit 1
    fi
    local replies=()
    for k in $(seq 1 "$SAMPLES"); do
        replies+=("$(python3 "$simctl" "$ctl" reply "+1415555$((200 + k))" "hello $k" 60)")
    done
    for n in $(numbers); do
        gammu-smsd-inject -c "$G/stagerc" TEXT "$n" \
            -text "Compare: the meeting is on Thursday at 7pm." >/dev/null
    done
    read -r g_batch g_queue < <(python3 "$simctl" "$ctl" batch "$N" 900 -- \
        sh -c "mv '$G'/staging/* '$G/outbox/'")
    is_number "${g_batch:-}" || { echo "gammu-smsd did not send the $N messages" >&2; exit 1; }
    g_cpu=$(cpu_of "$gammu_pid")
    stop_pid "$gammu_pid"
    g_reply=$(printf '%s\n' "${replies[@]}" | median)
    g_samples="${replies[*]}"
    echo "   $N messages: ${g_batch} s (queueing step ${g_queue} s); reply samples: $g_samples s;" \
        "CPU ${g_cpu} s"
}

cpu_of() { awk -v t="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print ($12 + $13) / t}' "/proc/$1/stat"; }

if [ -z "${SKIP_GAMMU:-}" ]; then
    run_gammu gammu1 1
    g1_batch=$g_batch g1_reply=$g_reply g1_cpu=$g_cpu
    run_gammu gammu0 0
    g0_batch=$g_batch g0_reply=$g_reply g0_cpu=$g_cpu
else # SKIP_GAMMU=1: only the gsmgate half (quick reruns)
    g1_batch=nan g1_reply=nan g1_cpu=nan g0_batch=nan g0_reply=nan g0_cpu=nan
fi

# ------------------------------------------------------------------------------------------------
echo "== gsmgate $("$GSMGATE" --version | awk '{print $NF}')"
S="$W/gsm"
mkdir -p "$S"
start_sim "$W/sim-gsmgate"
ctl="$W/sim-gsmgate/control.sock"
cat >"$S/gsmgate.toml" <<EOF
[daemon]
state_dir = "$S/state"
admin_socket = "$S/a.sock"
log = "info"

[simulator]
enabled = false

[[modem]]
name = "sim0"
port = "$W/sim-gsmgate/modem0"
per_minute = 600
per_hour = 36000
per_day = 864000

[dispatch]
jitter_ms = 0

[dispatch.quiet_hours]
enabled = false

[community]
org_name = "Compare"
EOF
"$GSMGATE" daemon --config "$S/gsmgate.toml" >"$S/daemon.log" 2>&1 &
daemon_pid=$!
pids+=("$daemon_pid")
gsm() { "$GSMGATE" --socket "$S/a.sock" "$@"; }
wait_for 30 "gsmgate admin socket" gsm status
# Warm-up, as for gammu-smsd.
python3 "$simctl" "$ctl" batch 1 60 -- \
    "$GSMGATE" --socket "$S/a.sock" send --to +13129990000 "warm-up" >/dev/null
{ echo "number,name"; numbers | awk '{print $1 ",Member " NR}'; } >"$S/members.csv"
gsm members import "$S/members.csv" >/dev/null
s_replies=()
for k in $(seq 1 "$SAMPLES"); do
    s_replies+=("$(python3 "$simctl" "$ctl" reply "+1415555$((200 + k))" "hello $k" 60)")
done
read -r s_batch s_queue < <(python3 "$simctl" "$ctl" batch "$N" 900 -- \
    "$GSMGATE" --socket "$S/a.sock" broadcast "Compare: the meeting is on Thursday at 7pm.")
is_number "${s_batch:-}" || { echo "gsmgate did not send the $N messages" >&2; exit 1; }
s_cpu=$(cpu_of "$daemon_pid")
stop_pid "$daemon_pid"
s_reply=$(printf '%s\n' "${s_replies[@]}" | median)
echo "   $N messages: ${s_batch} s (queueing step ${s_queue} s); reply samples: ${s_replies[*]} s;" \
    "CPU ${s_cpu} s"

# ------------------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
rate() { awk -v a="$1" -v n="$N" 'BEGIN {printf "%.1f", n / a}'; }
row() { printf '%-38s %13s %13s %9s %13s %13s\n' "$@"; }
echo
echo "simulated modem, 0 ms latency; ratio = gammu-smsd / gsmgate (above 1: gsmgate is faster)"
row "figure" "gammu Loop=1" "gammu Loop=0" "gsmgate" "ratio Loop=1" "ratio Loop=0"
row "$N queued -> last SUBMIT (s)" "$g1_batch" "$g0_batch" "$s_batch" \
    "$(ratio "$g1_batch" "$s_batch")" "$(ratio "$g0_batch" "$s_batch")"
row "  messages per second" "$(rate "$g1_batch")" "$(rate "$g0_batch")" "$(rate "$s_batch")" "" ""
row "inbound -> reply SUBMIT, median (s)" "$g1_reply" "$g0_reply" "$s_reply" \
    "$(ratio "$g1_reply" "$s_reply")" "$(ratio "$g0_reply" "$s_reply")"
row "process CPU, whole run (s)" "$g1_cpu" "$g0_cpu" "$s_cpu" "" ""
