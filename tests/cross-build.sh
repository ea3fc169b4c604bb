#!/usr/bin/env bash
# Cross-builds the arm64 (aarch64) gsmgate for Raspberry Pi OS bookworm or newer, in release
# profile, and smoke-tests it under qemu-user. One command, from the repository root:
#
#   tests/cross-build.sh          # build + smoke test; prints build time and binary size
#   tests/cross-build.sh --deb    # also package it: target/debian/gsmgate_<version>-1_arm64.deb
#
# Needs: rustup's aarch64-unknown-linux-gnu target (added here), Debian's gcc-aarch64-linux-gnu and
# libc6-dev-arm64-cross (the linker, and the C compiler for rusqlite's bundled SQLite), qemu-user
# for the smoke test. Missing apt packages are installed when running as root. If the rustup target
# or the packages cannot be fetched, the script prints one "SKIPPED: cross-build: <why>" line and
# exits 0, so CI on a machine without them does not fail on a step it cannot run.
# The linker settings are environment variables here; .cargo/config.toml sets the x86_64 ones.
# Serial ports do not work under qemu-user: the smoke test uses pure commands.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
skip() {
	echo "SKIPPED: cross-build: $*"
	exit 0
}

if ! rustup target add "$target" >/dev/null 2>&1; then
	skip "rustup cannot add the $target target (offline, or no rustup toolchain here)"
fi
need=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		skip "missing ${need[*]} (run as root, or: sudo apt-get install ${need[*]})"
	fi
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${need[@]}"; } >/dev/null 2>&1; then
		skip "apt-get could not install ${need[*]}"
	fi
fi

# The linker front end that packs the daemon's code (tools/link-order/cc, docs/daemon.md
# "Footprint"); it drives aarch64-linux-gnu-gcc with Rust's LLD.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$PWD/tools/link-order/aarch64-linux-gnu-cc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar

start=$(date +%s)
cargo build --release --locked --target "$target"
end=$(date +%s)
bin="${CARGO_TARGET_DIR:-$PWD/target}/$target/release/gsmgate"
echo "cross-build: release build for $target took $((end - start)) s (incremental if nothing changed)"
echo "cross-build: $bin is $(stat -c %s "$bin") bytes"
file "$bin" 2>/dev/null || true

# Smoke test under qemu-user: pure commands only.
run=(qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin")
version=$("${run[@]}" --version)
echo "cross-build: qemu: $version"
[[ "$version" == gsmgate\ * ]] || { echo "cross-build: unexpected --version output" >&2; exit 1; }
# docs/pdu.md, vector 2: SUBMIT to +46708251358, "hellohello".
decoded=$("${run[@]}" pdu decode 0011000B916407281553F80000AA0AE8329BFD4697D9EC37)
grep -q 'hellohello' <<<"$decoded" || { echo "cross-build: pdu decode gave: $decoded" >&2; exit 1; }
grep -q '46708251358' <<<"$decoded" || { echo "cross-build: pdu decode gave: $decoded" >&2; exit 1; }
"${run[@]}" check-config --default >/dev/null
echo "cross-build: arm64 smoke test passed (--version, pdu decode, check-config --default)"

if [ "${1:-}" = "--deb" ]; then
	tests/packaging/build-deb.sh --target "$target"
fi
