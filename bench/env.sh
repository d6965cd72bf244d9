# shellcheck shell=bash
# Shared set-up of the benchmarks: a release build, a scratch folder, the
# database (a throw-away PostgreSQL cluster or a SQLite file), `sql` to query
# it, and a cleanup that stops the server ($pid), the cluster and removes
# the folder. Usage, from the repository root: bench_env sqlite|postgres PORT
bench_env() {
    backend="$1"
    cargo build --release --quiet
    bin="$PWD/target/release/mapce"
    work="$(mktemp -d)"
    pid=""
    cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; [ "$backend" = postgres ] && pg_stop; rm -rf "$work"; }
    trap cleanup EXIT
    export MAPCE_DATA_DIR="$work" MAPCE_LOG_FORMAT=json RUST_LOG=warn MAPCE_BIND="127.0.0.1:$2"
    if [ "$backend" = postgres ]; then
        # shellcheck source=.ci/pg.sh
        source .ci/pg.sh
        pg_install
        pg_start
        psql -q "$PG_URL" -c "CREATE DATABASE mapce_bench"
        export MAPCE_DATABASE_URL="${PG_URL%/postgres}/mapce_bench"
        sql() { psql -qtA "$MAPCE_DATABASE_URL" -c "$1"; }
    else
        export MAPCE_DATABASE_URL="sqlite://$work/bench.sqlite3"
        sql() { sqlite3 "$work/bench.sqlite3" "$1"; }
    fi
}
