#!/usr/bin/env bash
# The OP benchmark (issue 7 item 4). Not a test, not in CI. One command:
#
#     bench/run.sh                         # granian, 2 WSGI workers (the production server of record, README)
#     BENCH_SERVER=gunicorn bench/run.sh   # gunicorn, 2 sync workers, for comparison
#     BENCH_PROFILE=1 bench/run.sh        # also py-spy each scenario -> bench/profiles/<server>-<scenario>.svg
#
# What it does, all on loopback:
#  1. drops and recreates the PostgreSQL database idp_bench (never "test"),
#     runs `flask --app idp db upgrade` and `flask --app idp demo`;
#  2. starts the OP on 127.0.0.1:8000 with 2 workers (IDP_ENV unset, Redis db 1);
#     with the README's production allocator setting (MALLOC_ARENA_MAX=2);
#  3. obtains a pool of refresh tokens and one access token through the real
#     authorize -> login -> code -> token flow (bench/flows.py tokens);
#  4. runs wrk -t2 -c32 -d10s with the Lua scripts in bench/lua/ for each
#     scenario, and the full password login with bench/flows.py logins;
#  5. prints req/s, p50, p99, errors per scenario and peak RSS per worker,
#     counts SQL per token request (bench/count_sql.py), stops the server.
# Results also go to bench/results/<server>-<UTC time>.md.
#
# Requires: wrk (apt-get install -y wrk), gunicorn (and granian) and py-spy in .venv,
# PostgreSQL at 127.0.0.1:5432 (user postgres, trust), Redis at 127.0.0.1:6379.
# Knobs: BENCH_DURATION (10s), BENCH_CONNECTIONS (32), BENCH_REFRESH_POOL (200),
# BENCH_LOGIN_PROCS (8), BENCH_SERVER (gunicorn | gunicorn-gthread | granian).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
SERVER="${BENCH_SERVER:-granian}"
DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
THREADS=2
POOL="${BENCH_REFRESH_POOL:-200}"
LOGIN_PROCS="${BENCH_LOGIN_PROCS:-8}"
PROFILE="${BENCH_PROFILE:-0}"
PORT=8000
URL="http://127.0.0.1:$PORT"
DB=idp_bench
PGOPTS=(-h 127.0.0.1 -p 5432 -U postgres)

export IDP_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$DB"
export IDP_ISSUER="$URL"
export IDP_SECRET_KEY="bench-only-secret-key-not-for-production-0123456789"
export IDP_REDIS_URL="redis://127.0.0.1:6379/1"
export MALLOC_ARENA_MAX=2  # as in production (README)
unset IDP_ENV IDP_MAIL_URL IDP_TRUSTED_PROXIES || true
export BENCH_LUA_DIR="$BENCH/lua" BENCH_THREADS=$THREADS BENCH_BASE="$URL" BENCH_CLIENT_ID=mypage-demo

WORK=$(mktemp -d /tmp/idp-bench.XXXXXX)
export BENCH_TOKENS="$WORK/tokens"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BENCH/results"
RESULTS="$BENCH/results/$SERVER-$STAMP.md"
SERVER_PID=""
RSS_PID=""

cleanup() {
    [ -n "$RSS_PID" ] && kill "$RSS_PID" 2>/dev/null || true
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 2; }
if ss -ltn "sport = :$PORT" | grep -q ":$PORT"; then echo "port $PORT is busy" >&2; exit 2; fi

echo "== machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); server $SERVER"
busy=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 20 {print $2 "(" $1 "%)"}' | head -5 | tr '\n' ' ')
[ -n "$busy" ] && echo "!! other busy processes share the CPUs: $busy -- numbers will be low" >&2

echo "== database $DB: recreate, migrate, demo data"
dropdb "${PGOPTS[@]}" --if-exists --force "$DB"
createdb "${PGOPTS[@]}" "$DB"
redis-cli -h 127.0.0.1 -p 6379 -n 1 FLUSHDB >/dev/null 2>&1 || "$PY" -c "import redis; redis.Redis.from_url('$IDP_REDIS_URL').flushdb()"
cd "$ROOT"
"$VENV/bin/flask" --app idp db upgrade >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log"; exit 1; }
DEMO=$("$VENV/bin/flask" --app idp demo)
export BENCH_CLIENT_SECRET=$(echo "$DEMO" | awk '/client_id: mypage-demo/ {for (i = 1; i <= NF; i++) if ($i == "client_secret:") print $(i + 1)}')
[ -n "$BENCH_CLIENT_SECRET" ] || { echo "no mypage-demo secret in: $DEMO" >&2; exit 1; }

echo "== SQL per request (in-process, same database)"
"$PY" "$BENCH/count_sql.py" >"$WORK/sql.txt" 2>&1 || { cat "$WORK/sql.txt"; exit 1; }
grep -E '^[a-z_]+: ' "$WORK/sql.txt"

echo "== start $SERVER on $URL"
case "$SERVER" in
    gunicorn)
        "$VENV/bin/gunicorn" -w 2 -b "127.0.0.1:$PORT" --log-level warning 'idp:create_app()' >"$WORK/server.log" 2>&1 &
        ;;
    gunicorn-gthread)
        "$VENV/bin/gunicorn" -w 2 -k gthread --threads "${BENCH_SERVER_THREADS:-4}" -b "127.0.0.1:$PORT" \
            --log-level warning 'idp:create_app()' >"$WORK/server.log" 2>&1 &
        ;;
    granian)
        "$VENV/bin/granian" --interface wsgi --factory --workers 2 --blocking-threads "${BENCH_SERVER_THREADS:-1}" \
            --host 127.0.0.1 --port "$PORT" --no-access-log --log-level warning 'idp:create_app' >"$WORK/server.log" 2>&1 &
        ;;
    *) echo "BENCH_SERVER must be gunicorn, gunicorn-gthread or granian" >&2; exit 2 ;;
