#!/usr/bin/env bash
# PostgreSQL 15 (Debian's package) and PgBouncer in transaction pooling mode, on loopback only,
# for running the test suite the way production reaches its database. The server preloads
# pg_stat_statements (Debian's postgresql-15 ships it) for `linea db queries`' tests, which
# create the extension in their own databases. A hot standby of it, made with
# `pg_basebackup -X stream -R` as a replication role, streams on its own port, for the tests of
# reading from replicas (issue 22); a second PgBouncer, also in transaction pooling mode, is the
# read pool in front of the standby (LINEA_READ_DATABASE_URL may name one).
#
#   .ci/compat-servers.sh start   # installs the packages if missing, starts all four, prints the URLs
#   .ci/compat-servers.sh stop
#   .ci/compat-servers.sh env     # the export lines for LINEA_TEST_*DATABASE_URL and LINEA_TEST_REPLICA*_URL
set -euo pipefail

DIR=${LINEA_COMPAT_DIR:-/tmp/linea-compat}
PG_PORT=${LINEA_COMPAT_PG_PORT:-54315}
BOUNCER_PORT=${LINEA_COMPAT_BOUNCER_PORT:-64315}
STANDBY_PORT=${LINEA_COMPAT_STANDBY_PORT:-54316}
STANDBY_BOUNCER_PORT=${LINEA_COMPAT_STANDBY_BOUNCER_PORT:-64316}
ROLE=linea_ci
# Streams WAL to the standby: REPLICATION, no superuser (initdb's pg_hba lets replication
# connections in from 127.0.0.1 with scram-sha-256).
REPLICATOR=linea_ci_replicator
STANDBY_NAME=linea_ci_standby
# Characters that must survive URL-encoding and be masked in every message.
PASSWORD='ci p@ss%:w0rd'
PASSWORD_URL='ci%20p%40ss%25%3Aw0rd'
PG_BIN=/usr/lib/postgresql/15/bin
RUN_AS=postgres
# The standby must allow as many connections as the primary (hot standby refuses fewer).
SERVER_OPTIONS="-c listen_addresses=127.0.0.1 -c unix_socket_directories='$DIR' -c max_connections=300 -c fsync=off -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=100000"

as_service_user() { su "$RUN_AS" -s /bin/bash -c "$*"; }

install_packages() {
  if [ -x "$PG_BIN/postgres" ] && command -v pgbouncer >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" != 0 ]; then echo "install postgresql-15 and pgbouncer first (needs root)" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql-15 pgbouncer >/dev/null
}

start() {
  install_packages
  stop_quietly
  rm -rf "$DIR"; mkdir -p "$DIR"
  chown "$RUN_AS" "$DIR"
  printf '%s\n' "$PASSWORD" > "$DIR/pwfile"; chown "$RUN_AS" "$DIR/pwfile"; chmod 600 "$DIR/pwfile"
  as_service_user "$PG_BIN/initdb -D '$DIR/pg' -U postgres --auth=scram-sha-256 --pwfile='$DIR/pwfile' --encoding=UTF8 --locale=C.UTF-8" >/dev/null
  as_service_user "$PG_BIN/pg_ctl -D '$DIR/pg' -l '$DIR/pg.log' -w start -o \"-p $PG_PORT $SERVER_OPTIONS\"" >/dev/null
  PGPASSWORD="$PASSWORD" "$PG_BIN/psql" -qAt -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c "CREATE ROLE $ROLE LOGIN SUPERUSER PASSWORD '$PASSWORD'" \
    -c "CREATE ROLE $REPLICATOR LOGIN REPLICATION PASSWORD '$PASSWORD'" >/dev/null
  start_standby
  printf '"%s" "%s"\n' "$ROLE" "$PASSWORD" > "$DIR/userlist.txt"
  chown "$RUN_AS" "$DIR/userlist.txt"; chmod 600 "$DIR/userlist.txt"
  start_bouncer pgbouncer "$BOUNCER_PORT" "$PG_PORT"
  start_bouncer pgbouncer-standby "$STANDBY_BOUNCER_PORT" "$STANDBY_PORT"
  env_lines
}

