#!/usr/bin/env bash
# The postgres service of docker-compose.yml: PostgreSQL 15 with trafficagg preloaded,
# consuming the Kafka topic.
#
# First start: initdb (superuser postgres, password POSTGRES_PASSWORD).  Every start:
#   - writes $PGDATA/docker.conf (listen address, port, trafficagg settings) and pg_hba.conf
#     from the environment;
#   - starts the server on its Unix socket only, with Kafka consumption off, and runs the
#     idempotent setup, postgres-setup.sql beside this script: CREATE EXTENSION IF NOT EXISTS
#     trafficagg CASCADE, the read-only role grafana (password GRAFANA_PASSWORD), which reads
#     what the extension grants to PUBLIC (not rejected_events, no ingest or flush);
#   - stops it and runs the server in the foreground (exec, so it receives the container's
#     stop signal; docker-compose.yml sets SIGINT, a fast shutdown).
# Authentication: trust on the Unix socket (inside the container), scram-sha-256 over TCP.
#
# Environment (defaults for the container):
#   PGDATA /var/lib/trafficagg/pgdata, PGPORT 5432, PG_LISTEN_ADDRESSES 0.0.0.0,
#   PG_SOCKET_DIR /var/run/postgresql, POSTGRES_PASSWORD postgres, GRAFANA_PASSWORD grafana,
#   TRAFFICAGG_BROKERS kafka:9092, TRAFFICAGG_TOPIC web_events, TRAFFICAGG_DATABASE postgres,
#   TRAFFICAGG_ALLOWED_LATENESS 5s, PG_USER postgres (used only when started as root).
set -euo pipefail

export PGDATA=${PGDATA:-/var/lib/trafficagg/pgdata}
port=${PGPORT:-5432}
listen=${PG_LISTEN_ADDRESSES:-0.0.0.0}
sockdir=${PG_SOCKET_DIR:-/var/run/postgresql}
postgres_password=${POSTGRES_PASSWORD:-postgres}
grafana_password=${GRAFANA_PASSWORD:-grafana}
brokers=${TRAFFICAGG_BROKERS:-kafka:9092}
topic=${TRAFFICAGG_TOPIC:-web_events}
database=${TRAFFICAGG_DATABASE:-postgres}
lateness=${TRAFFICAGG_ALLOWED_LATENESS:-5s}
pgbin=$(pg_config --bindir)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "postgres-entrypoint: $*" >&2; }
die() { log "$*"; exit 1; }

# Started as root (the container): PostgreSQL refuses to run as root; prepare the
# directories, then continue as the postgres user.
if [ "$(id -u)" -eq 0 ]; then
    user=${PG_USER:-postgres}
    id "$user" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$user"
    mkdir -p "$PGDATA" "$sockdir"
    chown "$user:" "$(dirname "$PGDATA")" "$sockdir"
    chown -R "$user:" "$PGDATA"
    chmod 700 "$PGDATA"
    exec setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --init-groups \
        env HOME="$(getent passwd "$user" | cut -d: -f6)" bash "$0" "$@"
fi
unset PGPORT PGHOST PGDATABASE PGUSER   # psql below is given everything explicitly

# a single-quoted literal for postgresql.conf
conf_str() { printf "'%s'" "${1//\'/\'\'}"; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    log "initializing $PGDATA"
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    pwfile=$(mktemp)
    printf '%s\n' "$postgres_password" > "$pwfile"
    "$pgbin/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null \
        || { rm -f "$pwfile"; die "initdb failed"; }
    rm -f "$pwfile"
    cat >> "$PGDATA/postgresql.conf" <<'CONF'

# trafficagg container: settings from the environment, rewritten at every start
include 'docker.conf'
CONF
fi

cat > "$PGDATA/docker.conf" <<CONF
# written by docker/postgres-entrypoint.sh at every start; edit the environment instead
listen_addresses = $(conf_str "$listen")
port = $port
unix_socket_directories = $(conf_str "$sockdir")
password_encryption = 'scram-sha-256'
shared_preload_libraries = 'trafficagg'
trafficagg.brokers = $(conf_str "$brokers")
trafficagg.topic = $(conf_str "$topic")
trafficagg.database = $(conf_str "$database")
trafficagg.allowed_lateness = $(conf_str "$lateness")
CONF

cat > "$PGDATA/pg_hba.conf" <<'HBA'
# written by docker/postgres-entrypoint.sh at every start
# TYPE  DATABASE  USER  ADDRESS    METHOD
local   all       all              trust
host    all       all   0.0.0.0/0  scram-sha-256
host    all       all   ::/0       scram-sha-256
HBA

# Setup on a server that listens on the socket only and does not consume Kafka yet
# (trafficagg.brokers = '' : SQL ingest only), so nothing outside sees a half-set-up server.
"$pgbin/pg_ctl" -D "$PGDATA" -w -t 120 -l "$PGDATA/setup.log" \
    -o "-c listen_addresses='' -c trafficagg.brokers=''" start >/dev/null \
    || { tail -n 30 "$PGDATA/setup.log" >&2; die "the setup server did not start"; }

psql_() { "$pgbin/psql" -X -q -h "$sockdir" -p "$port" -U postgres -v ON_ERROR_STOP=1 "$@"; }

setup() {
    local exists
    exists=$(psql_ -d postgres -At -v db="$database" <<'SQL'
SELECT count(*) FROM pg_database WHERE datname = :'db';
SQL
)
    if [ "$exists" = 0 ]; then
        log "creating database $database"
        psql_ -d postgres -v db="$database" <<'SQL'
CREATE DATABASE :"db";
SQL
    fi
    psql_ -d "$database" -v postgres_password="$postgres_password" <<'SQL'
ALTER ROLE postgres PASSWORD :'postgres_password';
SQL
    psql_ -d "$database" -v grafana_password="$grafana_password" -f "$here/postgres-setup.sql"
}

if ! setup; then
    "$pgbin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null || true
    tail -n 30 "$PGDATA/setup.log" >&2
    die "setup failed"
fi
"$pgbin/pg_ctl" -D "$PGDATA" -m fast -w -t 120 stop >/dev/null
log "setup done: extension trafficagg in database $database, role grafana; consuming $topic from $brokers"

exec "$pgbin/postgres" -D "$PGDATA"
