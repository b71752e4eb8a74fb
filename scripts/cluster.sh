# Sourced by demo.sh and test.sh: points KAFKA_BOOTSTRAP_SERVERS at a cluster.
#
#   use_cluster   if KAFKA_BOOTSTRAP_SERVERS is set, use it and start nothing;
#                 else start the local broker (scripts/broker.sh) and stop it
#                 on exit, unless it was already running before.
#
# Sets local_broker=yes when the cluster is the local broker, else empty.
use_cluster() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  local_broker=""
  if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    return
  fi
  local_broker=yes
  if "$here/broker.sh" status >/dev/null 2>&1; then
    echo "reusing the broker that is already running (left running afterwards)"
  else
    # shellcheck disable=SC2064 # expand $here now: the trap runs after this function returns
    trap "echo; echo '==> stopping the local broker'; '$here/broker.sh' stop" EXIT
  fi
  KAFKA_BOOTSTRAP_SERVERS=$("$here/broker.sh" start)
  export KAFKA_BOOTSTRAP_SERVERS
}