# A PgBouncer named $1 (its .ini, .log and .pid in $DIR) listening on port $2, in front of the
# server on port $3: transaction pooling, no reset query, the role's password checked (SCRAM).
start_bouncer() {
  local name=$1 port=$2 server_port=$3
  cat > "$DIR/$name.ini" <<INI
[databases]
* = host=127.0.0.1 port=$server_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $DIR/userlist.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
server_reset_query =
logfile = $DIR/$name.log
pidfile = $DIR/$name.pid
INI
  chown "$RUN_AS" "$DIR/$name.ini"
  as_service_user "pgbouncer -d '$DIR/$name.ini'"
  for _ in $(seq 50); do
    if PGPASSWORD="$PASSWORD" "$PG_BIN/psql" -qAt -h 127.0.0.1 -p "$port" -U "$ROLE" -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
      return
    fi
    sleep 0.2
  done
  echo "$name did not come up; see $DIR/$name.log" >&2; exit 1
}

# The standby: a base backup streamed from the primary as the replication role (-R writes
# primary_conninfo, password and application_name included, and standby.signal), started on its
# own port; ready once the primary's pg_stat_replication shows it streaming (polled, bounded
# generously: a slow machine waits, a standby that never streams fails the script).
start_standby() {
  # The password goes in a file only the service user reads, not on a command line (-R makes the
  # standby's primary_conninfo name this file, so it stays). In a password file, : and \ are escaped.
  local escaped=${PASSWORD//\\/\\\\}; escaped=${escaped//:/\\:}
  printf '127.0.0.1:%s:replication:%s:%s\n' "$PG_PORT" "$REPLICATOR" "$escaped" > "$DIR/standby.pgpass"
  chown "$RUN_AS" "$DIR/standby.pgpass"; chmod 600 "$DIR/standby.pgpass"
  as_service_user "PGPASSFILE='$DIR/standby.pgpass' $PG_BIN/pg_basebackup -d 'host=127.0.0.1 port=$PG_PORT user=$REPLICATOR application_name=$STANDBY_NAME' -D '$DIR/standby' -X stream -R -c fast"
  as_service_user "$PG_BIN/pg_ctl -D '$DIR/standby' -l '$DIR/standby.log' -w start -o \"-p $STANDBY_PORT $SERVER_OPTIONS\"" >/dev/null
  for _ in $(seq 1500); do
    state=$(PGPASSWORD="$PASSWORD" "$PG_BIN/psql" -qAt -h 127.0.0.1 -p "$PG_PORT" -U "$ROLE" -d postgres \
      -c "SELECT state FROM pg_stat_replication WHERE application_name = '$STANDBY_NAME'" 2>/dev/null || true)
    if [ "$state" = streaming ]; then return; fi
    if [ ! -f "$DIR/standby/postmaster.pid" ]; then break; fi
    sleep 0.2
  done
  echo "the standby did not stream; see $DIR/standby.log" >&2; exit 1
}

env_lines() {
  echo "export LINEA_TEST_DATABASE_URL='postgresql://$ROLE:$PASSWORD_URL@127.0.0.1:$BOUNCER_PORT/postgres'"
  echo "export LINEA_TEST_DIRECT_DATABASE_URL='postgresql://$ROLE:$PASSWORD_URL@127.0.0.1:$PG_PORT/postgres'"
  echo "export LINEA_TEST_REPLICA_URL='postgresql://$ROLE:$PASSWORD_URL@127.0.0.1:$STANDBY_PORT/postgres'"
  echo "export LINEA_TEST_REPLICA_POOL_URL='postgresql://$ROLE:$PASSWORD_URL@127.0.0.1:$STANDBY_BOUNCER_PORT/postgres'"
}

stop_quietly() {
  for name in pgbouncer pgbouncer-standby; do
    if [ -f "$DIR/$name.pid" ]; then kill "$(cat "$DIR/$name.pid")" 2>/dev/null || true; fi
  done
  # The standby first: stopped after its primary, it would retry the connection until stopped.
  for data in standby pg; do
    if [ -f "$DIR/$data/postmaster.pid" ]; then as_service_user "$PG_BIN/pg_ctl -D '$DIR/$data' -m fast -w stop" >/dev/null 2>&1 || true; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop_quietly ;;
  env) env_lines ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
