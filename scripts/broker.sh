#!/usr/bin/env bash
# The local broker: Apache Kafka (KRaft, combined broker and controller, the
# release pinned in scripts/kafka/pom.xml), fetched from Maven Central into
# .local/ once, bound to 127.0.0.1. See docs/broker.md.
#
#   scripts/broker.sh install               fetch the jars if absent
#   scripts/broker.sh start [--brokers 3]   format, start, wait until every node serves
#                                           metadata; prints the bootstrap address
#   scripts/broker.sh stop                  SIGTERM, SIGKILL after 30 s; no process or port left
#   scripts/broker.sh status                exit 0 if it is running
#   scripts/broker.sh pids                  node id and pid of each running node
#   scripts/broker.sh kill NODE             kill -9 one node (failover tests)
#
# SAGASTREAM_BROKER_PORT (default 19092): the first node's client port; node
# n listens on port+n-1, its controller on port+n-1+10000. One state folder
# per first port (.local/broker-<port>/), so clusters on two ports never mix.
# The logs stay there; the partitions' data goes to RAM (/dev/shm) unless
# SAGASTREAM_BROKER_DATA=disk (or /dev/shm is missing): on a busy disk an
# fsync of the KRaft metadata log stalled both surviving controllers of a
# three-node test cluster for 20-35 s. It is removed on stop.
# SAGASTREAM_BROKER=tansu starts the old deviant broker instead (appendix of
# docs/broker.md). With KAFKA_BOOTSTRAP_SERVERS set, nothing is started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${SAGASTREAM_BROKER_PORT:-19092}
state="$root/.local/broker-$port"
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/scripts/kafka/pom.xml")
lib="$root/.local/kafka-$kafka_version/lib"
heap=${SAGASTREAM_BROKER_HEAP:-1g}
start_timeout=${SAGASTREAM_BROKER_START_TIMEOUT:-120}
if [[ "${SAGASTREAM_BROKER_DATA:-ram}" == ram && -d /dev/shm && -w /dev/shm ]]; then
  data_root="/dev/shm/sagastream-$(id -u)-broker-$port"
else
  [[ "${SAGASTREAM_BROKER_DATA:-ram}" =~ ^(ram|disk)$ ]] || { echo "broker: SAGASTREAM_BROKER_DATA must be ram or disk (got ${SAGASTREAM_BROKER_DATA})" >&2; exit 1; }
  data_root="$state/data"
fi

