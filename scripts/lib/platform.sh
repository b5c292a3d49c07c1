# The platform processes (five services, the stream workers, the analytics sink, the reports) as
# background processes of the `orderflow` binary: pid files and logs in $ORDERFLOW_STATE/platform.
# Used by scripts/demo and scripts/bench. Sourced after common.sh, never run.
#
#   platform_build [PROFILE]  build the orderflow binary with a Cargo profile (default release, what
#                        the demo and the bench run; the tests keep the dev profile); sets
#                        PLATFORM_BIN and exports ORDERFLOW_BIN (scripts/setup-connectors uses it)
#   platform_start BIN   start what is not running yet (by pid file), wait until each is ready;
#                        PLATFORM_STARTED lists the names this call started
#   platform_stop [NAME...]   stop the named processes (default: every one with a pid file)

PLATFORM_DIR="$ORDERFLOW_STATE/platform"

# name, health URL, command arguments
PLATFORM_PROCESSES=(
  "orders|http://$ORDERFLOW_ORDERS_HTTP/health/ready|serve orders"
  "inventory|http://$ORDERFLOW_INVENTORY_HTTP/health/ready|serve inventory"
  "payments|http://$ORDERFLOW_PAYMENTS_HTTP/health/ready|serve payments"
  "shipping|http://$ORDERFLOW_SHIPPING_HTTP/health/ready|serve shipping"
  "customers|http://$ORDERFLOW_CUSTOMERS_HTTP/health/ready|serve customers"
  "worker|http://$ORDERFLOW_WORKERS_HTTP/health/ready|worker"
  "sink|http://$ORDERFLOW_SINK_HTTP/health/ready|sink"
  "reports|http://$ORDERFLOW_REPORTS_HTTP/health/ready|reports"
)
PLATFORM_STARTED=()

platform_build() {
  local profile="${1:-release}" dir started=$SECONDS
  dir="$profile"
  [ "$profile" = dev ] && dir=debug
  echo "building orderflow ($profile profile) ..."
  cargo build --locked --profile "$profile" --bin orderflow || return 1
  echo "built in $((SECONDS - started)) s"
  PLATFORM_BIN="${CARGO_TARGET_DIR:-$ORDERFLOW_ROOT/target}/$dir/orderflow"
  export ORDERFLOW_BIN="$PLATFORM_BIN"
}

platform_stop() {
  local entry name pid
  local names=("$@")
  if [ ${#names[@]} -eq 0 ]; then
    for entry in "${PLATFORM_PROCESSES[@]}"; do names+=("${entry%%|*}"); done
  fi
  for name in "${names[@]}"; do
    [ -f "$PLATFORM_DIR/$name.pid" ] || continue
    pid="$(cat "$PLATFORM_DIR/$name.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PLATFORM_DIR/$name.pid"
  done
  echo "platform processes stopped (the stack is still up: scripts/stack down stops it)"
}

platform_start() {
  local bin="$1" entry name health args ok
  mkdir -p "$PLATFORM_DIR"
  PLATFORM_STARTED=()
  for entry in "${PLATFORM_PROCESSES[@]}"; do
    IFS='|' read -r name health args <<<"$entry"
    if [ -f "$PLATFORM_DIR/$name.pid" ] && kill -0 "$(cat "$PLATFORM_DIR/$name.pid")" 2>/dev/null; then
      continue
    fi
    # shellcheck disable=SC2086 # the arguments are words
    NO_COLOR=1 setsid "$bin" $args >>"$PLATFORM_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$PLATFORM_DIR/$name.pid"
    PLATFORM_STARTED+=("$name")
  done
  for entry in "${PLATFORM_PROCESSES[@]}"; do
    IFS='|' read -r name health args <<<"$entry"
    ok=0
    for _ in $(seq 1 240); do
      if http_ok "$health"; then
        ok=1
        break
      fi
      if ! kill -0 "$(cat "$PLATFORM_DIR/$name.pid")" 2>/dev/null; then
        break
      fi
      sleep 0.5
    done
    if [ "$ok" != 1 ]; then
      echo "orderflow $args did not become ready; last lines of $PLATFORM_DIR/$name.log:" >&2
      tail -n 30 "$PLATFORM_DIR/$name.log" >&2
      platform_stop
      return 1
    fi
    printf '%-10s ready  %s\n' "$name" "${health%/health/ready}"
  done
}
