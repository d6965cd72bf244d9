#!/usr/bin/env bash
# Read scale-out: a local PostgreSQL primary and a streaming replica
# (pg_basebackup -R), the server with MAPCE_DATABASE_URL on the primary and
# MAPCE_DATABASE_READ_URL on the replica. With the replica's replay paused,
# a case created through the API is stored on the primary (writes go there)
# but missing from the person's history (reads come from the replica); once
# replay resumes, the history shows it. Exits 1 naming what failed.
# Usage: .ci/replica.sh   (installs PostgreSQL if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/pg.sh
source .ci/pg.sh
need curl python3
cargo build --quiet
bin="$PWD/target/debug/mapce"
work="$(mktemp -d)"
pid=""
pg_install
PG_PORT=57432 pg_start
primary_url="${PG_URL%/postgres}/mapce"
replica_data="$(mktemp -d /tmp/mapce-replica.XXXXXX)"
replica_port=$(free_port $((PG_PORT + 1)))
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$replica_data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$replica_data" "$work"
    pg_stop
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 20 "$work/server.log" 2>/dev/null || true; exit 1; }

psql -q "$PG_URL" -c "CREATE DATABASE mapce"
chown postgres:postgres "$replica_data"
chmod 700 "$replica_data"
runuser -u postgres -- "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres -D "$replica_data" -R -X stream >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$replica_data" -l "$replica_data/server.log" -w \
    -o "-F -h 127.0.0.1 -p $replica_port -k $replica_data -c max_connections=300" start >/dev/null || { tail -n 20 "$replica_data/server.log"; exit 1; }
replica_url="postgres://postgres@127.0.0.1:$replica_port/mapce"
[ "$(psql -qtA "$replica_url" -c 'SELECT pg_is_in_recovery()')" = t ] || fail "the replica is not in recovery"
echo "== primary on $PG_PORT, streaming replica on $replica_port"

port=$(free_port 18320)
export MAPCE_DATA_DIR="$work" MAPCE_LOG_FORMAT=json RUST_LOG=warn MAPCE_BIND="127.0.0.1:$port" \
    MAPCE_ADMIN_PASSWORD="replica admin password" MAPCE_DATABASE_URL="$primary_url"
"$bin" migrate >/dev/null
MAPCE_PASSWORD="replica officer password" "$bin" users create --username rep.officer --role officer --consulate AR-BUENOS-AIRES >/dev/null
MAPCE_DATABASE_READ_URL="$replica_url" "$bin" serve 2>>"$work/server.log" &
pid=$!
until curl -fs "http://$MAPCE_BIND/readyz" >/dev/null 2>&1; do sleep 0.1; done
api() { curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
token=$(curl -fs -X POST "http://$MAPCE_BIND/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"rep.officer","password":"replica officer password"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["session"]["access_token"])')
person=$(api -X POST "http://$MAPCE_BIND/api/v1/persons" -d '{"given_names":"Réplica","first_surname":"Prueba","sex":"female"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
events() { api "http://$MAPCE_BIND/api/v1/persons/$person/history" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["events"])'; }
for _ in $(seq 100); do [ "$(events 2>/dev/null)" = 1 ] && break; sleep 0.1; done
[ "$(events)" = 1 ] || fail "the person's registration never reached the replica's history"

psql -qtA "$replica_url" -c "SELECT pg_wal_replay_pause()" >/dev/null
today=$(date -u +%F)
status=$(api -o "$work/case.json" -w '%{http_code}' -X POST "http://$MAPCE_BIND/api/v1/cases" \
    -d "{\"person_id\":\"$person\",\"channel\":\"phone\",\"requester\":{\"kind\":\"self\"},\"summary\":\"Needs help\",\"attentions\":[{\"attention_type\":\"legal_orientation\",\"date\":\"$today\",\"description\":\"Orientation\"}]}")
[ "$status" = 201 ] || fail "case creation with the replica paused answered $status: $(cat "$work/case.json")"
case_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/case.json")
[ "$(psql -qtA "$primary_url" -c "SELECT COUNT(*) FROM cases WHERE id = '$case_id'")" = 1 ] || fail "the case is not on the primary"
[ "$(psql -qtA "$replica_url" -c "SELECT COUNT(*) FROM cases WHERE id = '$case_id'")" = 0 ] || fail "the paused replica already has the case"
[ "$(events)" = 1 ] || fail "the history did not come from the (paused) replica"
echo "== replay paused: the case is on the primary, the history (from the replica) does not show it yet"
status=$(api -o /dev/null -w '%{http_code}' "http://$MAPCE_BIND/api/v1/indicators/oei05?year=$(date -u +%Y)")
[ "$status" = 403 ] || fail "an officer got $status for OEI.05 (expected 403)"

psql -qtA "$replica_url" -c "SELECT pg_wal_replay_resume()" >/dev/null
start=$(date +%s%N)
for _ in $(seq 100); do [ "$(events)" -ge 3 ] && break; sleep 0.1; done
n=$(events)
[ "$n" -ge 3 ] || fail "after replay resumed the history shows $n events, not the case's"
echo "== replay resumed: the history shows the case ($n events) after $(( ($(date +%s%N) - start) / 1000000 )) ms"
audits=$(psql -qtA "$primary_url" -c "SELECT COUNT(*) FROM audit_log WHERE action = 'person.history'")
[ "$audits" -ge 3 ] || fail "history reads were not audited on the primary ($audits)"
echo "== every history read audited on the primary ($audits rows); read replica test passed"
