# Elasticsearch from Maven Central: the integration-test distribution
# (org.elasticsearch.distribution.integ-test-zip:elasticsearch:<v>:zip), unzipped into the cache and run as a
# single node on 127.0.0.1 with security off. Its configuration, data and logs live in
# $ORDERFLOW_STATE/elasticsearch/{config,data,logs}; the configuration is rewritten from this file on every start.
#
# Version: 8.19.x on Java 17. Maven Central has no 9.x integ-test-zip (its newest is 8.19.21).
# The integ-test distribution has only the modules apm, transport-netty4, x-pack-core and x-pack-security:
# no painless scripts, no analysis-common analyzers, no ingest pipelines, no mapper-extras field types,
# no aggregations module (bucket_sort, auto_date_histogram...), no data streams or ILM; core queries, mappings and
# aggregations (terms, date_histogram, sum, avg, cardinality...) work. `GET /` (the rest-root module) is missing
# too: it answers 405, so a client must not probe it; health checks use /_cluster/health.
#
# Elasticsearch refuses to run as root: as root, it runs as the system user $ELASTICSEARCH_USER (created if
# missing), which owns the state directory and must be able to read the cache.

ELASTICSEARCH_VERSION=8.19.21
ELASTICSEARCH_USER="${ORDERFLOW_ELASTICSEARCH_USER:-orderflow}"

elasticsearch_home() { echo "$ORDERFLOW_CACHE/elasticsearch-$ELASTICSEARCH_VERSION"; }

elasticsearch_address() { echo "$ORDERFLOW_ELASTICSEARCH_URL"; }

elasticsearch_http_port() {
  local port="${ORDERFLOW_ELASTICSEARCH_URL##*:}"
  echo "${port%%/*}"
}

elasticsearch_transport_port() { echo "${ORDERFLOW_ELASTICSEARCH_TRANSPORT_PORT:-19300}"; }

elasticsearch_as_root() { [ "$(id -u)" = 0 ]; }

# Give the Elasticsearch user the right to traverse the directories above $1 (only `o+x`, no listing), for a
# cache or state directory below a private home such as /root. Top down, so only what blocks the way changes.
elasticsearch_allow_traverse() {
  local d="" part
  local -a parts
  IFS=/ read -r -a parts <<<"$(dirname "$1")"
  for part in "${parts[@]}"; do
    [ -n "$part" ] || continue
    d="$d/$part"
    if ! runuser -u "$ELASTICSEARCH_USER" -- test -x "$d" 2>/dev/null; then
      log "elasticsearch: chmod o+x $d (so that the user $ELASTICSEARCH_USER can reach $1)"
      chmod o+x "$d"
    fi
  done
}

elasticsearch_install() {
  local home zip tmp
  home="$(elasticsearch_home)"
  if [ ! -x "$home/bin/elasticsearch" ]; then
    log "installing Elasticsearch $ELASTICSEARCH_VERSION into $home"
    zip="$(maven_artifact "org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ELASTICSEARCH_VERSION:zip")"
    tmp="$home.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    unzip -q "$zip" -d "$tmp" || { rm -rf "$tmp"; die "could not unzip $zip"; }
    [ -x "$tmp/elasticsearch-$ELASTICSEARCH_VERSION/bin/elasticsearch" ] ||
      { rm -rf "$tmp"; die "$zip has no elasticsearch-$ELASTICSEARCH_VERSION/bin/elasticsearch"; }
    rm -rf "$home"
    mv "$tmp/elasticsearch-$ELASTICSEARCH_VERSION" "$home"
    rm -rf "$tmp"
  fi
  if elasticsearch_as_root; then
    if ! id -u "$ELASTICSEARCH_USER" >/dev/null 2>&1; then
      log "creating the system user $ELASTICSEARCH_USER to run Elasticsearch (it refuses to run as root)"
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$ELASTICSEARCH_USER" ||
        die "useradd $ELASTICSEARCH_USER failed"
    fi
    if ! runuser -u "$ELASTICSEARCH_USER" -- test -r "$home/lib/elasticsearch-$ELASTICSEARCH_VERSION.jar" 2>/dev/null; then
      elasticsearch_allow_traverse "$home"
    fi
  fi
}

