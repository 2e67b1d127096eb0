#!/usr/bin/env bash
# bench/run.sh: the benchmark suite, Switchboard (examples/benchserver) and
# socket.io (bench/node-server.js) side by side in the same run.
#
# Each scenario runs against a fresh server process pinned to core 0
# (taskset -c 0) with the load tool (cmd/switchboard-bench) pinned to core 1,
# the two servers alternating, RUNS times; the table shows the medians and
# the ratio Switchboard / Node for every figure.
#
# Usage: bench/run.sh [--smoke] [--runs N] [--unpinned] [--out DIR] [scenario...]
#   scenarios: fanout fanout-paced tcp-fanout-paced echo tcp-echo conns handshake
#   (default: all)
#   tcp-echo and tcp-fanout-paced are the raw-TCP floors: a plain Go server
#   (switchboard-bench tcp-floor-server) under the echo and paced fan-out
#   load patterns, run once per round instead of against both servers; the
#   report reads each server's echo and paced fan-out latency against them.
#   --smoke     tiny loads, one run: finishes in seconds (CI)
#   --runs N    runs per scenario and server (default 3)
#   --unpinned  server and load tool both on cores 0-1 (for the record)
#   --out DIR   keep results.jsonl, table.md and server logs in DIR
# Environment: BENCH_PORT (default 3900; BENCH_PORT+1 serves pprof).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

smoke=0
runs=3
pinned=1
out=""
scenarios=()
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) smoke=1; runs=1 ;;
	--runs) runs=$2; shift ;;
	--unpinned) pinned=0 ;;
	--out) out=$2; shift ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	-*) echo "run.sh: unknown flag $1" >&2; exit 2 ;;
	*) scenarios+=("$1") ;;
	esac
	shift
done
[ ${#scenarios[@]} -gt 0 ] || scenarios=(fanout fanout-paced tcp-fanout-paced echo tcp-echo conns handshake)
for sc in "${scenarios[@]}"; do
	case "$sc" in
	fanout | fanout-paced | tcp-fanout-paced | echo | tcp-echo | conns | handshake) ;;
	*) echo "run.sh: unknown scenario $sc" >&2; exit 2 ;;
	esac
done

port=${BENCH_PORT:-3900}
pprof_port=$((port + 1))
work=$(mktemp -d)
[ -n "$out" ] || out=$work
mkdir -p "$out"
results=$out/results.jsonl
: >"$results"

server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	[ "$out" = "$work" ] || rm -rf "$work"
}
trap cleanup EXIT

# Pinning.
server_cpus=0 tool_cpus=1
if [ "$pinned" = 0 ]; then server_cpus=0-$(($(nproc) - 1)) tool_cpus=$server_cpus; fi
# The pinning prefixes; the server is exec'd so that $! is its own pid.
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	on_server=(taskset -c "$server_cpus")
	on_tool=(taskset -c "$tool_cpus")
else
	echo "run.sh: taskset or a second core missing: not pinning" >&2
	on_server=(env)
	on_tool=(env)
fi

echo "building into $work" >&2
go build -o "$work/benchserver" ./examples/benchserver
go build -o "$work/switchboard-bench" ./cmd/switchboard-bench
node -e 'require.resolve("socket.io")' 2>/dev/null || { echo "run.sh: socket.io not installed (npm ci)" >&2; exit 1; }
nodever=$(node -p 'require("socket.io/package.json").version')

if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	echo "run.sh: port $port is in use; set BENCH_PORT" >&2
	exit 1
fi

# start_server NAME: starts a fresh server, sets server_pid.
start_server() {
	local log=$out/$1.log
	case "$1" in
	switchboard) PORT=$port exec "${on_server[@]}" "$work/benchserver" -pprof "127.0.0.1:$pprof_port" >>"$log" 2>&1 & ;;
	node) PORT=$port exec "${on_server[@]}" node bench/node-server.js >>"$log" 2>&1 & ;;
	tcp-floor) PORT=$port exec "${on_server[@]}" "$work/switchboard-bench" tcp-floor-server >>"$log" 2>&1 & ;;
	esac
	server_pid=$!
	for _ in $(seq 100); do
		if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "run.sh: $1 server did not start; see $log" >&2
	exit 1
}

