# PostgreSQL from Debian's packages: a cluster of our own (own data directory and port, so it never
# touches another cluster), wal_level=logical for Debezium, track_commit_timestamp=on (the bench reads
# each event's commit time with pg_xact_commit_timestamp), one database per service.

postgres_bin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$d" ] && [ -x "$d/pg_ctl" ] || return 1
  echo "$d"
}

postgres_install() {
  postgres_bin >/dev/null && return 0
  log "installing PostgreSQL from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null ||
    die "apt-get install postgresql failed"
}

postgres_address() { echo "postgres://$ORDERFLOW_PG_USER@$ORDERFLOW_PG_HOST:$ORDERFLOW_PG_PORT (databases: $ORDERFLOW_PG_DATABASES)"; }

# Run a command as the owner of the cluster (postgres refuses to run as root).
postgres_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

postgres_start() {
  local bin dir data
  bin="$(postgres_bin)"
  dir="$(component_dir postgres)"
  data="$dir/data"
  touch "$dir/log"
  [ "$(id -u)" = 0 ] && chown -R postgres "$dir" && chmod 755 "$ORDERFLOW_STATE"
  if [ ! -f "$data/PG_VERSION" ]; then
    printf '%s\n' "$ORDERFLOW_PG_PASSWORD" >"$dir/pwfile"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/pwfile"
    postgres_as_owner "$bin/initdb" -D "$data" -U "$ORDERFLOW_PG_USER" --pwfile="$dir/pwfile" \
      --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >>"$dir/log" 2>&1 || { cat "$dir/log" >&2; return 1; }
    rm -f "$dir/pwfile"
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $ORDERFLOW_PG_PORT
unix_socket_directories = '$dir'
wal_level = logical
max_wal_senders = 20
max_replication_slots = 20
max_connections = 300
fsync = on
CONF
    echo "host replication all 127.0.0.1/32 scram-sha-256" >>"$data/pg_hba.conf"
  fi
  # Read at server start only: a cluster made before this setting gets it at its next start
  # (scripts/stack down postgres && scripts/stack up postgres).
  grep -q '^track_commit_timestamp' "$data/postgresql.conf" ||
    echo "track_commit_timestamp = on" >>"$data/postgresql.conf"
  postgres_as_owner "$bin/pg_ctl" -D "$data" -l "$dir/log" -w -t 60 start >/dev/null 2>&1 || return 1
  head -n 1 "$data/postmaster.pid" >"$dir/pid"
  local db
  for db in $ORDERFLOW_PG_DATABASES; do
    PGPASSWORD="$ORDERFLOW_PG_PASSWORD" psql -h 127.0.0.1 -p "$ORDERFLOW_PG_PORT" -U "$ORDERFLOW_PG_USER" -d postgres -tAq \
      -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
      PGPASSWORD="$ORDERFLOW_PG_PASSWORD" createdb -h 127.0.0.1 -p "$ORDERFLOW_PG_PORT" -U "$ORDERFLOW_PG_USER" "$db"
  done
}

postgres_healthy() {
  local db
  for db in $ORDERFLOW_PG_DATABASES; do
    PGPASSWORD="$ORDERFLOW_PG_PASSWORD" psql -h 127.0.0.1 -p "$ORDERFLOW_PG_PORT" -U "$ORDERFLOW_PG_USER" -d "$db" \
      -tAq -c "SHOW wal_level" 2>/dev/null | grep -qx logical || return 1
  done
}

postgres_stop() {
  local data="$ORDERFLOW_STATE/postgres/data"
  if [ -f "$data/postmaster.pid" ]; then
    postgres_as_owner "$(postgres_bin)/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -f "$ORDERFLOW_STATE/postgres/pid"
}