esac
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$URL/.well-known/openid-configuration" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
    sleep 0.2
done
curl -fsS -o /dev/null "$URL/jwks"   # loads the key ring in one worker
WORKERS=$(pgrep -P "$SERVER_PID" | tr '\n' ' ')
echo "   master $SERVER_PID, workers $WORKERS"

# Peak RSS per worker: sample every 0.5 s while the server runs.
(
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        for w in $WORKERS; do echo "$w $(ps -o rss= -p "$w" 2>/dev/null || echo 0)"; done
        sleep 0.5
    done
) >"$WORK/rss.log" 2>/dev/null &
RSS_PID=$!

echo "== token pool: $POOL refresh tokens via authorize -> login -> code -> token"
BENCH_BASE="$URL" "$PY" "$BENCH/flows.py" tokens --out "$BENCH_TOKENS" --count "$POOL" --procs 8 --seconds 120

profile_start() {  # $1 = scenario. Worker 1 -> flame graph SVG, worker 2 -> raw stacks for a text summary.
    PROFILERS=""
    [ "$PROFILE" = 1 ] || return 0
    mkdir -p "$BENCH/profiles"
    local first=1 w
    for w in $WORKERS; do
        if [ $first = 1 ]; then
            "$VENV/bin/py-spy" record --pid "$w" --duration 6 --rate 200 --nonblocking \
                -o "$BENCH/profiles/$SERVER-$1.svg" >/dev/null 2>&1 &
            first=0
        else
            "$VENV/bin/py-spy" record --pid "$w" --duration 6 --rate 200 --nonblocking --format raw \
                -o "$BENCH/profiles/$SERVER-$1.raw" >/dev/null 2>&1 &
        fi
        PROFILERS="$PROFILERS $!"
    done
}
profile_end() {  # $1 = scenario
    [ "$PROFILE" = 1 ] || return 0
    local p
    for p in $PROFILERS; do wait "$p" 2>/dev/null || true; done
    if [ -s "$BENCH/profiles/$SERVER-$1.raw" ]; then
        "$PY" "$BENCH/pyspy_summary.py" "$BENCH/profiles/$SERVER-$1.raw" >"$BENCH/profiles/$SERVER-$1.txt" 2>&1 || true
    fi
}

ROWS=()
run_wrk() {  # $1 = scenario, $2 = path, $3 = lua script or ""
    local args=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 5s --latency)
    [ -n "$3" ] && args+=(-s "$BENCH/lua/$3")
    profile_start "$1"
    wrk "${args[@]}" "$URL$2" >"$WORK/wrk-$1.txt" 2>&1 || true
    profile_end "$1"
    local rps p50 p99 bad sock extra
    rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk-$1.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk-$1.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk-$1.txt")
    bad=$(awk '/Non-2xx or 3xx/ {print $NF}' "$WORK/wrk-$1.txt")
    sock=$(awk '/Socket errors/ {print $0}' "$WORK/wrk-$1.txt" | sed 's/ *Socket errors: //')
    extra=$(awk '/pool exhausted/ && $NF > 0 {print "pool exhausted: " $NF} /without a new token/ && $NF > 0 {print "no new token: " $NF}' "$WORK/wrk-$1.txt" | paste -sd';' -)
    ROWS+=("| $1 | ${rps:-?} | ${p50:-?} | ${p99:-?} | ${bad:-0}${sock:+; sockets $sock}${extra:+; $extra} |")
    echo "   $1: ${rps:-?} req/s, p50 ${p50:-?}, p99 ${p99:-?}, non-2xx ${bad:-0} ${sock:+sockets: $sock} $extra"
}

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
run_wrk discovery /.well-known/openid-configuration ""
run_wrk jwks /jwks ""
run_wrk client_credentials /token client_credentials.lua
run_wrk userinfo /userinfo userinfo.lua
run_wrk introspection /introspect introspect.lua
run_wrk refresh_token /token refresh.lua

echo "== full password login (authorize -> login POST -> code -> token -> userinfo), $LOGIN_PROCS processes"
profile_start login_flow
"$PY" "$BENCH/flows.py" logins --procs "$LOGIN_PROCS" --seconds "${DURATION%s}" --json >"$WORK/logins.json" 2>"$WORK/logins.err" || true
profile_end login_flow
LOGIN=$(tail -1 "$WORK/logins.json")
read -r lrate lp50 lp99 lerr < <("$PY" -c "import json,sys; d=json.loads(sys.argv[1]); print(d['rate'], d['p50_ms'], d['p99_ms'], d['errors'])" "$LOGIN")
ROWS+=("| login_flow (flows/s) | $lrate | ${lp50}ms | ${lp99}ms | $lerr |")
echo "   login_flow: $lrate flows/s, p50 ${lp50}ms, p99 ${lp99}ms, errors $lerr"

cleanup
SERVER_PID=""
RSS_PID=""

{
    echo "### $SERVER, 2 workers, $(date -u +%Y-%m-%dT%H:%MZ), wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    echo
    echo "| scenario | req/s | p50 | p99 | non-2xx / errors |"
    echo "|---|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Peak RSS per worker (MiB): $(awk '{ if ($2 > m[$1]) m[$1] = $2 } END { for (w in m) printf "%s=%.0f ", w, m[w] / 1024 }' "$WORK/rss.log")"
    echo
    echo "SQL round trips per request (statements, plus BEGIN and COMMIT where a transaction is open):"
    echo
    grep -E '^[a-z_]+: ' "$WORK/sql.txt" | sed 's/^/    /'
} | tee "$RESULTS"
echo
echo "results: $RESULTS (raw wrk output in $WORK)"
