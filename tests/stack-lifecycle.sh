#!/usr/bin/env bash
# The stack script's promises, checked against the running stack: `status` is green when all is up,
# a second `up` is harmless and fast, a stopped server turns `status` red and makes its smoke test fail
# with a message naming it (never a skip), and `up` brings it back.
# The S3 server is the one stopped: it restarts in about a second.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
passed=0
failed=0
check() {
  local what="$1"
  shift
  if "$@"; then
    echo "ok      $what"
    passed=$((passed + 1))
  else
    echo "FAILED  $what"
    failed=$((failed + 1))
  fi
}

status_green() { scripts/stack status >/dev/null; }
second_up_is_fast() {
  local start=$SECONDS
  scripts/stack up >/dev/null || return 1
  echo "        (second up took $((SECONDS - start))s)"
  [ $((SECONDS - start)) -lt 30 ]
}
status_red_naming_s3() {
  local out
  if out="$(scripts/stack status)"; then return 1; fi
  grep -qE '^s3 +DOWN' <<<"$out"
}
smoke_fails_naming_s3() {
  local out
  if out="$(cargo test --locked --test smoke s3:: 2>&1)"; then return 1; fi
  grep -q "the S3 server is not reachable at" <<<"$out" && grep -q "scripts/stack up s3" <<<"$out"
}
no_s3_process_left() { ! pgrep -f "$PWD/.stack/s3" >/dev/null; }

check "status is green with every server up" status_green
check "a second up is harmless and fast" second_up_is_fast
scripts/stack down s3 >/dev/null
check "after down s3, no process of it is left" no_s3_process_left
check "status exits non-zero and names s3 when it is down" status_red_naming_s3
check "the S3 smoke test fails naming the S3 server when it is down" smoke_fails_naming_s3
scripts/stack up s3 >/dev/null
check "up brings s3 back and status is green again" status_green

echo "stack-lifecycle: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
