#!/usr/bin/env bash
# The OP benchmark (issue 7 item 4). Not a test, not in CI. One command:
#
#     bench/run.sh                         # granian, 2 WSGI workers (the production server of record, README)
#     BENCH_SERVER=gunicorn bench/run.sh   # gunicorn, 2 sync workers, for comparison
#     BENCH_PROFILE=1 bench/run.sh         # also py-spy each scenario -> bench/profiles/<server>-<scenario>.svg
#     BENCH_PEER=1 bench/run.sh            # then the same scenarios against node-oidc-provider 9
#                                          # (bench/peer/, 2 node:cluster workers), and our/peer ratios
#
# What it does, all on loopback:
#  1. drops and recreates the PostgreSQL database idp_bench (never "test"),
#     runs `flask --app idp db upgrade` and `flask --app idp demo`;
#  2. starts the OP on 127.0.0.1:8000 with 2 workers (IDP_ENV unset, Redis db 1);
#     with the README's production allocator setting (MALLOC_ARENA_MAX=2);
#  3. obtains a pool of refresh tokens and one access token through the real
#     authorize -> login -> code -> token flow (bench/flows.py tokens);
#  4. runs wrk -t2 -c32 -d10s with the Lua scripts in bench/lua/ for each
#     scenario (revocation last: it spends the shared access token), and
#     the full password login with bench/logins.mjs (Node.js);
#  5. prints req/s, p50, p99, errors per scenario and peak RSS per worker,
#     counts SQL per token request (bench/count_sql.py), stops the server.
# Results also go to bench/results/<server>-<UTC time>.md.
#
# Requires: wrk (apt-get install -y wrk), gunicorn (and granian) and py-spy in .venv,
# PostgreSQL at 127.0.0.1:5432 (user postgres, trust), Redis at 127.0.0.1:6379;
# Node.js for the login generator; for BENCH_PEER=1 also npm (bench/peer/package-lock.json is installed
# with npm ci on first use; the peer keeps its tokens in Redis db 3).
# Knobs: BENCH_DURATION (10s), BENCH_CONNECTIONS (32), BENCH_REFRESH_POOL (200),
# BENCH_LOGIN_CONCURRENCY (8 flows at once), BENCH_SERVER (granian | gunicorn | gunicorn-gthread),
# BENCH_SERVER_THREADS (granian's blocking threads, 1) and BENCH_SERVER_WORKERS (2; the peer keeps its 2:
# a sensitivity run, not the comparison of record).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
SERVER="${BENCH_SERVER:-granian}"
DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
THREADS=2
WORKERS="${BENCH_SERVER_WORKERS:-2}"
POOL="${BENCH_REFRESH_POOL:-200}"
LOGIN_CONCURRENCY="${BENCH_LOGIN_CONCURRENCY:-8}"
PROFILE="${BENCH_PROFILE:-0}"
PEER="${BENCH_PEER:-0}"
PORT=8000
PEER_PORT=8001
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
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BENCH/results"
RESULTS="$BENCH/results/$SERVER-$STAMP.md"
SERVER_PID=""
RSS_PID=""

stop_server() {
    [ -n "$RSS_PID" ] && kill "$RSS_PID" 2>/dev/null || true
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
    RSS_PID=""
}
trap stop_server EXIT INT TERM

command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 2; }
command -v node >/dev/null || { echo "Node.js missing (bench/logins.mjs): apt-get install -y nodejs" >&2; exit 2; }
for p in $PORT $PEER_PORT; do
    if ss -ltn "sport = :$p" | grep -q ":$p"; then echo "port $p is busy" >&2; exit 2; fi
done
if [ "$PEER" = 1 ]; then
    [ -d "$BENCH/peer/node_modules" ] || (cd "$BENCH/peer" && npm ci --no-audit --no-fund --silent)
fi

echo "== machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); server $SERVER"
# This CPU's RS256 ceiling: every client_credentials or refresh response signs once.
RSA_SIGNS=$(openssl speed -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $(NF-1)}')
echo "   RS256 signatures per core (openssl speed rsa2048): ${RSA_SIGNS:-?}/s"
busy=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 20 {print $2 "(" $1 "%)"}' | head -5 | tr '\n' ' ')
[ -n "$busy" ] && echo "!! other busy processes share the CPUs: $busy -- numbers will be low" >&2

echo "== database $DB: recreate, migrate, demo data"
dropdb "${PGOPTS[@]}" --if-exists --force "$DB"
createdb "${PGOPTS[@]}" "$DB"
redis-cli -h 127.0.0.1 -p 6379 -n 1 FLUSHDB >/dev/null 2>&1 || "$PY" -c "import redis; redis.Redis.from_url('$IDP_REDIS_URL').flushdb()"
cd "$ROOT"
"$VENV/bin/flask" --app idp db upgrade >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log"; exit 1; }
DEMO=$(IDP_ALLOW_PRIVATE_OUTBOUND=1 "$VENV/bin/flask" --app idp demo)  # its sites are on loopback
export BENCH_CLIENT_SECRET=$(echo "$DEMO" | awk '/client_id: mypage-demo/ {for (i = 1; i <= NF; i++) if ($i == "client_secret:") print $(i + 1)}')
[ -n "$BENCH_CLIENT_SECRET" ] || { echo "no mypage-demo secret in: $DEMO" >&2; exit 1; }

