#!/usr/bin/env bash
# Benchmark: the full OEI.05 response for one year on a database of
# 2 500 000 attentions (a decade at ten times today's national volume), and
# the same SQL run directly (psql / sqlite3) in the same run.
# Usage: bench/oei05.sh sqlite|postgres [persons] [attentions] [rounds] [year]
# (installs PostgreSQL and the sqlite3 shell with apt-get if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
persons="${2:-1000000}"
attentions="${3:-2500000}"
rounds="${4:-7}"
year="${5:-$(( $(date +%Y) - 1 ))}"
command -v sqlite3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null; }
# shellcheck source=bench/env.sh
source bench/env.sh
bench_env "$backend" 18085

if [ -n "${BENCH_SQLITE_DB:-}" ] && [ "$backend" = sqlite ]; then
    # reuse, in place, a population generated earlier by this script's command
    export MAPCE_DATABASE_URL="sqlite://$BENCH_SQLITE_DB"
    sql() { sqlite3 "$BENCH_SQLITE_DB" "$1"; }
    "$bin" migrate >/dev/null
else
    echo "== generating $persons persons and $attentions attentions ($backend)"
    start=$(date +%s)
    "$bin" demo-data --persons "$persons" --attentions "$attentions" >/dev/null
    echo "   generated in $(( $(date +%s) - start )) s"
fi
[ "$backend" = postgres ] && sql "VACUUM ANALYZE" >/dev/null
[ "$backend" = sqlite ] && sql "ANALYZE" >/dev/null
echo "   attentions in $year: $(sql "SELECT COUNT(*) FROM attentions WHERE attended_on >= '$year-01-01' AND attended_on <= '$year-12-31' AND voided_at IS NULL")"
MAPCE_PASSWORD="bench planner password" "$bin" users create --username bench.planner --role planner >/dev/null 2>&1 || true
"$bin" serve 2>>"$work/log" &
pid=$!
until curl -fs "http://$MAPCE_BIND/readyz" >/dev/null 2>&1; do sleep 0.1; done
token=$(curl -fs -X POST "http://$MAPCE_BIND/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"username":"bench.planner","password":"bench planner password"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

p="a.attended_on >= '$year-01-01' AND a.attended_on <= '$year-12-31' AND a.voided_at IS NULL"
# 1. The query the API runs (services::indicators::SCAN_SQL), with its two
#    parameters written in.
same_sql="SELECT person_id, attention_type_id, consulate_id, country_code, channel, attended_on, person_sex, person_birth_date FROM attentions WHERE attended_on >= '$year-01-01' AND attended_on <= '$year-12-31' AND voided_at IS NULL"
# 2. The same figures computed by SQL alone: persons (distinct) and
#    attentions per breakdown, region x sex, and age group at the first
#    attention of the year.
if [ "$backend" = postgres ]; then
    age="date_part('year', age(first_on, birth))"
else
    age="(CAST(strftime('%Y', first_on) AS INTEGER) - CAST(strftime('%Y', birth) AS INTEGER) - (strftime('%m-%d', first_on) < strftime('%m-%d', birth)))"
fi
region_join="JOIN countries c ON c.alpha2 = a.country_code"
figures_sql="SELECT COUNT(DISTINCT a.person_id), COUNT(*) FROM attentions a WHERE $p;
SELECT a.person_sex, COUNT(DISTINCT a.person_id), COUNT(*) FROM attentions a WHERE $p GROUP BY a.person_sex;
SELECT c.region_code, COUNT(DISTINCT a.person_id), COUNT(*) FROM attentions a $region_join WHERE $p GROUP BY c.region_code;
SELECT c.region_code, a.person_sex, COUNT(DISTINCT a.person_id) FROM attentions a $region_join WHERE $p GROUP BY c.region_code, a.person_sex;
SELECT a.country_code, COUNT(DISTINCT a.person_id), COUNT(*) FROM attentions a WHERE $p GROUP BY a.country_code;
SELECT a.consulate_id, COUNT(DISTINCT a.person_id), COUNT(*) FROM attentions a WHERE $p GROUP BY a.consulate_id;
SELECT a.attention_type_id, COUNT(DISTINCT a.person_id), COUNT(*) FROM attentions a WHERE $p GROUP BY a.attention_type_id;
SELECT t.category, COUNT(DISTINCT a.person_id), COUNT(*) FROM attentions a JOIN attention_types t ON t.id = a.attention_type_id WHERE $p GROUP BY t.category;
SELECT a.channel, COUNT(DISTINCT a.person_id), COUNT(*) FROM attentions a WHERE $p GROUP BY a.channel;
SELECT CASE WHEN birth IS NULL THEN 'unknown' WHEN $age < 18 THEN '0-17' WHEN $age < 30 THEN '18-29' WHEN $age < 45 THEN '30-44' WHEN $age < 60 THEN '45-59' ELSE '60+' END AS g, COUNT(*), SUM(n)
  FROM (SELECT a.person_id, MIN(a.attended_on) AS first_on, MAX(a.person_birth_date) AS birth, COUNT(*) AS n FROM attentions a WHERE $p GROUP BY a.person_id) f GROUP BY g;"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
api_times=(); sql_times=(); fig_times=()
for i in $(seq 1 "$rounds"); do
    # alternate which goes first, so neither always meets a warm cache
    for which in $( [ $((i % 2)) -eq 1 ] && echo "api sql figures" || echo "figures sql api"); do
        t=$(date +%s%N)
        if [ "$which" = api ]; then
            curl -fs -o "$work/oei05.json" "http://$MAPCE_BIND/api/v1/indicators/oei05?year=$year" -H "Authorization: Bearer $token"
            api_times+=("$(ms "$t")")
        elif [ "$which" = sql ]; then
            sql "$same_sql" >/dev/null
            sql_times+=("$(ms "$t")")
        else
            sql "$figures_sql" >/dev/null
            fig_times+=("$(ms "$t")")
        fi
    done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
api=$(median "${api_times[@]}"); raw=$(median "${sql_times[@]}"); fig=$(median "${fig_times[@]}")
persons_counted=$(grep -o '"persons":[0-9]*' "$work/oei05.json" | head -1 | cut -d: -f2)
echo "== OEI.05 for $year: $persons_counted persons"
echo "   API  (GET /indicators/oei05, full response): ${api_times[*]} ms → median $api ms"
client=$( [ "$backend" = postgres ] && echo psql || echo sqlite3 )
echo "   SQL, the query the API sends ($client, rows to /dev/null): ${sql_times[*]} ms → median $raw ms"
echo "   SQL, the same figures computed by SQL alone ($client): ${fig_times[*]} ms → median $fig ms"
awk -v a="$api" -v s="$raw" -v f="$fig" 'BEGIN { printf "   ratio API / its query: %.2f; API / figures in SQL: %.2f\n", a / s, a / f }'
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
