#!/bin/sh
# PostgreSQL for the node tests (tools/node/images.py): a fresh cluster in $PGDATA on first
# start, the database $POSTGRES_DB owned by $POSTGRES_USER (password $POSTGRES_PASSWORD) for
# TCP clients, trust on the local socket for `kubectl exec ... psql`. Test data only: no fsync.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=inventory}"
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    "$bin/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 \
        --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 --no-sync >/dev/null
    rm -f "$pwfile"
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" |
        "$bin/postgres" --single -D "$PGDATA" -j postgres >/dev/null
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200
