#!/usr/bin/env bash
# Benchmark: release-build start-to-ready time on SQLite with migrations
# already applied, and idle resident memory. Usage: bench/startup.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
cargo build --release --quiet
bin=target/release/mapce
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export MAPCE_DATABASE_URL="sqlite://$work/mapce.sqlite3" MAPCE_LOG_FORMAT=json RUST_LOG=warn
port=18080
export MAPCE_BIND="127.0.0.1:$port"
"$bin" migrate

ready_ms=()
rss_kb=()
for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    "$bin" serve 2>>"$work/log" &
    pid=$!
    until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do sleep 0.002; done
    end=$(date +%s%N)
    ready_ms+=("$(( (end - start) / 1000000 ))")
    sleep 2 # idle
    rss_kb+=("$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")")
    kill -TERM "$pid"
    wait "$pid"
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %s, min %s, max %s", a[int((NR+1)/2)], a[1], a[NR]}'; }
echo "start-to-ready (ms, $runs runs): $(stats "${ready_ms[@]}")"
echo "idle RSS (KiB, $runs runs):      $(stats "${rss_kb[@]}")"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