die() { echo "broker: $*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
nodes() { cat "$state/nodes" 2>/dev/null || echo 0; }
bootstrap_of() {
  local n=$1 i out=""
  for ((i = 0; i < n; i++)); do out+="${out:+,}127.0.0.1:$((port + i))"; done
  echo "$out"
}
running() {
  local n i
  n=$(nodes)
  ((n > 0)) || return 1
  for ((i = 1; i <= n; i++)); do alive "$state/node-$i/pid" || return 1; done
}

install() {
  [[ -n "$kafka_version" ]] || die "cannot read <kafka.version> from scripts/kafka/pom.xml"
  if [[ -f "$lib/kafka_2.13-$kafka_version.jar" && -f "$lib/.complete" ]]; then return; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed once to fetch Apache Kafka from Maven Central; install it (apt-get install maven) or point KAFKA_BOOTSTRAP_SERVERS at a cluster"
  echo "broker: fetching Apache Kafka $kafka_version (org.apache.kafka:kafka_2.13, kafka-tools, log4j-slf4j-impl and their dependencies, about 45 MB) from Maven Central into .local/kafka-$kafka_version (once)" >&2
  rm -rf "$lib"
  mkdir -p "$lib"
  mvn -q -B -f "$root/scripts/kafka/pom.xml" -Dmaven.repo.local="$root/.local/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib" >&2 \
    || die "fetching Apache Kafka $kafka_version from Maven Central failed (output above); check the network, or set KAFKA_BOOTSTRAP_SERVERS"
  touch "$lib/.complete"
}

java_check() {
  command -v java >/dev/null || die "Java 17+ is needed to run Apache Kafka $kafka_version; install it (apt-get install openjdk-17-jre-headless) or set KAFKA_BOOTSTRAP_SERVERS"
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')
  [[ "${v%%.*}" -ge 17 ]] 2>/dev/null || die "Apache Kafka $kafka_version needs Java 17 or newer; 'java' is version $v (set PATH or JAVA_HOME)"
}

# write_config N I: server.properties and log4j2.properties of node I of N.
write_config() {
  local n=$1 i=$2 dir="$state/node-$2" data="$data_root/node-$2" voters="" j rf=1 isr=1 session=30000 heartbeat=2000
  for ((j = 1; j <= n; j++)); do voters+="${voters:+,}$j@127.0.0.1:$((port + j - 1 + 10000))"; done
  # A cluster fences a dead node fast so its partitions move; a single node
  # has nowhere to move them, and fencing itself when the JVM stalls on a
  # busy machine takes every partition offline (docs/broker.md).
  if ((n >= 3)); then rf=3; isr=2; session=4000; heartbeat=1000; fi
  mkdir -p "$dir" "$data"
  cat > "$dir/server.properties" <<EOF
# Written by scripts/broker.sh; every setting is explained in docs/broker.md.
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$((port + i - 1)),CONTROLLER://127.0.0.1:$((port + i - 1 + 10000))
advertised.listeners=PLAINTEXT://127.0.0.1:$((port + i - 1))
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
auto.create.topics.enable=false
num.partitions=6
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=12
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
log.cleaner.backoff.ms=1000
broker.session.timeout.ms=$session
broker.heartbeat.interval.ms=$heartbeat
unclean.leader.election.enable=false
EOF
  cat > "$dir/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = info
EOF
}

# metadata_ready N: every node answers a Metadata request and the cluster lists N brokers.
metadata_ready() {
  local python
  python=$("$root/scripts/pyenv.sh")
  "$python" - "$(bootstrap_of "$1")" "$1" <<'EOF' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
servers, want = sys.argv[1], int(sys.argv[2])
for server in servers.split(","):
    md = AdminClient({"bootstrap.servers": server, "log_level": 0}).list_topics(timeout=3)
    if len(md.brokers) != want or md.controller_id < 0:
        sys.exit(1)
EOF
}

start() {
  local n=1
  while (($#)); do
    case "$1" in
      --brokers) n=${2:?--brokers takes a number}; shift 2 ;;
      *) die "unknown option $1 (start takes --brokers N)" ;;
    esac
  done
  [[ "$n" =~ ^[0-9]+$ ]] && ((n == 1 || n >= 3)) || die "--brokers must be 1 or 3 or more (got $n): replication factor 3 needs 3 nodes"
  if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    echo "broker: KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is set; using that cluster, starting nothing" >&2
    echo "$KAFKA_BOOTSTRAP_SERVERS"
    return
  fi
  if [[ "${SAGASTREAM_BROKER:-kafka}" == tansu ]]; then exec "$root/scripts/tansu.sh" start; fi
  [[ "${SAGASTREAM_BROKER:-kafka}" == kafka ]] || die "SAGASTREAM_BROKER=${SAGASTREAM_BROKER} is not a broker this script knows (kafka, the default, or tansu)"
  if running; then
    (($(nodes) == n)) || die "a $(nodes)-node cluster is already running on port $port; stop it first (scripts/broker.sh stop)"
    bootstrap_of "$n"
    return
  fi
  local i
  for ((i = 0; i < n; i++)); do
    for p in $((port + i)) $((port + i + 10000)); do
      port_open "$p" && die "port $p is taken by another process; stop it or set SAGASTREAM_BROKER_PORT"
    done
  done
  install
  java_check
  # A fresh cluster every start: tests and the demo apply topics.yaml first,
  # and an old log would only slow the start and skew benchmarks.
  rm -rf "$state" "$data_root"
  mkdir -p "$state"
  echo "$n" > "$state/nodes"
  local cluster_id
  cluster_id=$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  for ((i = 1; i <= n; i++)); do
    write_config "$n" "$i"
    java -cp "$lib/*" -Dlog4j2.configurationFile="$state/node-$i/log4j2.properties" kafka.tools.StorageTool \
      format -t "$cluster_id" -c "$state/node-$i/server.properties" > "$state/node-$i/format.log" 2>&1 \
      || { cat "$state/node-$i/format.log" >&2; die "formatting node $i failed (output above)"; }
  done
  local heap_n=$heap
  ((n > 1)) && heap_n=${SAGASTREAM_BROKER_HEAP:-512m}
  for ((i = 1; i <= n; i++)); do
    local dir="$state/node-$i"
    # setsid: the broker must not die with the terminal or the make target that started it.
    setsid java -Xms256m -Xmx"$heap_n" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir" \
      -cp "$lib/*" kafka.Kafka "$dir/server.properties" > "$dir/stdout.log" 2>&1 < /dev/null &
    echo $! > "$dir/pid"
  done
  local deadline=$((SECONDS + start_timeout))
  until metadata_ready "$n"; do
    for ((i = 1; i <= n; i++)); do
      if ! alive "$state/node-$i/pid"; then
        tail -n 30 "$state/node-$i/server.log" "$state/node-$i/stdout.log" >&2 || true
        stop >/dev/null 2>&1 || true
        die "Apache Kafka node $i exited during start-up (log tail above; logs in $state/node-$i/)"
      fi
    done
    if ((SECONDS >= deadline)); then
      tail -n 30 "$state/node-1/server.log" >&2 || true
      stop >/dev/null 2>&1 || true
      die "Apache Kafka did not serve metadata on $(bootstrap_of "$n") within ${start_timeout} s (log tail above; logs in $state/)"
    fi
    sleep 0.5
  done
  echo "broker: Apache Kafka $kafka_version running on $(bootstrap_of "$n") ($n node(s), KRaft, logs in $state/)" >&2
  bootstrap_of "$n"
}

# stop_node PIDFILE NAME: SIGTERM, then SIGKILL after 30 s.
stop_node() {
  local pidfile=$1 name=$2 pid
  alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "broker: $name (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
  done
  rm -f "$pidfile"
  echo "broker: stopped $name (pid $pid)" >&2
}

stop() {
  if [[ -f "$root/.local/tansu-$port/pid" ]]; then "$root/scripts/tansu.sh" stop; fi
  local n i
  n=$(nodes)
  if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]] && ((n == 0)); then
    echo "broker: using KAFKA_BOOTSTRAP_SERVERS; nothing to stop" >&2
    return
  fi
  ((n > 0)) || { echo "broker: not running" >&2; return; }
  # The others first, the first node last: a controlled shutdown needs a quorum.
  for ((i = n; i >= 1; i--)); do stop_node "$state/node-$i/pid" "node $i" & done
  wait
  for ((i = 0; i < n; i++)); do
    local deadline=$((SECONDS + 10))
    while port_open $((port + i)) && ((SECONDS < deadline)); do sleep 0.1; done
    port_open $((port + i)) && die "port $((port + i)) still answers after the broker stopped"
  done
  rm -f "$state/nodes"
  # The data is of no use once stopped (every start formats afresh), and in RAM it costs memory.
  rm -rf "$data_root"
}

status() {
  if [[ -f "$root/.local/tansu-$port/pid" ]]; then exec "$root/scripts/tansu.sh" status; fi
  if running; then
    echo "running: Apache Kafka $kafka_version, $(nodes) node(s) on $(bootstrap_of "$(nodes)")"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  install) install; echo "Apache Kafka $kafka_version in $lib" ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  pids) for ((i = 1; i <= $(nodes); i++)); do alive "$state/node-$i/pid" && echo "$i $(cat "$state/node-$i/pid")"; done; true ;;
  kill) [[ -f "$state/node-${2:?kill takes a node id}/pid" ]] || die "no node $2 on port $port"; kill -KILL "$(cat "$state/node-$2/pid")" ;;
  *) echo "usage: $0 install|start [--brokers N]|stop|status|pids|kill NODE" >&2; exit 2 ;;
esac
