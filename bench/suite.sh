#!/usr/bin/env bash
# The benchmark suite: one command, both backends, one Markdown table.
# On a population from `mapce demo-data --scale SCALE` (plus 5 persons with
# 200 history events each), per backend, release build, all on this machine:
# - case creation (POST /api/v1/cases with one attention) at 1, 16 and 64
#   clients, and the same rows by plain SQL (pgbench / Python sqlite3) on
#   the same database in the same run;
# - a person's history (200 events) p50/p99;
# - OEI.05 for the last generated year against its query run directly;
# - legacy import rows/s (a 100 000-row extract into that database);
# - server resident memory idle and at its peak under the load above.
# Usage: bench/suite.sh [scale] [seconds per load step]
# Prints the table and writes it to target/bench-results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-1}"
secs="${2:-10}"
for tool in wrk sqlite3; do
    command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
done
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

cat > "$out/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("%.1f %.2f %.2f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
LUA

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_backend() ( # $1: sqlite|postgres; writes "metric<TAB>value" lines to $out/$1.tsv
    backend="$1"
    # shellcheck source=bench/env.sh
    source bench/env.sh
    bench_env "$backend" 18095
    put() { printf '%s\t%s\n' "$1" "$2" >> "$out/$backend.tsv"; }
    echo "== $backend: generating --scale $scale" >&2
    "$bin" demo-data --scale "$scale" --heavy 5 --heavy-events 200 > "$work/gen.txt"
    heavy=$(awk '/^heavy person/ {print $3; exit}' "$work/gen.txt")
    put "population" "$(head -n 1 "$work/gen.txt" | sed -E 's/^generated ([0-9]+) persons, ([0-9]+) cases, ([0-9]+) attentions.*/\1 persons, \2 cases, \3 attentions/')"
    consulate=$(sql "SELECT c.code FROM persons p JOIN consulates c ON c.id = p.registered_consulate_id WHERE p.id = '$heavy'")
    # the last generated year (before the load adds cases dated today)
    year=$(sql "SELECT MAX(attended_on) FROM attentions" | cut -c1-4)
    [ "$backend" = postgres ] && sql "VACUUM ANALYZE" >/dev/null
    [ "$backend" = sqlite ] && sql "ANALYZE" >/dev/null
    MAPCE_PASSWORD="bench officer password" "$bin" users create --username bench.officer --role officer --consulate "$consulate" >/dev/null
    MAPCE_PASSWORD="bench planner password" "$bin" users create --username bench.planner --role planner >/dev/null
    MAPCE_DB_POOL_SIZE=16 "$bin" serve 2>>"$work/log" &
    pid=$!
    until curl -fs "http://$MAPCE_BIND/readyz" >/dev/null 2>&1; do sleep 0.1; done
    sleep 1
    put "server memory, idle (RSS)" "$(awk '/VmRSS/ {printf "%.0f MB", $2/1024}' "/proc/$pid/status")"
    login() {
        curl -fs -X POST "http://$MAPCE_BIND/api/v1/auth/login" -H 'Content-Type: application/json' \
            -d "{\"username\":\"$1\",\"password\":\"$2\"}" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["session"]["access_token"])'
    }
    officer_token=$(login bench.officer "bench officer password")
    planner_token=$(login bench.planner "bench planner password")

    ids=$(sql "SELECT p.registered_consulate_id || ' ' || u.id || ' ' || t.id FROM persons p, users u, attention_types t WHERE p.id = '$heavy' AND u.username = 'bench.officer' AND t.code = 'legal_orientation'")
    read -r consulate_id officer_id type_id <<<"$ids"
    # cases go to another person of that consulate: the history measured
    # below keeps its 200 events
    client=$(sql "SELECT id FROM persons WHERE registered_consulate_id = '$consulate_id' AND id <> '$heavy' ORDER BY id LIMIT 1")
    today=$(date -u +%F)
    { echo 'wrk.method = "POST"'; echo 'wrk.headers["Content-Type"] = "application/json"'
      echo "wrk.body = '{\"person_id\":\"$client\",\"channel\":\"phone\",\"requester\":{\"kind\":\"self\"},\"summary\":\"Needs help\",\"attentions\":[{\"attention_type\":\"legal_orientation\",\"date\":\"$today\",\"description\":\"Orientation\"}]}'"
      cat "$out/report.lua"; } > "$work/case.lua"
    for clients in 1 16 64; do
        echo "== $backend: case creation, $clients clients" >&2
        read -r rps p50 p99 non2xx < <(wrk -t"$(( clients < 2 ? 1 : 2 ))" -c"$clients" -d"${secs}s" -s "$work/case.lua" \
            -H "Authorization: Bearer $officer_token" "http://$MAPCE_BIND/api/v1/cases" | tail -n 1)
        if [ "$backend" = postgres ]; then
            sed -e "s/\$person/$client/g; s/\$consulate/$consulate_id/g; s/\$officer/$officer_id/g; s/\$type/$type_id/g" \
                bench/case-creation-sql.pgsql > "$work/case.sql"
            rm -f "$work"/pgbench_log.*
            (cd "$work" && "$PG_BIN/pgbench" -n -c"$clients" -j2 -T"$secs" -l -f case.sql "$MAPCE_DATABASE_URL" > pgbench.txt 2>&1)
            sql_tps=$(awk '/^tps/ {printf "%.1f", $3; exit}' "$work/pgbench.txt")
            sql_p50=$(cat "$work"/pgbench_log.* | awk '{print $3/1000}' | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.5)]}')
            sql_p99=$(cat "$work"/pgbench_log.* | awk '{print $3/1000}' | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.99)]}')
        else
            read -r sql_tps sql_p50 sql_p99 < <(python3 bench/case-creation-sql.py "$work/bench.sqlite3" \
                "$client" "$consulate_id" "$officer_id" "$type_id" "$clients" "$secs")
        fi
        put "case creation, $clients client(s): API" "$rps/s, p50 $p50 ms, p99 $p99 ms${non2xx:+ ($non2xx non-2xx)}"
        put "case creation, $clients client(s): plain SQL" "$sql_tps/s, p50 $sql_p50 ms, p99 $sql_p99 ms"
        put "case creation, $clients client(s): API / SQL throughput" "$(awk -v a="$rps" -v b="$sql_tps" 'BEGIN {printf "%.2f", a/b}')"
    done

    echo "== $backend: history" >&2
    { cat "$out/report.lua"; } > "$work/get.lua"
    read -r rps p50 p99 _ < <(wrk -t1 -c1 -d"${secs}s" -s "$work/get.lua" -H "Authorization: Bearer $officer_token" \
        "http://$MAPCE_BIND/api/v1/persons/$heavy/history?limit=200" | tail -n 1)
    put "person history (200 events), 1 client" "p50 $p50 ms, p99 $p99 ms ($rps/s)"
    read -r rps p50 p99 _ < <(wrk -t2 -c16 -d"${secs}s" -s "$work/get.lua" -H "Authorization: Bearer $officer_token" \
        "http://$MAPCE_BIND/api/v1/persons/$heavy/history?limit=200" | tail -n 1)
    put "person history (200 events), 16 clients" "p50 $p50 ms, p99 $p99 ms ($rps/s)"

    echo "== $backend: OEI.05" >&2
    scan="SELECT person_id, attention_type_id, consulate_id, country_code, channel, attended_on, person_sex, person_birth_date FROM attentions WHERE attended_on >= '$year-01-01' AND attended_on <= '$year-12-31' AND voided_at IS NULL"
    api_ms=(); sql_ms=()
    for i in 1 2 3 4 5 6 7; do
        t=$(date +%s%N)
        curl -fs -o /dev/null "http://$MAPCE_BIND/api/v1/indicators/oei05?year=$year" -H "Authorization: Bearer $planner_token"
        api_ms+=($(( ($(date +%s%N) - t) / 1000000 )))
        t=$(date +%s%N)
        sql "$scan" >/dev/null
        sql_ms+=($(( ($(date +%s%N) - t) / 1000000 )))
    done
    a=$(printf '%s\n' "${api_ms[@]}" | median); s=$(printf '%s\n' "${sql_ms[@]}" | median)
    put "OEI.05 $year ($(sql "SELECT COUNT(*) FROM attentions WHERE attended_on >= '$year-01-01' AND attended_on <= '$year-12-31'") attentions), median of 7" \
        "API $a ms, its query directly $s ms, ratio $(awk -v a="$a" -v b="$s" 'BEGIN {printf "%.2f", a/b}')"
    put "server memory, peak under this load (VmHWM)" "$(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' "/proc/$pid/status")"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

    echo "== $backend: import" >&2
    python3 bench/legacy-extract.py 100000 "$work/extract.csv"
    /usr/bin/time -f "%M" -o "$work/time" "$bin" import "$work/extract.csv" --report "$work/report.json" >/dev/null 2>&1
    put "legacy import, 100 000 rows into this database" \
        "$(python3 -c 'import json,sys; print("%.0f rows/s" % json.load(open(sys.argv[1]))["rows_per_second"])' "$work/report.json"), peak $(awk '{printf "%.0f MB", $1/1024}' "$work/time")"
)

command -v /usr/bin/time >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
run_backend sqlite
run_backend postgres
{
    echo "Benchmarks, $(date -u +%F), $(git rev-parse --short HEAD 2>/dev/null || echo unknown), demo-data --scale $scale, ${secs} s per load step"
    echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); server, database and load generator share it"
    echo
    echo "| measure | SQLite | PostgreSQL |"
    echo "|---|---|---|"
    cut -f1 "$out/sqlite.tsv" | while IFS= read -r metric; do
        s=$(awk -F'\t' -v m="$metric" '$1 == m {print $2}' "$out/sqlite.tsv")
        p=$(awk -F'\t' -v m="$metric" '$1 == m {print $2}' "$out/postgres.tsv")
        echo "| $metric | $s | ${p:-—} |"
    done
} | tee target/bench-results.md
