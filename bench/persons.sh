#!/usr/bin/env bash
# Benchmark: individual history of a person with 200 events, and the
# duplicate-candidate check at intake, on a generated population of 500 000
# persons and 1 000 000 attentions.
# Usage: bench/persons.sh sqlite|postgres [persons] [attentions] [seconds]
# (installs wrk, and PostgreSQL for the postgres run, with apt-get if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
persons="${2:-500000}"
attentions="${3:-1000000}"
secs="${4:-10}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
# shellcheck source=bench/env.sh
source bench/env.sh
bench_env "$backend" 18084

echo "== generating $persons persons and $attentions attentions ($backend)"
"$bin" demo-data --persons "$persons" --attentions "$attentions" --heavy 5 --heavy-events 200 | tee "$work/gen.txt"
heavy=$(awk '/^heavy person/ {print $3; exit}' "$work/gen.txt")
consulate=$(sql "SELECT c.code FROM persons p JOIN consulates c ON c.id = p.registered_consulate_id WHERE p.id = '$heavy'")
MAPCE_PASSWORD="bench officer password" "$bin" users create --username bench.officer --role officer --consulate "$consulate" >/dev/null
"$bin" serve 2>>"$work/log" &
pid=$!
until curl -fs "http://$MAPCE_BIND/readyz" >/dev/null 2>&1; do sleep 0.1; done
token=$(curl -fs -X POST "http://$MAPCE_BIND/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"username":"bench.officer","password":"bench officer password"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
events=$(curl -fs "http://$MAPCE_BIND/api/v1/persons/$heavy/history?limit=1" -H "Authorization: Bearer $token" | sed -E 's/.*"total":([0-9]+).*/\1/')
echo "== history of person $heavy ($events events), limit=200"

cat > "$work/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("  requests %d, non-2xx %d, p50 %.2f ms, p99 %.2f ms, %.0f req/s\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6)))
end
LUA
wrk -t1 -c1 -d"${secs}s" -s "$work/report.lua" -H "Authorization: Bearer $token" \
  "http://$MAPCE_BIND/api/v1/persons/$heavy/history?limit=200" | tail -n 1

# A look-alike of an existing person: same names and birth date, new document.
row=$(sql "SELECT given_names || '|' || first_surname || '|' || second_surname || '|' || birth_date FROM persons WHERE birth_date IS NOT NULL AND id <> '$heavy' LIMIT 1 OFFSET 1000")
IFS='|' read -r g s1 s2 bd <<<"$row"
cat > "$work/dedup.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"given_names":"$g","first_surname":"$s1","second_surname":"$s2","birth_date":"$bd","sex":"female"}'
LUA
cat "$work/report.lua" >> "$work/dedup.lua"
echo "== duplicate-candidate check at intake (POST /persons answering 409 possible_duplicates): $g $s1 $s2 $bd"
wrk -t1 -c1 -d"${secs}s" -s "$work/dedup.lua" -H "Authorization: Bearer $token" "http://$MAPCE_BIND/api/v1/persons" | tail -n 1
curl -s -X POST "http://$MAPCE_BIND/api/v1/persons" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "{\"given_names\":\"$g\",\"first_surname\":\"$s1\",\"second_surname\":\"$s2\",\"birth_date\":\"$bd\",\"sex\":\"female\"}" | grep -o '"code":"[a-z_]*"' | head -1
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); wrk runs on the same machine"
