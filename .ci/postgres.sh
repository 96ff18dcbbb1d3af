#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite, on 127.0.0.1, from the Debian packages.
#
#   eval "$(bash .ci/postgres.sh start)"   # prints: export RORCLIENT_TEST_POSTGRES_URL=postgresql://...
#   bash .ci/postgres.sh stop
#
# start installs postgresql with apt-get when no /usr/lib/postgresql/*/bin/initdb exists, creates a
# cluster in $RORCLIENT_CI_PG_DIR (default: $TMPDIR/rorclient-ci-postgres) owned by the postgres user
# (PostgreSQL refuses to run as root), starts it on a free port of 127.0.0.1 with password (SCRAM)
# authentication and a random password, creates the database rorclient_test and prints the export line
# for its URL on stdout (everything else goes to stderr). stop stops the cluster and removes the directory.
set -euo pipefail

DIR=${RORCLIENT_CI_PG_DIR:-${TMPDIR:-/tmp}/rorclient-ci-postgres}
DATABASE=rorclient_test
SUPERUSER=postgres

say() { echo "ci/postgres: $*" >&2; }

bindir() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$found" ] && [ -x "$found/initdb" ]; then echo "$found"; fi
}

as_superuser() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$SUPERUSER" -- "$@"
    else
        "$@"
    fi
}

install_if_missing() {
    if [ -n "$(bindir)" ]; then return; fi
    if [ "$(id -u)" != 0 ]; then
        say "postgresql is not installed and this is not root: install it (apt-get install postgresql)"
        exit 1
    fi
    say "installing postgresql"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() {
    local bin
    bin=$(bindir)
    if [ -n "$bin" ] && [ -f "$DIR/data/postmaster.pid" ]; then
        as_superuser "$bin/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$DIR"
}

start() {
    install_if_missing
    local bin port password
    bin=$(bindir)
    stop
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    if [ "$(id -u)" = 0 ]; then chown "$SUPERUSER" "$DIR"; fi
    password=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    printf '%s\n' "$password" >"$DIR/password"
    if [ "$(id -u)" = 0 ]; then chown "$SUPERUSER" "$DIR/password"; fi
    as_superuser "$bin/initdb" -D "$DIR/data" -U "$SUPERUSER" --auth-local=trust --auth-host=scram-sha-256 \
        --pwfile="$DIR/password" --encoding=UTF8 --locale=C >/dev/null
    rm -f "$DIR/password"
    port=$(free_port)
    if ! as_superuser "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start -o \
        "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR -c max_connections=200 \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2; then
        cat "$DIR/server.log" >&2 || true
        exit 1
    fi
    as_superuser "$bin/psql" -X -q -h "$DIR" -p "$port" -U "$SUPERUSER" -d postgres \
        -c "CREATE DATABASE $DATABASE" >&2
    say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, database $DATABASE"
    echo "export RORCLIENT_TEST_POSTGRES_URL=postgresql://$SUPERUSER:$password@127.0.0.1:$port/$DATABASE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *)
        sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
