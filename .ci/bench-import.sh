#!/usr/bin/env bash
# Benchmark: import a synthetic legacy extract (default 1 000 000 rows) into
# an empty database; prints rows per second (from the import's report) and
# the peak resident memory of the importing process (GNU time).
# Usage: .ci/bench-import.sh sqlite|postgres [rows]
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
rows="${2:-1000000}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet
bin="$PWD/target/release/mapce"
work="$(mktemp -d)"
cleanup() { [ "$backend" = postgres ] && pg_stop; rm -rf "$work"; }
trap cleanup EXIT
export MAPCE_DATA_DIR="$work" MAPCE_LOG_FORMAT=json RUST_LOG=warn
if [ "$backend" = postgres ]; then
    # shellcheck source=.ci/pg.sh
    source .ci/pg.sh
    pg_install
    pg_start
    psql -q "$PG_URL" -c "CREATE DATABASE mapce_import"
    export MAPCE_DATABASE_URL="${PG_URL%/postgres}/mapce_import"
else
    export MAPCE_DATABASE_URL="sqlite://$work/import.sqlite3"
fi
echo "== writing a $rows-row legacy extract"
python3 .ci/legacy-extract.py "$rows" "$work/extract.csv"
"$bin" migrate >/dev/null
echo "== importing ($backend)"
/usr/bin/time -f "%e %M" -o "$work/time" "$bin" import "$work/extract.csv" --report "$work/report.json" >/dev/null
read -r secs rss_kb < "$work/time"
python3 - "$work/report.json" "$secs" "$rss_kb" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
secs, rss = float(sys.argv[2]), int(sys.argv[3])
print(f"   rows {r['rows']}: imported {r['rows_imported']}, rejected {r['rows_rejected']}, "
      f"persons new {r['persons_new']}, cases new {r['cases_new']}, duplicates queued {r['duplicates_queued']}")
print(f"   import: {r['seconds']:.1f} s → {r['rows_per_second']:.0f} rows/s (process {secs:.1f} s with migrations)")
print(f"   peak resident memory: {rss / 1024:.0f} MB")
PY
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