echo "== SQL per request (in-process, same database)"
"$PY" "$BENCH/count_sql.py" >"$WORK/sql.txt" 2>&1 || { cat "$WORK/sql.txt"; exit 1; }
grep -E '^[a-z_]+: ' "$WORK/sql.txt"

watch_server() {  # $1 = base URL: wait for it, find the workers, sample their RSS every 0.5 s
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$1/.well-known/openid-configuration" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
        sleep 0.2
    done
    curl -fsS -o /dev/null "$1/jwks"   # loads the key ring in one worker
    WORKER_PIDS=$(pgrep -P "$SERVER_PID" | tr '\n' ' ')
    echo "   master $SERVER_PID, workers $WORKER_PIDS"
    (
        while kill -0 "$SERVER_PID" 2>/dev/null; do
            for w in $WORKER_PIDS; do echo "$w $(ps -o rss= -p "$w" 2>/dev/null || echo 0)"; done
            sleep 0.5
        done
    ) >"$WORK/rss-$WHO.log" 2>/dev/null &
    RSS_PID=$!
}

WHO=ours
echo "== start $SERVER on $URL"
case "$SERVER" in
    gunicorn)
        "$VENV/bin/gunicorn" -w "$WORKERS" -b "127.0.0.1:$PORT" --log-level warning 'idp:create_app()' >"$WORK/server.log" 2>&1 &
        ;;
    gunicorn-gthread)
        "$VENV/bin/gunicorn" -w "$WORKERS" -k gthread --threads "${BENCH_SERVER_THREADS:-4}" -b "127.0.0.1:$PORT" \
            --log-level warning 'idp:create_app()' >"$WORK/server.log" 2>&1 &
        ;;
    granian)
        "$VENV/bin/granian" --interface wsgi --factory --workers "$WORKERS" --blocking-threads "${BENCH_SERVER_THREADS:-1}" \
            --host 127.0.0.1 --port "$PORT" --no-access-log --log-level warning 'idp:create_app' >"$WORK/server.log" 2>&1 &
        ;;
    *) echo "BENCH_SERVER must be gunicorn, gunicorn-gthread or granian" >&2; exit 2 ;;
esac
watch_server "$URL"

