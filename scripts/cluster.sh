# Sourced by demo.sh and test.sh: points KAFKA_BOOTSTRAP_SERVERS at a cluster.
#
#   use_cluster   if KAFKA_BOOTSTRAP_SERVERS is set, use it and start nothing;
#                 else start the local broker (scripts/broker.sh) and stop it
#                 on exit, unless it was already running before.
#
#   use_registry  the same for the Schema Registry (scripts/registry.sh,
#                 SCHEMA_REGISTRY_URL).
#
# Sets local_broker=yes when the cluster is the local broker, else empty.
# Stops the broker use_cluster started; scripts with their own EXIT trap call
# it from there (cluster_broker is empty when nothing was started).
cluster_broker=""
cluster_registry=""
cluster_exit() {
  if [[ -n "$cluster_registry" ]]; then
    echo; echo '==> stopping the local schema registry'; "$cluster_registry" stop || true
  fi
  [[ -n "$cluster_broker" ]] || return 0
  echo; echo '==> stopping the local broker'; "$cluster_broker" stop
}

# use_registry: points SCHEMA_REGISTRY_URL at a registry: the given one, or
# the local Apicurio (scripts/registry.sh), stopped on exit unless it was
# already running. Call after use_cluster (it shares the EXIT trap).
use_registry() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  if [[ -n "${SCHEMA_REGISTRY_URL:-}" ]]; then
    return
  fi
  if "$here/registry.sh" status >/dev/null 2>&1; then
    echo "reusing the schema registry that is already running (left running afterwards)"
  else
    cluster_registry="$here/registry.sh"
    trap cluster_exit EXIT
  fi
  SCHEMA_REGISTRY_URL=$("$here/registry.sh" start)
  export SCHEMA_REGISTRY_URL
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
