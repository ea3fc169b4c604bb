#!/usr/bin/env bash
# Rewrites tools/link-order/gsmgate.order: the functions the daemon runs while it starts, brings
# up two simulated modems, answers the admin socket, imports members and sends a broadcast with
# status reports (the scenario of `cargo bench --bench footprint`, 100 members). The linker front
# end (tools/link-order/cc) places these functions together; see docs/daemon.md, "Footprint".
#
#   tools/link-order/regenerate.sh      # from the repository root; needs valgrind and python3
#
# A maintainer's step, not part of the build: run it when the footprint bench shows the daemon's
# text growing (new code on the daemon's path, a new Rust toolchain or new dependencies). A stale
# order still links; functions it does not name are placed after the named ones.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "regenerate: needs valgrind (apt-get install valgrind)" >&2; exit 1; }

# The release build with its symbols kept (tools/link-order/cc), in its own target dir so the
# installed build is not relinked.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}/link-order
GSMGATE_LINK_KEEP_SYMBOLS=1 cargo build --release --locked --bin gsmgate
bin=$CARGO_TARGET_DIR/release/gsmgate

d=$(mktemp -d /tmp/gsmgate-order.XXXXXX)
sim_pid=
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$d"
}
trap cleanup EXIT

"$bin" sim --modems 2 --dir "$d/sim" --send-latency-ms 0-0 --latency-ms 0-0 >/dev/null 2>&1 &
sim_pid=$!
for _ in $(seq 300); do [ -e "$d/sim/modem1" ] && break; sleep 0.1; done
modems=
for i in 0 1; do
	modems+="[[modem]]
name = \"sim$i\"
port = \"$d/sim/modem$i\"
per_minute = 600
per_hour = 36000
per_day = 864000

"
done
cat >"$d/gsmgate.toml" <<EOT
[daemon]
state_dir = "$d/state"
admin_socket = "$d/a.sock"
log = "warn"

[simulator]
enabled = false

$modems
[dispatch]
jitter_ms = 0

[dispatch.quiet_hours]
enabled = false

[community]
org_name = "Footprint"
EOT
valgrind --tool=callgrind --callgrind-out-file="$d/callgrind.out" --dump-instr=no \
	--compress-strings=no --compress-pos=no --demangle=no \
	"$bin" daemon --config "$d/gsmgate.toml" >"$d/daemon.log" 2>&1 &
daemon_pid=$!
gsm() { "$bin" --socket "$d/a.sock" "$@"; }
ready=
for _ in $(seq 1200); do
	if [ "$(gsm --json modems 2>/dev/null | grep -c '"state": "ready"')" = 2 ]; then ready=1; break; fi
	sleep 0.1
done
[ -n "$ready" ] || { echo "regenerate: the modems did not turn ready" >&2; cat "$d/daemon.log" >&2; exit 1; }
python3 -c "
print('number,name')
for i in range(100): print('+1312200%04d,Member %d' % (i, i))" >"$d/members.csv"
gsm members import "$d/members.csv" >/dev/null
gsm status >/dev/null
# Progress polls, asked for at once as well as the one a second that `--wait` makes: a poll that
# sees copies queued runs the held-reason code (`commands::held`), and one that sees them held
# (here by a pause, as a rate limit holds them in the footprint bench's larger broadcast) runs
# the code that sums and prints the reasons. A regenerating run whose broadcast ended before
# its first one-second poll left that code out of the order, where it cost ~1.3 MB of RSS
# (docs/daemon.md, "Footprint"). 100 copies take far longer than a few CLI starts.
field() { python3 -c "import json, sys; print(json.load(sys.stdin)[\"$1\"])"; }
id=$(gsm --json broadcast "Hi {first_name}, the community meeting is on Thursday at 7pm at the library." | field id)
[ "$(gsm --json broadcasts progress "$id" | field queued)" -gt 0 ] ||
	echo "regenerate: warning: no copy was queued any more at the first poll" >&2
gsm broadcast pause "$id" >/dev/null
gsm broadcasts progress "$id" >/dev/null
gsm broadcast resume "$id" >/dev/null
gsm broadcasts progress --wait "$id" >/dev/null
gsm broadcasts >/dev/null
gsm modems >/dev/null
kill -INT "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=

# The functions callgrind saw in the binary, demangled as the link front end reads them (binutils'
# c++filt, the same demangler as its nm), in first-seen order, once each.
python3 - "$d/callgrind.out" >"$d/mangled" <<'PY'
import re, sys
obj = None
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("ob="):
        obj = line[3:].strip()
    elif line.startswith("fn=") and obj is not None and obj.endswith("/gsmgate"):
        print(re.sub(r"'\d+$", "", line[3:].strip()))  # callgrind's recursion depth
PY
# The crate hashes c++filt prints (`std[e28293b1aa0f68bd]::…`) differ by target and build: dropped,
# as tools/link-order/cc drops them.
hash='\[[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]*\]'
c++filt <"$d/mangled" | sed -e 's/\.llvm\.[0-9]*$//' -e "s/$hash//g" | awk '!seen[$0]++' >tools/link-order/gsmgate.order
echo "regenerate: $(wc -l <tools/link-order/gsmgate.order) functions written to tools/link-order/gsmgate.order"
