#!/usr/bin/env bash
# `make demo`: install what is missing, start the local broker (unless
# KAFKA_BOOTSTRAP_SERVERS is set), apply topics.yaml, then run the escrow
# saga with the participant simulator on generated bookings across every
# scenario, print the summary (outcomes per scenario, DLQ, throughput,
# end-to-end latency, final consumer lag), and stop everything it started.
#
#   SAGASTREAM_DEMO_BOOKINGS   bookings to run (default 10000)
#   SAGASTREAM_DEMO_PROFILE    cargo profile of the binaries (default release)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n==> %s\n' "$*"; }
# shellcheck source=cluster.sh
source scripts/cluster.sh

bookings=${SAGASTREAM_DEMO_BOOKINGS:-10000}
profile=${SAGASTREAM_DEMO_PROFILE:-release}

# topics.yaml says 3 (production); one local broker needs 1. For a small
# external cluster set SAGASTREAM_REPLICATION_FACTOR.
rf_args=()
[[ -n "${SAGASTREAM_REPLICATION_FACTOR:-}" ]] && rf_args=(--replication-factor "$SAGASTREAM_REPLICATION_FACTOR")
step "cluster"
use_cluster
[[ -n "$local_broker" ]] && rf_args=(--replication-factor "${SAGASTREAM_REPLICATION_FACTOR:-1}")

# Stop our processes first, then the broker if use_cluster started it.
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  cluster_exit
}
trap stop_all EXIT

step "build ($profile): sagactl, sagastream-escrow-saga, sagastream-sim"
cargo build --quiet --locked --profile "$profile" -p sagactl -p sagastream-escrow-saga -p sagastream-sim
dir="${CARGO_TARGET_DIR:-$root/target}/$([[ $profile == dev ]] && echo debug || echo "$profile")"

step "validate and apply topics.yaml to $KAFKA_BOOTSTRAP_SERVERS"
"$dir/sagactl" topics validate
"$dir/sagactl" topics apply "${rf_args[@]}"

step "contract check: publish one event of every type and read each back"
"$dir/sagactl" events roundtrip

logs="$root/.local/demo"
mkdir -p "$logs"
metrics_port=${SAGASTREAM_DEMO_METRICS_PORT:-9464}
step "start the escrow saga (metrics on :$metrics_port) and the participant simulator; logs in .local/demo/"
# Short timers so the timeout and auto-confirm scenarios finish within the demo.
SAGASTREAM_INSTANCE_ID=demo-0 "$dir/sagastream-escrow-saga" \
  --metrics-addr "127.0.0.1:$metrics_port" --hold-timeout 20s --auto-confirm-after 3s \
  -X consumer.fetch.wait.max.ms=20 > "$logs/escrow-saga.log" 2>&1 &
pids+=($!)
"$dir/sagastream-sim" serve --latency 10ms > "$logs/simulator.log" 2>&1 &
pids+=($!)

ready() {
  local deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    if { exec 3<>"/dev/tcp/127.0.0.1/$metrics_port"; } 2>/dev/null; then
      printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3
      if head -n 1 <&3 | grep -q ' 200 '; then exec 3>&-; return 0; fi
      exec 3>&-
    fi
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$logs/escrow-saga.log"; echo "the escrow saga exited" >&2; return 1; }
    sleep 0.2
  done
  echo "the escrow saga is not ready after 90 s; log: $logs/escrow-saga.log" >&2
  return 1
}
ready

step "run $bookings bookings across every scenario, then check each outcome"
status=0
"$dir/sagastream-sim" load -n "$bookings" --max-in-flight 1000 --settle-timeout 120s \
  --saga-metrics "http://127.0.0.1:$metrics_port/metrics" --report "$logs/report.json" || status=$?

step "summary"
echo "report: $logs/report.json; escrow saga log: $logs/escrow-saga.log"
if ((status != 0)); then echo "demo: the outcome check FAILED" >&2; exit "$status"; fi
echo "demo finished"
