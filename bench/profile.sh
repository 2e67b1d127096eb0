#!/usr/bin/env bash
# bench/profile.sh: profiles the Go benchmark server under one scenario.
#
# Starts examples/benchserver pinned to core 0 with -pprof, drives it from
# core 1 with cmd/switchboard-bench, and while the load runs takes a CPU
# profile and an allocation profile (both over the same seconds) and the
# goroutine count; then prints the top functions.
#
# Usage: bench/profile.sh [--out DIR] [--seconds N] <scenario> [load tool flags...]
#   e.g. bench/profile.sh fanout -n 1000
#        bench/profile.sh echo -n 50
#        bench/profile.sh fanout -n 1000 -rate 20
# Environment: BENCH_PORT (default 3950; BENCH_PORT+1 serves pprof).
set -euo pipefail

cd "$(dirname "$0")/.."
out=""
secs=10
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || { sed -n '2,13p' "$0"; exit 2; }
scenario=$1
shift
port=${BENCH_PORT:-3950}
pprof=127.0.0.1:$((port + 1))
work=$(mktemp -d)
[ -n "$out" ] || out=$work
mkdir -p "$out"

go build -o "$work/benchserver" ./examples/benchserver
go build -o "$work/switchboard-bench" ./cmd/switchboard-bench

PORT=$port exec taskset -c 0 "$work/benchserver" -pprof "$pprof" >"$out/server.log" 2>&1 &
server=$!
tool=""
cleanup() {
	[ -z "$tool" ] || kill "$tool" 2>/dev/null || true
	kill "$server" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do
	(echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done

# The load runs for the profile's seconds plus setup and warm-up margins.
taskset -c 1 "$work/switchboard-bench" "$scenario" -url "http://127.0.0.1:$port" -server-pid "$server" \
	-warmup 3s -duration $((secs + 6))s "$@" >"$out/load.txt" 2>&1 &
tool=$!
sleep 6 # connections opened, warm-up done
curl -sf "http://$pprof/debug/stats" >"$out/stats-under-load.json"
curl -sf -o "$out/goroutine.txt" "http://$pprof/debug/pprof/goroutine?debug=1"
curl -sf -o "$out/cpu.pprof" "http://$pprof/debug/pprof/profile?seconds=$secs" &
cpu=$!
curl -sf -o "$out/allocs.pprof" "http://$pprof/debug/pprof/allocs?seconds=$secs"
wait "$cpu"
wait "$tool" || echo "profile.sh: the load tool failed" >&2
tool=""

echo "== load"
cat "$out/load.txt"
echo "== server stats under load"
cat "$out/stats-under-load.json"
echo "== CPU (flat)"
go tool pprof -top -nodecount=35 "$work/benchserver" "$out/cpu.pprof" 2>/dev/null | sed -n '1,45p'
echo "== CPU (cumulative)"
go tool pprof -top -cum -nodecount=35 "$work/benchserver" "$out/cpu.pprof" 2>/dev/null | sed -n '6,45p'
echo "== allocations (objects)"
go tool pprof -top -sample_index=alloc_objects -nodecount=20 "$work/benchserver" "$out/allocs.pprof" 2>/dev/null | sed -n '1,28p'
echo "profiles in $out (go tool pprof -http=: $out/cpu.pprof)"
