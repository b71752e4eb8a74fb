# Sourced by demo.sh and test.sh: points KAFKA_BOOTSTRAP_SERVERS at a cluster.
#
#   use_cluster   if KAFKA_BOOTSTRAP_SERVERS is set, use it and start nothing;
#                 else start the local broker (scripts/broker.sh) and stop it
#                 on exit, unless it was already running before.
#
# Sets local_broker=yes when the cluster is the local broker, else empty.
# Stops the broker use_cluster started; scripts with their own EXIT trap call
# it from there (cluster_broker is empty when nothing was started).
cluster_broker=""
cluster_exit() {
  [[ -n "$cluster_broker" ]] || return 0
  echo; echo '==> stopping the local broker'; "$cluster_broker" stop
}

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
    cluster_broker="$here/broker.sh"
    trap cluster_exit EXIT
  fi
  KAFKA_BOOTSTRAP_SERVERS=$("$here/broker.sh" start)
  export KAFKA_BOOTSTRAP_SERVERS
}
