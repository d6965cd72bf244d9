#!/usr/bin/env bash
# Benchmark: import a synthetic legacy extract (default 1 000 000 rows) into
# an empty database; prints rows per second (from the import's report) and
# the peak resident memory of the importing process (GNU time).
# Usage: bench/legacy-import.sh sqlite|postgres [rows]
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
rows="${2:-1000000}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
# shellcheck source=bench/env.sh
source bench/env.sh
bench_env "$backend" 18086
echo "== writing a $rows-row legacy extract"
python3 bench/legacy-extract.py "$rows" "$work/extract.csv"
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
