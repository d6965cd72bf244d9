#!/usr/bin/env bash
# Benchmark: login latency with the production argon2id cost (m=19 MiB, t=2,
# p=1), and throughput of an authenticated endpoint that does not touch the
# database (GET /api/v1/auth/me, served from the session cache).
# Usage: bench/auth.sh [seconds per run]   (installs wrk with apt-get if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
bin="$PWD/target/release/mapce"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
export MAPCE_DATABASE_URL="sqlite://$work/mapce.sqlite3" MAPCE_DATA_DIR="$work" MAPCE_LOG_FORMAT=json RUST_LOG=warn
export MAPCE_BIND="127.0.0.1:18083" MAPCE_ADMIN_PASSWORD="bench admin password 1"
"$bin" migrate
MAPCE_PASSWORD="bench planner password" "$bin" users create --username bench.planner --role planner >/dev/null
"$bin" serve 2>>"$work/log" &
pid=$!
until curl -fs "http://$MAPCE_BIND/readyz" >/dev/null 2>&1; do sleep 0.05; done

cat > "$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench.planner","password":"bench planner password"}'
done = function(summary, latency, requests)
  io.write(string.format("  requests %d, errors (non-2xx) %d, p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, %.1f req/s\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, summary.requests / (summary.duration / 1e6)))
end
LUA
cp "$work/login.lua" "$work/get.lua"
sed -i '1,3d' "$work/get.lua"

echo "login, 1 client (sequential):"
wrk -t1 -c1 -d"${secs}s" -s "$work/login.lua" "http://$MAPCE_BIND/api/v1/auth/login" | tail -n 1
echo "login, 8 concurrent clients:"
wrk -t2 -c8 -d"${secs}s" -s "$work/login.lua" "http://$MAPCE_BIND/api/v1/auth/login" | tail -n 1

token=$(curl -fs -X POST "http://$MAPCE_BIND/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"username":"bench.planner","password":"bench planner password"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
echo "GET /api/v1/auth/me (authenticated, no database), 32 connections:"
wrk -t2 -c32 -d"${secs}s" -s "$work/get.lua" -H "Authorization: Bearer $token" "http://$MAPCE_BIND/api/v1/auth/me" | tail -n 1
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); wrk runs on the same machine"
