# Apache Kafka in KRaft mode: one process that is both broker and controller, listening on 127.0.0.1 only,
# assembled from Maven Central (kafka-pom.xml) into $ORDERFLOW_CACHE/kafka-<version>/libs. Kafka Connect
# (connect.sh) runs from the same libs. Topics are never created automatically: the project creates its own.

KAFKA_VERSION=4.3.1

kafka_home() { echo "$ORDERFLOW_CACHE/kafka-$KAFKA_VERSION"; }
kafka_libs() { echo "$(kafka_home)/libs"; }
kafka_port() { echo "${ORDERFLOW_KAFKA_BOOTSTRAP##*:}"; }

# What a complete libs/ directory was built from: the version and the pom. A change to either rebuilds it.
kafka_libs_stamp() {
  echo "kafka $KAFKA_VERSION $(sha256sum "$ORDERFLOW_ROOT/scripts/stack.d/kafka-pom.xml" | cut -d' ' -f1)"
}

kafka_install() {
  local home libs tmp stamp
  home="$(kafka_home)"
  libs="$home/libs"
  stamp="$(kafka_libs_stamp)"
  [ -f "$libs/.complete" ] && [ "$(cat "$libs/.complete")" = "$stamp" ] && return 0
  log "assembling Kafka $KAFKA_VERSION and Kafka Connect from Maven Central into $libs"
  mkdir -p "$home"
  tmp="$home/libs.tmp.$$"
  rm -rf "$tmp"
  # Maven's output is kept aside and shown only when it fails (with -q it prints bare colour codes otherwise).
  if ! mvn_central -f "$ORDERFLOW_ROOT/scripts/stack.d/kafka-pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1 ||
    [ ! -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || [ ! -f "$tmp/connect-runtime-$KAFKA_VERSION.jar" ]; then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    die "could not assemble Kafka $KAFKA_VERSION from Maven Central"
  fi
  rm -f "$tmp.log"
  echo "$stamp" >"$tmp/.complete"
  rm -rf "$libs"
  mv "$tmp" "$libs"
}

# Run a Java class from Kafka's libs with Java 17, e.g.
#   kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$ORDERFLOW_KAFKA_BOOTSTRAP" --list
kafka_java() {
  "$(java17_home)/bin/java" -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ORDERFLOW_ROOT/scripts/stack.d/kafka-log4j2.properties" \
    -cp "$(kafka_libs)/*" "$@"
}

kafka_address() {
  echo "$ORDERFLOW_KAFKA_BOOTSTRAP (KRaft broker+controller, controller 127.0.0.1:$ORDERFLOW_KAFKA_CONTROLLER_PORT)"
}

kafka_write_config() {
  local dir="$1"
  cat >"$dir/server.properties" <<PROPS
# Written by scripts/stack.d/kafka.sh on every start; edit that file, not this one.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$ORDERFLOW_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$(kafka_port),CONTROLLER://127.0.0.1:$ORDERFLOW_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_port)
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data

# one node: every internal topic has one replica
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=1

# the project creates its topics explicitly (Connect creates its own and Debezium's through the admin API)
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=168
PROPS
}

kafka_start() {
  local dir cluster_id
  dir="$(component_dir kafka)"
  kafka_write_config "$dir"
  if [ ! -f "$dir/data/meta.properties" ]; then
    cluster_id="$(cat "$dir/cluster-id" 2>/dev/null || true)"
    # A Kafka cluster id: 16 random bytes, URL-safe base64 without padding; like Kafka's Uuid.randomUuid(),
    # never one that starts with '-' (it would read as an option).
    while [ "${#cluster_id}" -ne 22 ] || [ "${cluster_id:0:1}" = - ]; do
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    echo "$cluster_id" >"$dir/cluster-id"
    log "formatting Kafka storage in $dir/data (cluster id $cluster_id)"
    kafka_java -Xmx256m kafka.tools.StorageTool format --standalone --ignore-formatted \
      --cluster-id="$cluster_id" --config="$dir/server.properties" >>"$dir/log" 2>&1 ||
      { tail -n 20 "$dir/log" >&2; return 1; }
    echo "$ORDERFLOW_KAFKA_CONTROLLER_PORT" >"$dir/formatted-controller-port"
  elif [ "$(cat "$dir/formatted-controller-port" 2>/dev/null || true)" != "$ORDERFLOW_KAFKA_CONTROLLER_PORT" ]; then
    log "warning: $dir/data was formatted for another controller port; if Kafka does not start, remove $dir"
  fi
  # shellcheck disable=SC2086 # the heap options are a list of words
  start_background kafka "$(java17_home)/bin/java" -server ${ORDERFLOW_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true -Dorderflow.component=kafka \
    -Dlog4j2.configurationFile="$ORDERFLOW_ROOT/scripts/stack.d/kafka-log4j2.properties" \
    -cp "$(kafka_libs)/*" kafka.Kafka "$dir/server.properties"
}

# Healthy when the broker answers a Kafka ApiVersions request (v3) with no error. The broker opens its
# listener for requests only once it has started and caught up with the metadata log. Pure bash: no JVM.
kafka_api_versions_ok() {
  local port="$1" reply
  # size 19 | api_key 18 | api_version 3 | correlation id "OFOF" | client id "of" | no tags |
  # client software name "of" | client software version "1" | no tags
  reply="$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf '\x00\x00\x00\x13\x00\x12\x00\x03OFOF\x00\x02of\x00\x03of\x021\x00' >&3
    timeout 2 head -c 10 <&3 | od -An -v -tx1 | tr -d ' \n'
  )" || return 1
  # size (4 bytes, any) | correlation id "OFOF" | error code 0
  [ "${reply:8}" = "4f464f460000" ]
}

kafka_healthy() {
  kafka_api_versions_ok "$(kafka_port)"
}

kafka_timeout() { echo 120; }
