# Kafka Connect in distributed mode (one worker) on $ORDERFLOW_CONNECT_URL, run from Kafka's libs (kafka.sh),
# with the Debezium PostgreSQL connector plugin (Maven Central) on its plugin.path; that plugin also holds
# Debezium's outbox EventRouter (io.debezium.transforms.outbox.EventRouter, in debezium-connect-plugins-*.jar).
# Connector configs may use ${env:NAME} (EnvVarConfigProvider): the worker inherits stack.env, e.g.
# ${env:ORDERFLOW_PG_PASSWORD}.
# Needs Kafka: `scripts/stack up kafka connect`.

CONNECT_DEBEZIUM_VERSION=3.6.3.Final

# The directory on plugin.path; it holds debezium-connector-postgres/ with the connector's jars.
connect_plugin_path() { echo "$ORDERFLOW_CACHE/connect-plugins/debezium-$CONNECT_DEBEZIUM_VERSION"; }
connect_hostport() {
  local hp="${ORDERFLOW_CONNECT_URL#*://}"
  echo "${hp%%/*}"
}

connect_install() {
  local dir tmp tarball jar found
  kafka_install
  dir="$(connect_plugin_path)"
  [ -f "$dir/.complete" ] && return 0
  log "installing the Debezium PostgreSQL connector $CONNECT_DEBEZIUM_VERSION into $dir"
  tarball="$(maven_artifact "io.debezium:debezium-connector-postgres:$CONNECT_DEBEZIUM_VERSION:tar.gz:plugin")"
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  tar -xzf "$tarball" -C "$tmp" || { rm -rf "$tmp"; die "could not unpack $tarball"; }
  # The EventRouter was in debezium-core up to 3.5 and is in debezium-connect-plugins since 3.6.
  found=""
  for jar in "$tmp"/debezium-connector-postgres/*.jar; do
    if unzip -l "$jar" 2>/dev/null | grep -q 'io/debezium/transforms/outbox/EventRouter.class'; then
      found="$jar"
      break
    fi
  done
  if [ -z "$found" ]; then
    rm -rf "$tmp"
    die "the Debezium plugin $tarball has no outbox EventRouter (io.debezium.transforms.outbox.EventRouter)"
  fi
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

connect_address() { echo "$ORDERFLOW_CONNECT_URL (Debezium PostgreSQL $CONNECT_DEBEZIUM_VERSION)"; }

connect_write_config() {
  local dir="$1" hostport
  hostport="$(connect_hostport)"
  cat >"$dir/connect-distributed.properties" <<PROPS
# Written by scripts/stack.d/connect.sh on every start; edit that file, not this one.
bootstrap.servers=$ORDERFLOW_KAFKA_BOOTSTRAP
group.id=orderflow-connect
listeners=http://$hostport
rest.advertised.host.name=${hostport%:*}
rest.advertised.port=${hostport##*:}
rest.advertised.listener=http

# defaults only: every connector sets its own converters
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.converters.ByteArrayConverter

# internal topics, one replica each (single-node Kafka); Connect creates them itself
config.storage.topic=orderflow-connect-configs
config.storage.replication.factor=1
offset.storage.topic=orderflow-connect-offsets
offset.storage.replication.factor=1
offset.storage.partitions=5
status.storage.topic=orderflow-connect-status
status.storage.replication.factor=1
status.storage.partitions=1
offset.flush.interval.ms=5000
# connectors may set producer.override.* (the outbox connectors set linger.ms); All is Kafka's
# default since 3.0, written down so that the connectors' overrides do not depend on it
connector.client.config.override.policy=All
# the broker never creates topics by itself: connectors create theirs via topic.creation.default.*
topic.creation.enable=true

plugin.path=$(connect_plugin_path)
# Debezium's jars and Kafka's own plugins carry ServiceLoader manifests: this skips a ~30 s reflection scan.
plugin.discovery=service_load

# \${env:NAME} in connector configs
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
PROPS
}

connect_start() {
  local dir
  dir="$(component_dir connect)"
  if ! kafka_healthy; then
    log "Kafka Connect needs Kafka at $ORDERFLOW_KAFKA_BOOTSTRAP: run scripts/stack up kafka connect"
    return 1
  fi
  connect_write_config "$dir"
  # shellcheck disable=SC2086 # the heap options are a list of words
  start_background connect "$(java17_home)/bin/java" -server ${ORDERFLOW_CONNECT_HEAP_OPTS:--Xms256m -Xmx1g} \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true -Dorderflow.component=connect \
    -Dlog4j2.configurationFile="$ORDERFLOW_ROOT/scripts/stack.d/kafka-log4j2.properties" \
    -cp "$(kafka_libs)/*" org.apache.kafka.connect.cli.ConnectDistributed "$dir/connect-distributed.properties"
}

# Healthy when the worker's REST API lists the Debezium PostgreSQL connector and the outbox EventRouter.
connect_healthy() {
  local plugins
  plugins="$(curl -fsS --max-time 3 "$ORDERFLOW_CONNECT_URL/connector-plugins?connectorsOnly=false" 2>/dev/null)" || return 1
  [[ "$plugins" == *'"io.debezium.connector.postgresql.PostgresConnector"'* ]] &&
    [[ "$plugins" == *'"io.debezium.transforms.outbox.EventRouter"'* ]]
}

# Scanning the plugins and joining the worker group takes a while on two cores.
connect_timeout() { echo 240; }
