# The passwords and secret keys of stack.env must never be written to a log. check_no_secrets scans
# files for every *_PASSWORD and *_SECRET_KEY value of the environment (stack.env is loaded by
# common.sh) and fails naming the key and the file, never the value. A value that is also a user
# name (the development owner's password is "orderflow", which every role name contains) proves
# nothing and is skipped, with a note. Sourced after common.sh, never run.

check_no_secrets() {
  local key value users found=0 file
  users=" $(env | grep -E '^ORDERFLOW_[A-Z0-9_]*_(USER|ACCESS_KEY)=' | cut -d= -f2- | tr '\n' ' ') "
  while IFS='=' read -r key value; do
    [ -n "$value" ] || continue
    if [[ "$users" == *" $value "* ]]; then
      echo "secrets: $key equals a user name; not checked (give it a value of its own to check it)"
      continue
    fi
    for file in "$@"; do
      [ -f "$file" ] || continue
      if grep -qF -- "$value" "$file"; then
        echo "secrets: the value of $key is in $file" >&2
        found=1
      fi
    done
  done < <(env | grep -E '^ORDERFLOW_[A-Z0-9_]*(_PASSWORD|_SECRET_KEY)=' | sort)
  [ "$found" -eq 0 ] || return 1
  echo "secrets: no password or secret key of stack.env in $# log file(s)"
}

# Every log under the state directory: the stack's, the platform processes', the fuzzer's.
state_logs() {
  find "$ORDERFLOW_STATE" -type f \( -name '*.log' -o -name log -o -name '*.log.*' \) -not -path '*/data/*' 2>/dev/null
}
