# Shared shell helpers for the scripts under scripts/: where things live, how the env file is read,
# how a component is started in the background and stopped again. Sourced, never run.

ORDERFLOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ORDERFLOW_ROOT

# Read stack.env without overriding what the caller already exported.
load_stack_env() {
  local line key value
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | \#*) continue ;; esac
    key="${line%%=*}"
    value="${line#*=}"
    value="${value%\"}"
    value="${value#\"}"
    if [ -z "${!key+x}" ]; then
      export "$key=$value"
    fi
  done <"$ORDERFLOW_ROOT/stack.env"
}
load_stack_env

# Downloads and installed software: outside the repository, shared by every clone.
ORDERFLOW_CACHE="${ORDERFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orderflow}"
# Data directories, logs and pid files of the running stack: one per clone, ignored by git.
ORDERFLOW_STATE="${ORDERFLOW_STATE:-$ORDERFLOW_ROOT/.stack}"
export ORDERFLOW_CACHE ORDERFLOW_STATE
mkdir -p "$ORDERFLOW_CACHE" "$ORDERFLOW_STATE"

log() { printf '%s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# The Java 17 and Java 21+ runtimes. Kafka, Connect and Apicurio 3.1 run on 17; Elasticsearch 9 needs 21+.
java17_home() {
  local d
  for d in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/temurin-17-jdk-amd64; do
    [ -x "$d/bin/java" ] && { echo "$d"; return 0; }
  done
  [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && { echo "$JAVA_HOME"; return 0; }
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

# Maven, pointed at Maven Central only (scripts/maven-settings.xml), with its repository in the cache.
mvn_central() {
  mvn -q -B -s "$ORDERFLOW_ROOT/scripts/maven-settings.xml" -Dmaven.repo.local="$ORDERFLOW_CACHE/m2" "$@"
}

# Fetch one artifact from Maven Central into the cache and print its path.
# usage: maven_artifact group:artifact:version[:packaging[:classifier]]
maven_artifact() {
  local coords="$1" g a v p c file
  IFS=: read -r g a v p c <<<"$coords"
  p="${p:-jar}"
  file="$ORDERFLOW_CACHE/m2/${g//.//}/$a/$v/$a-$v${c:+-$c}.$p"
  if [ ! -f "$file" ]; then
    local out
    out="$(mktemp)"
    if ! mvn_central dependency:get -Dtransitive=false -Dartifact="$g:$a:$v:$p${c:+:$c}" >"$out" 2>&1; then
      cat "$out" >&2
      rm -f "$out"
      die "could not download $coords from Maven Central"
    fi
    rm -f "$out"
  fi
  echo "$file"
}

# Component state: $ORDERFLOW_STATE/<component>/{pid,log,data}
component_dir() {
  mkdir -p "$ORDERFLOW_STATE/$1"
  echo "$ORDERFLOW_STATE/$1"
}
component_log() { echo "$ORDERFLOW_STATE/$1/log"; }

# Is the process recorded for a component alive?
component_running() {
  local pidfile="$ORDERFLOW_STATE/$1/pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# Start a command in the background as its own process group; remember its pid; log to the component log.
# usage: start_background <component> <command> [args...]
start_background() {
  local name="$1" dir
  shift
  dir="$(component_dir "$name")"
  setsid "$@" >>"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
}

# Stop the process group recorded for a component: TERM, wait, then KILL.
stop_background() {
  local name="$1" pidfile="$ORDERFLOW_STATE/$1/pid" pid i
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# Wait until a check succeeds, the component's process dies, or the timeout passes.
# usage: wait_healthy <component> <seconds> <check command...>
wait_healthy() {
  local name="$1" seconds="$2" i
  shift 2
  for i in $(seq 1 $((seconds * 2))); do
    "$@" >/dev/null 2>&1 && return 0
    if [ -f "$ORDERFLOW_STATE/$name/pid" ] && ! component_running "$name"; then
      return 1
    fi
    sleep 0.5
  done
  return 1
}

# Succeeds when an HTTP GET answers 2xx.
http_ok() { curl -fs --max-time 3 -o /dev/null "$1"; }
# Succeeds when something listens on 127.0.0.1:<port>.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# What building the Rust workspace needs from Debian beyond the toolchain: librdkafka is compiled from
# source by rdkafka's cmake-build and picks up libcurl when cmake finds it, so its headers must be there.
ensure_build_deps() {
  local missing=() p
  for p in cmake pkg-config libcurl4-openssl-dev libssl-dev zlib1g-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing build dependencies from Debian: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
}

# identity_token CLIENT SECRET: an access token of a confidential client of the orderflow realm
# (client credentials grant), on stdout; fails naming the identity provider when it does not answer.
identity_token() {
  local answer
  answer="$(curl -fsS --max-time 20 -d grant_type=client_credentials -d "client_id=$1" \
    --data-urlencode "client_secret=$2" "$ORDERFLOW_AUTH_ISSUER/protocol/openid-connect/token")" ||
    die "no token for $1 from the identity provider at $ORDERFLOW_AUTH_ISSUER: is it up? \`scripts/stack up identity\`"
  jq -er .access_token <<<"$answer" || die "the identity provider's answer for $1 has no access_token"
}