profile_start() {  # $1 = scenario. Worker 1 -> flame graph SVG, worker 2 -> raw stacks for a text summary.
    PROFILERS=""
    [ "$PROFILE" = 1 ] || return 0
    mkdir -p "$BENCH/profiles"
    local first=1 w
    for w in $WORKER_PIDS; do
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

worker_ticks() {  # CPU time (user + system, clock ticks) the workers have used so far
    local w total=0
    for w in $WORKER_PIDS; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$w/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
declare -A RESULT  # "<who> <scenario>" -> "req/s p50 p99 errors"
declare -A CPU     # "<who> <scenario>" -> worker CPU per request, microseconds
run_wrk() {  # $1 = scenario, $2 = path, $3 = lua script or ""
    local args=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 5s --latency) out="$WORK/wrk-$WHO-$1.txt"
    [ -n "$3" ] && args+=(-s "$BENCH/lua/$3")
    profile_start "$1"
    local ticks
    ticks=$(worker_ticks)
    wrk "${args[@]}" "$BENCH_BASE$2" >"$out" 2>&1 || true
    ticks=$(($(worker_ticks) - ticks))
    profile_end "$1"
    CPU["$WHO $1"]=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" '/requests in/ && $1 > 0 {printf "%.0f", t * 1e6 / hz / $1}' "$out")
    local rps p50 p99 bad sock extra
    rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    bad=$(awk '/Non-2xx or 3xx/ {print $NF}' "$out")
    sock=$(awk '/Socket errors/ {print $0}' "$out" | sed 's/ *Socket errors: //; s/ //g')
    extra=$(awk '/pool exhausted/ && $NF > 0 {print "pool-exhausted:" $NF} /without a new token/ && $NF > 0 {print "no-new-token:" $NF}' "$out" | paste -sd';' -)
    RESULT["$WHO $1"]="${rps:-?} ${p50:-?} ${p99:-?} ${bad:-0}${sock:+;sockets:$sock}${extra:+;$extra}"
    echo "   $1: ${rps:-?} req/s, p50 ${p50:-?}, p99 ${p99:-?}, non-2xx ${bad:-0} ${sock:+sockets: $sock} $extra; worker CPU ${CPU["$WHO $1"]:-?} µs/request"
}

suite() {  # every scenario against $BENCH_BASE, as $WHO
    export BENCH_TOKENS="$WORK/tokens-$WHO"
    echo "== $WHO: token pool, $POOL refresh tokens via authorize -> login -> code -> token"
    "$PY" "$BENCH/flows.py" tokens --out "$BENCH_TOKENS" --count "$POOL" --procs 8 --seconds 120
    echo "== $WHO: wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    run_wrk discovery /.well-known/openid-configuration ""
    run_wrk jwks /jwks ""
    run_wrk client_credentials /token client_credentials.lua
    run_wrk userinfo /userinfo userinfo.lua
    run_wrk introspection /introspect introspect.lua
    run_wrk refresh_token /token refresh.lua
    echo "== $WHO: full password login (authorize -> login POST -> code -> token -> userinfo), $LOGIN_CONCURRENCY at once"
    profile_start login_flow
    local ticks
    ticks=$(worker_ticks)
    node "$BENCH/logins.mjs" "$LOGIN_CONCURRENCY" "${DURATION%s}" >"$WORK/logins-$WHO.json" 2>"$WORK/logins-$WHO.err" || true
    ticks=$(($(worker_ticks) - ticks))
    profile_end login_flow
    # Worker CPU per flow (six requests: authorize, login page, login, authorize again, token, UserInfo).
    CPU["$WHO login_flow"]=$("$PY" -c "import json,sys; d=json.loads(sys.argv[1]); print(round(int(sys.argv[2]) * 1e6 / int(sys.argv[3]) / d['flows']) if d['flows'] else '-')" \
        "$(tail -1 "$WORK/logins-$WHO.json")" "$ticks" "$(getconf CLK_TCK)")
    local line
    line=$("$PY" -c "import json,sys; d=json.loads(sys.argv[1]); print(d['rate'], f\"{d['p50_ms']}ms\", f\"{d['p99_ms']}ms\", d['errors'])" "$(tail -1 "$WORK/logins-$WHO.json")")
    RESULT["$WHO login_flow"]="$line"
    echo "   login_flow: $line (flows/s, p50, p99, errors)"
    run_wrk revocation /revoke revoke.lua  # last: it spends the access token the scenarios above use
    RESULT["$WHO rss"]=$(awk '{ if ($2 > m[$1]) m[$1] = $2 } END { for (w in m) printf "%.0f/", m[w] / 1024 }' "$WORK/rss-$WHO.log" | sed 's#/$##')
}

suite
stop_server

if [ "$PEER" = 1 ]; then
    WHO=peer
    export BENCH_BASE="http://127.0.0.1:$PEER_PORT"
    PROFILE=0
    echo "== start the peer, node-oidc-provider $(node -p "require('$BENCH/peer/node_modules/oidc-provider/package.json').version") on Node.js $(node --version), on $BENCH_BASE"
    PEER_PORT=$PEER_PORT node "$BENCH/peer/server.mjs" >"$WORK/server.log" 2>&1 &
    watch_server "$BENCH_BASE"
    suite
    stop_server
fi

SCENARIOS=(discovery jwks client_credentials userinfo introspection refresh_token revocation login_flow)
{
    echo "### $SERVER, $WORKERS workers (${BENCH_SERVER_THREADS:-1} thread each), $(date -u +%Y-%m-%dT%H:%MZ), wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    echo
    echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)); RS256 signatures per core: ${RSA_SIGNS:-?}/s (openssl speed rsa2048)."
    echo
    if [ "$PEER" = 1 ]; then
        echo "| scenario | req/s | p50 | p99 | non-2xx / errors | CPU µs/req | peer req/s | peer p50 | peer p99 | peer errors | peer CPU µs/req | ours/peer |"
        echo "|---|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|"
    else
        echo "| scenario | req/s | p50 | p99 | non-2xx / errors | CPU µs/req |"
        echo "|---|---:|---:|---:|---|---:|"
    fi
    for sc in "${SCENARIOS[@]}"; do
        read -r r p50 p99 bad <<<"${RESULT["ours $sc"]}"
        label=$sc; [ "$sc" = login_flow ] && label="login_flow (flows/s)"
        if [ "$PEER" = 1 ]; then
            read -r pr pp50 pp99 pbad <<<"${RESULT["peer $sc"]}"
            ratio=$(awk -v a="$r" -v b="$pr" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')
            echo "| $label | $r | $p50 | $p99 | $bad | ${CPU["ours $sc"]:--} | $pr | $pp50 | $pp99 | $pbad | ${CPU["peer $sc"]:--} | $ratio |"
        else
            echo "| $label | $r | $p50 | $p99 | $bad | ${CPU["ours $sc"]:--} |"
        fi
    done
    echo
    echo "CPU µs/req: the server's worker processes' CPU time (user + system) during the run, per request (login_flow: per flow); not PostgreSQL's, Redis's or the load generator's."
    echo
    echo "Peak RSS per worker (MiB): ours ${RESULT["ours rss"]}${RESULT["peer rss"]:+; peer ${RESULT["peer rss"]}}"
    echo
    echo "SQL round trips per request (pre-ping, statements, and BEGIN and COMMIT where a transaction is open):"
    echo
    grep -E '^[a-z_]+: ' "$WORK/sql.txt" | sed 's/^/    /'
} | tee "$RESULTS"
echo
echo "results: $RESULTS (raw wrk output in $WORK)"