stop_server() {
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
	if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "run.sh: port $port still open after the server stopped" >&2
		exit 1
	fi
	# Let the kernel release the closed connections before the next run.
	if [ "$smoke" = 0 ]; then sleep 1; fi
}

# args SCENARIO SERVER: the load tool's arguments.
args() {
	local common=(-url "http://127.0.0.1:$port" -server-pid "$server_pid" -json -label "$2")
	if [ "$smoke" = 1 ]; then
		common+=(-warmup 200ms -duration 500ms)
		case "$1" in
		fanout) echo fanout -n 20 "${common[@]}" ;;
		fanout-paced) echo fanout -n 20 -rate 100 "${common[@]}" ;;
		tcp-fanout-paced) echo tcp-fanout -n 20 -rate 100 "${common[@]}" ;;
		echo) echo echo -n 5 "${common[@]}" ;;
		tcp-echo) echo tcp-echo -n 5 "${common[@]}" ;;
		conns) echo conns -n 50 -settle 200ms -sources 2 "${common[@]}" ;;
		handshake) echo handshake -concurrency 4 -sources 2 "${common[@]}" ;;
		esac
		return
	fi
	case "$1" in
	fanout) echo fanout -n 1000 -warmup 2s -duration 10s "${common[@]}" ;;
	fanout-paced) echo fanout -n 1000 -rate 20 -warmup 2s -duration 10s "${common[@]}" ;;
	tcp-fanout-paced) echo tcp-fanout -n 1000 -rate 20 -warmup 2s -duration 10s "${common[@]}" ;;
	echo) echo echo -n 50 -warmup 2s -duration 10s "${common[@]}" ;;
	tcp-echo) echo tcp-echo -n 50 -warmup 2s -duration 10s "${common[@]}" ;;
	# 30 s of idling: longer than the 25 s ping interval, so every
	# connection answers at least one ping.
	conns) echo conns -n 19000 -duration 30s -sources 4 -dial-concurrency 200 "${common[@]}" ;;
	# Node needs seconds of warm-up (JIT) before its handshake rate settles.
	handshake) echo handshake -concurrency 64 -warmup 3s -duration 5s -sources 4 "${common[@]}" ;;
	*) echo "run.sh: unknown scenario $1" >&2; exit 2 ;;
	esac
}

failed=0
for run in $(seq "$runs"); do
	for sc in "${scenarios[@]}"; do
		servers=(switchboard node)
		case "$sc" in tcp-*) servers=(tcp-floor) ;; esac
		for server in "${servers[@]}"; do
			start_server "$server"
			# shellcheck disable=SC2207
			a=($(args "$sc" "$server"))
			if [ "$sc" = conns ] && [ "$server" = switchboard ]; then
				a+=(-server-stats "http://127.0.0.1:$pprof_port/debug/stats")
			fi
			echo "run $run/$runs: $sc on $server" >&2
			if ! "${on_tool[@]}" "$work/switchboard-bench" "${a[@]}" >>"$results" 2>>"$out/tool.log"; then
				echo "run.sh: $sc on $server failed (run $run): $(tail -n 1 "$out/tool.log")" >&2
				failed=1
			fi
			stop_server
		done
	done
done

{
	mode="server pinned to core $server_cpus, load tool to core $tool_cpus"
	[ "$pinned" = 1 ] || mode="unpinned: server and load tool on cores $server_cpus"
	[ "$smoke" = 0 ] || mode="$mode; SMOKE mode (tiny loads, not figures)"
	echo "Medians of $runs run(s); $mode."
	echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r), $(go env GOVERSION), Node $(node --version), socket.io $nodever."
	echo
	"$work/switchboard-bench" report "$results"
} | tee "$out/table.md"

echo "results in $out" >&2
if [ "$failed" = 1 ]; then
	echo "run.sh: some runs failed; see $out/tool.log" >&2
	exit 1
fi
