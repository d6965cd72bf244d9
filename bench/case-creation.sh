#!/usr/bin/env bash
# Benchmark: creating a case with one attention through the API at 16
# concurrent clients, against the same rows written by plain SQL (pgbench:
# case, attention, two timeline events and a chained audit row, in one
# transaction) on the same PostgreSQL in the same run; plus the API on SQLite.
# The API and pgbench alternate for `rounds` rounds (the machine is shared
# and noisy); the ratio is reported per round and as the median.
# Usage: bench/case-creation.sh [seconds] [rounds]   (installs wrk and PostgreSQL if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-15}"
rounds="${2:-3}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
bin="$PWD/target/release/mapce"
work="$(mktemp -d)"
pid=""
# shellcheck source=.ci/pg.sh
source .ci/pg.sh
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; pg_stop; rm -rf "$work"; }
trap cleanup EXIT
pg_install
pg_start
export MAPCE_DATA_DIR="$work" MAPCE_LOG_FORMAT=json RUST_LOG=warn MAPCE_BIND="127.0.0.1:18085" MAPCE_DB_POOL_SIZE=16

cat > "$work/report.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("  requests %d, non-2xx %d, p50 %.1f ms, p99 %.1f ms, %.1f req/s\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6)))
end
LUA

api_setup() {
    "$bin" migrate >/dev/null
    MAPCE_PASSWORD="bench officer password" "$bin" users create --username bench.officer --role officer --consulate AR-BUENOS-AIRES >/dev/null
}

api_run() { # $1: label
    "$bin" serve 2>>"$work/log" &
    pid=$!
    until curl -fs "http://$MAPCE_BIND/readyz" >/dev/null 2>&1; do sleep 0.1; done
    token=$(curl -fs -X POST "http://$MAPCE_BIND/api/v1/auth/login" -H 'Content-Type: application/json' \
      -d '{"username":"bench.officer","password":"bench officer password"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    if [ -z "${person:-}" ]; then
        person=$(curl -fs -X POST "http://$MAPCE_BIND/api/v1/persons" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
          -d '{"given_names":"Bench","first_surname":"Person","sex":"female"}' | sed -E 's/.*"id":"([^"]+)".*/\1/')
    fi
    today=$(date -u +%F)
    { echo "wrk.body = '{\"person_id\":\"$person\",\"channel\":\"phone\",\"requester\":{\"kind\":\"self\"},\"summary\":\"Needs help\",\"attentions\":[{\"attention_type\":\"legal_orientation\",\"date\":\"$today\",\"description\":\"Orientation\"}]}'"; cat "$work/report.lua"; } > "$work/case.lua"
    echo "== $1: POST /api/v1/cases with one attention, 16 connections, ${secs}s"
    wrk -t2 -c16 -d"${secs}s" -s "$work/case.lua" -H "Authorization: Bearer $token" "http://$MAPCE_BIND/api/v1/cases" | tail -n 1 | tee "$work/api-$1.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

psql -q "$PG_URL" -c "CREATE DATABASE mapce_bench"
export MAPCE_DATABASE_URL="${PG_URL%/postgres}/mapce_bench"
api_setup
api_run postgres
ids=$(psql -qtA "$MAPCE_DATABASE_URL" -c "SELECT p.id || ' ' || p.registered_consulate_id || ' ' || u.id || ' ' || t.id FROM persons p, users u, attention_types t WHERE u.username = 'bench.officer' AND t.code = 'legal_orientation' LIMIT 1")
read -r person consulate officer type <<<"$ids"
cat > "$work/case.sql" <<SQL
BEGIN;
SELECT gen_random_uuid() AS cid, gen_random_uuid() AS aid \gset
INSERT INTO cases (id, person_id, consulate_id, country_code, channel, requester_kind, summary, flags, protected, status, assigned_officer_id, opened_at, created_by, version, created_at, updated_at)
  VALUES (':cid', '$person', '$consulate', 'AR', 'phone', 'self', 'Needs help', '[]', false, 'open', '$officer', now(), '$officer', 2, now(), now());
INSERT INTO timeline_events (id, person_id, case_id, consulate_id, kind, at, actor_id, payload)
  VALUES (gen_random_uuid(), '$person', ':cid', '$consulate', 'case.opened', now(), '$officer', '{"channel":"phone","flags":[]}');
INSERT INTO attentions (id, case_id, person_id, consulate_id, attention_type_id, attended_on, channel, officer_id, description, late_registration, created_at)
  VALUES (':aid', ':cid', '$person', '$consulate', '$type', current_date, 'phone', '$officer', 'Orientation', false, now());
INSERT INTO timeline_events (id, person_id, case_id, consulate_id, kind, at, actor_id, attention_type_id, payload)
  VALUES (gen_random_uuid(), '$person', ':cid', '$consulate', 'attention.recorded', now(), '$officer', '$type', '{"attention_type":"legal_orientation"}');
UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq AS seq, hash AS prev \gset
INSERT INTO audit_log (id, seq, at, actor_id, actor_username, actor_role, actor_consulate_id, action, resource_type, resource_id, subject_person_id, client_addr, outcome, details, prev_hash, hash)
  VALUES (gen_random_uuid(), :seq, now(), '$officer', 'bench.officer', 'officer', '$consulate', 'case.create', 'case', ':cid', '$person', '127.0.0.1', 'success', '{}', ':prev', encode(sha256(convert_to(':prev:cid', 'UTF8')), 'hex'));
UPDATE audit_head SET hash = encode(sha256(convert_to(':prev:cid', 'UTF8')), 'hex') WHERE id = 1;
COMMIT;
SQL
pgbench_run() {
    rm -f "$work"/pgbench_log.*
    (cd "$work" && "$PG_BIN/pgbench" -n -c16 -j2 -T"$secs" -l -f case.sql "$MAPCE_DATABASE_URL" > pgbench.txt 2>&1) || { cat "$work/pgbench.txt"; exit 1; }
    tps=$(awk '/^tps/ {print $3; exit}' "$work/pgbench.txt")
    p50=$(cat "$work"/pgbench_log.* | awk '{print $3/1000}' | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.5)]}')
    p99=$(cat "$work"/pgbench_log.* | awk '{print $3/1000}' | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.99)]}')
    echo "== plain SQL (pgbench): the same rows, 16 clients, ${secs}s"
    printf '  transactions/s %.1f, p50 %.1f ms, p99 %.1f ms\n' "$tps" "$p50" "$p99"
}

ratios=()
# Tables grow as rounds go on, so the order flips each round (API first in
# odd rounds, pgbench first in even ones) to keep either side from always
# running on the smaller tables.
for round in $(seq "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then
        if [ "$round" -gt 1 ]; then api_run postgres; fi
        pgbench_run
    else
        pgbench_run
        api_run postgres
    fi
    api=$(sed -E 's/.*, ([0-9.]+) req\/s/\1/' "$work/api-postgres.txt")
    ratio=$(awk -v a="$api" -v b="$tps" 'BEGIN {printf "%.2f", a/b}')
    ratios+=("$ratio")
    echo "== round $round: ratio API / plain SQL on PostgreSQL: $ratio"
done
echo "== ratio, median of $rounds rounds: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') (all: ${ratios[*]})"

export MAPCE_DATABASE_URL="sqlite://$work/bench.sqlite3"
person=""
api_setup
api_run sqlite
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); server, database and load generator share it"