elasticsearch_start() {
  local home dir conf
  local -a as_user=()
  home="$(elasticsearch_home)"
  dir="$(component_dir elasticsearch)"
  conf="$dir/config"
  mkdir -p "$conf/jvm.options.d" "$dir/data" "$dir/logs" "$dir/tmp" || return 1
  # The distribution's config (jvm.options, log4j2.properties...), then ours over it.
  cp -R "$home/config/." "$conf/" || return 1
  cat >"$conf/elasticsearch.yml" <<YML || return 1
# Written by scripts/stack.d/elasticsearch.sh on every start: edit that file, not this one.
cluster.name: orderflow
node.name: orderflow
discovery.type: single-node
network.host: 127.0.0.1
http.port: $(elasticsearch_http_port)
transport.port: $(elasticsearch_transport_port)
path.data: $dir/data
path.logs: $dir/logs
xpack.security.enabled: false
# The disk may be tight: never refuse to allocate shards or turn indices read-only because of it.
cluster.routing.allocation.disk.threshold_enabled: false
# Tests may delete indices by wildcard.
action.destructive_requires_name: false
YML
  # The server's working directory is path.logs, so the distribution's relative gc.log and hs_err files land there.
  cat >"$conf/jvm.options.d/orderflow.options" <<OPTIONS || return 1
-Xms512m
-Xmx1g
OPTIONS
  if elasticsearch_as_root; then
    chown -R "$ELASTICSEARCH_USER" "$dir" || return 1
    elasticsearch_allow_traverse "$dir" || return 1
    as_user=(runuser -u "$ELASTICSEARCH_USER" --)
  fi
  rm -f "$dir/es.pid"
  # start_background's process group holds runuser, the launcher and the server JVM; -p records the server's pid.
  start_background elasticsearch env -C "$dir" "${as_user[@]}" \
    env ES_JAVA_HOME="$(java17_home)" ES_PATH_CONF="$conf" ES_TMPDIR="$dir/tmp" ES_JAVA_OPTS= \
    "$home/bin/elasticsearch" -p "$dir/es.pid"
}

elasticsearch_healthy() {
  curl -fsS --max-time 3 "$ORDERFLOW_ELASTICSEARCH_URL/_cluster/health" 2>/dev/null |
    grep -Eq '"status":"(green|yellow)"'
}

# The process group that start_background records holds (as root) runuser, the launcher JVM and the server JVM.
# Stop the launcher first: on SIGTERM it shuts the server down cleanly and waits for it. Only then the group
# (killing the group at once would let runuser SIGKILL the launcher 2s later and cut the server's shutdown short).
elasticsearch_stop() {
  local dir="$ORDERFLOW_STATE/elasticsearch" server="" launcher="" i
  if [ -f "$dir/es.pid" ]; then
    server="$(cat "$dir/es.pid")"
    # Ours only if its command line names our state directory (the pid may have been reused).
    grep -qa "$dir" "/proc/$server/cmdline" 2>/dev/null || server=""
  fi
  if [ -f "$dir/pid" ]; then
    launcher="$(cat "$dir/pid")"
    # As root, the recorded process is runuser and the launcher its child.
    if [ "$(cat "/proc/$launcher/comm" 2>/dev/null || true)" = runuser ]; then
      launcher="$(pgrep -P "$launcher" 2>/dev/null | head -n 1 || true)"
    fi
    kill -0 "$launcher" 2>/dev/null || launcher=""
  fi
  if [ -n "$launcher" ]; then
    kill -TERM "$launcher" 2>/dev/null || true
  elif [ -n "$server" ]; then
    kill -TERM "$server" 2>/dev/null || true
  fi
  if [ -n "$server" ]; then
    for i in $(seq 1 120); do
      kill -0 "$server" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL "$server" 2>/dev/null || true
  fi
  rm -f "$dir/es.pid"
  stop_background elasticsearch
}

elasticsearch_timeout() { echo 240; }
