#!/usr/bin/env bash
# Fault test: PostgreSQL stops under load (its own throw-away cluster) and
# comes back; the server must answer 503 + Retry-After within 2 s while it
# is down and serve again within 10 s of its return, without a restart.
# Usage: .ci/fault-pg.sh [rounds]   (installs PostgreSQL if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-1}"
# shellcheck source=.ci/pg.sh
source .ci/pg.sh
need curl python3
cargo build --quiet
bin="$PWD/target/debug/mapce"
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; pg_stop; rm -rf "$work"; }
trap cleanup EXIT
pg_install
PG_PORT=56432 pg_start
pgctl() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w "$@" >/dev/null; }
# the restart keeps the options pg_start gave
opts="-F -h 127.0.0.1 -p $PG_PORT -k $PG_DATA -c max_connections=300"
port=$(free_port 18190)
export MAPCE_DATA_DIR="$work" MAPCE_LOG_FORMAT=json RUST_LOG=error MAPCE_BIND="127.0.0.1:$port" \
    MAPCE_ADMIN_PASSWORD="fault test admin password"
for round in $(seq 1 "$rounds"); do
    db="mapce_fault_$round"
    psql -q "$PG_URL" -c "CREATE DATABASE $db"
    export MAPCE_DATABASE_URL="${PG_URL%/postgres}/$db"
    "$bin" migrate >/dev/null
    MAPCE_PASSWORD="fault officer password" "$bin" users create --username fault.officer \
        --role officer --consulate AR-BUENOS-AIRES >/dev/null
    "$bin" serve 2>>"$work/server.log" &
    pid=$!
    until curl -fs "http://$MAPCE_BIND/readyz" >/dev/null 2>&1; do sleep 0.1; done
    token=$(curl -fs -X POST "http://$MAPCE_BIND/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d '{"username":"fault.officer","password":"fault officer password"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["session"]["access_token"])')
    person=$(curl -fs -X POST "http://$MAPCE_BIND/api/v1/persons" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d '{"given_names":"Fault","first_surname":"Test","sex":"female"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    echo "== round $round: PostgreSQL stops for 6 s under load"
    python3 .ci/fault-pg.py "http://$MAPCE_BIND" "$token" "$person" \
        "$(declare -f pgctl); PG_BIN=$PG_BIN PG_DATA=$PG_DATA pgctl -m fast stop" \
        "$(declare -f pgctl); PG_BIN=$PG_BIN PG_DATA=$PG_DATA pgctl -o '$opts' start" "$pid" ||
        { tail -n 20 "$work/server.log"; exit 1; }
    kill "$pid"; wait "$pid" || { echo "server exit status $?"; exit 1; }
    pid=""
done
echo "== PostgreSQL outage: $rounds round(s) passed"
