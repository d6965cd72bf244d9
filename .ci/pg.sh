# shellcheck shell=bash
# A throw-away PostgreSQL cluster on 127.0.0.1 for tests and benchmarks.
# Usage: source .ci/pg.sh; pg_install; pg_start; ...; pg_stop
# Sets PG_URL (a superuser URL to the `postgres` database) and PG_PORT;
# PG_OPTS adds server settings (`-c name=value …`).

PG_PORT="${PG_PORT:-55432}"

# need TOOL…: installs (apt-get) the packages of those names that are missing
need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
    done
}

pg_install() {
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! dpkg -s libpq-dev >/dev/null 2>&1; then
        echo "== installing PostgreSQL and libpq-dev with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql libpq-dev >/dev/null
    fi
}

free_port() {
    local port="$1"
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

pg_start() {
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    # A server that does not come up (a port taken between the check and the
    # start, a resource the host lacks) gets its log printed and another try
    # on a fresh cluster and port, so CI's log says why if all tries fail.
    local try
    for try in 1 2 3; do
        PG_PORT="$(free_port "$PG_PORT")"
        PG_DATA="$(mktemp -d /tmp/mapce-pg.XXXXXX)"
        chown postgres:postgres "$PG_DATA"
        runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --no-sync >/dev/null
        # fsync off (-F): the cluster is thrown away, so durability is not needed.
        if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
            -o "-F -h 127.0.0.1 -p $PG_PORT -k $PG_DATA -c max_connections=300 ${PG_OPTS:-}" start >/dev/null; then
            PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
            export PG_URL PG_PORT PG_BIN PG_DATA
            echo "== PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
            return 0
        fi
        echo "== PostgreSQL did not start on 127.0.0.1:$PG_PORT (try $try of 3); its log:" >&2
        tail -n 30 "$PG_DATA/server.log" >&2 || true
        pg_stop
        PG_PORT=$((PG_PORT + 1 + RANDOM % 100))
    done
    return 1
}

pg_stop() {
    if [ -n "${PG_DATA:-}" ] && [ -d "$PG_DATA" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DATA"
    fi
}
