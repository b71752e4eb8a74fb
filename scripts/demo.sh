#!/usr/bin/env bash
# `make demo`: install what is missing, start the local broker (unless
# KAFKA_BOOTSTRAP_SERVERS is set), apply topics.yaml, then run the escrow
# saga, the order saga, the inventory projector, the tracking and runner
# presence processors and the ingest processor with the participant
# simulator on generated bookings and orders across every scenario (happy
# bookings driven as trips by their runners; a share of orders and disputes
# in First Viscount's and Go4u's own envelopes, through ingest), print the
# summary (outcomes per scenario, money, stock, alerts, DLQ, trips and their
# distances, presence, ingest counts per platform, throughput, end-to-end
# latency, final consumer lag), and stop everything it started.
# booking.events and payment.events are written in Avro through a Schema
# Registry (SCHEMA_REGISTRY_URL, else the local Apicurio, started and
# stopped like the broker); every other topic stays JSON.
#
#   SAGASTREAM_DEMO_BOOKINGS   bookings to run (default 10000)
#   SAGASTREAM_DEMO_ORDERS     orders to run alongside (default 5000)
#   SAGASTREAM_DEMO_PROFILE    cargo profile of the binaries (default release)
#   SAGASTREAM_DEMO_AVRO       topics written in Avro (default "booking.events
#                              payment.events"; empty: JSON only, no registry)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n==> %s\n' "$*"; }
# shellcheck source=cluster.sh
source scripts/cluster.sh

bookings=${SAGASTREAM_DEMO_BOOKINGS:-10000}
orders=${SAGASTREAM_DEMO_ORDERS:-5000}
profile=${SAGASTREAM_DEMO_PROFILE:-release}

# topics.yaml says 3 (production); one local broker needs 1. For a small
# external cluster set SAGASTREAM_REPLICATION_FACTOR.
rf_args=()
[[ -n "${SAGASTREAM_REPLICATION_FACTOR:-}" ]] && rf_args=(--replication-factor "$SAGASTREAM_REPLICATION_FACTOR")
step "cluster"
use_cluster
[[ -n "$local_broker" ]] && rf_args=(--replication-factor "${SAGASTREAM_REPLICATION_FACTOR:-1}")

avro_topics=${SAGASTREAM_DEMO_AVRO-booking.events payment.events}
logs="$root/.local/demo"
mkdir -p "$logs"
if [[ -n "$avro_topics" ]]; then
  step "schema registry, for $avro_topics in Avro (SAGASTREAM_DEMO_AVRO= runs the demo in JSON only, without one)"
  use_registry
  echo "schema registry: $SCHEMA_REGISTRY_URL"
  # A copy of topics.yaml that declares them Avro, for every processor and the simulator.
  cp "${SAGASTREAM_TOPICS_FILE:-topics.yaml}" "$logs/topics.yaml"
  for t in $avro_topics; do
    grep -q "^  $t:\$" "$logs/topics.yaml" || {
      echo "SAGASTREAM_DEMO_AVRO: topics.yaml declares no topic $t; it declares:" \
        "$(grep -oE '^  [a-z][a-z0-9.-]*:$' "$logs/topics.yaml" | tr -d ' :' | tr '\n' ' ')" >&2
      exit 1
    }
    sed -i "s/^  $t:\$/  $t:\n    content_type: avro/" "$logs/topics.yaml"
  done
  export SAGASTREAM_TOPICS_FILE="$logs/topics.yaml"
fi

# Stop our processes first, then the broker if use_cluster started it.
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  cluster_exit
}
trap stop_all EXIT

step "build ($profile): sagactl, the processors, sagastream-sim"
cargo build --quiet --locked --profile "$profile" -p sagactl -p sagastream-escrow-saga -p sagastream-order-saga \
  -p sagastream-inventory -p sagastream-tracking -p sagastream-runner -p sagastream-ingest -p sagastream-sim
dir="${CARGO_TARGET_DIR:-$root/target}/$([[ $profile == dev ]] && echo debug || echo "$profile")"

step "validate and apply topics.yaml to $KAFKA_BOOTSTRAP_SERVERS"
"$dir/sagactl" topics validate
[[ -z "$avro_topics" ]] || "$dir/sagactl" topics validate --file "$logs/topics.yaml"
"$dir/sagactl" topics apply "${rf_args[@]}"

step "contract check: publish one event of every type and read each back"
"$dir/sagactl" events roundtrip

metrics_port=${SAGASTREAM_DEMO_METRICS_PORT:-9464}
order_port=$((metrics_port + 1))
inventory_port=$((metrics_port + 2))
tracking_port=$((metrics_port + 3))
runner_port=$((metrics_port + 4))
ingest_port=$((metrics_port + 5))
# About one order and one disputed booking in this many arrive in their platform's own envelope.
via_ingest=${SAGASTREAM_DEMO_VIA_INGEST_EVERY:-4}
step "start the escrow saga (metrics on :$metrics_port), the order saga (:$order_port), the inventory projector (:$inventory_port), tracking (:$tracking_port), runner presence (:$runner_port), ingest (:$ingest_port) and the participant simulator; logs in .local/demo/"
# Short timers so the timeout, auto-confirm and expiry scenarios finish within the demo.
SAGASTREAM_INSTANCE_ID=demo-0 "$dir/sagastream-escrow-saga" \
  --metrics-addr "127.0.0.1:$metrics_port" --hold-timeout 20s --auto-confirm-after 3s \
  -X consumer.fetch.wait.max.ms=20 > "$logs/escrow-saga.log" 2>&1 &
pids+=($!)
SAGASTREAM_INSTANCE_ID=demo-0 "$dir/sagastream-order-saga" \
  --metrics-addr "127.0.0.1:$order_port" --reservation-ttl 15s \
  -X consumer.fetch.wait.max.ms=20 > "$logs/order-saga.log" 2>&1 &
pids+=($!)
SAGASTREAM_INSTANCE_ID=demo-0 "$dir/sagastream-inventory" \
  --metrics-addr "127.0.0.1:$inventory_port" -X consumer.fetch.wait.max.ms=20 > "$logs/inventory.log" 2>&1 &
pids+=($!)
# Every fix placed gives a tracking.updated, so the simulator sees each trip through.
SAGASTREAM_INSTANCE_ID=demo-0 "$dir/sagastream-tracking" \
  --metrics-addr "127.0.0.1:$tracking_port" --update-interval 1ms --update-distance-m 0 \
  -X consumer.fetch.wait.max.ms=20 > "$logs/tracking.log" 2>&1 &
pids+=($!)
SAGASTREAM_INSTANCE_ID=demo-0 "$dir/sagastream-runner" \
  --metrics-addr "127.0.0.1:$runner_port" --offline-after 30s -X consumer.fetch.wait.max.ms=20 > "$logs/runner.log" 2>&1 &
pids+=($!)
SAGASTREAM_INSTANCE_ID=demo-0 "$dir/sagastream-ingest" \
  --metrics-addr "127.0.0.1:$ingest_port" -X consumer.fetch.wait.max.ms=20 > "$logs/ingest.log" 2>&1 &
pids+=($!)
"$dir/sagastream-sim" serve --latency 10ms --via-ingest-every "$via_ingest" > "$logs/simulator.log" 2>&1 &
pids+=($!)

# ready PORT PID NAME: waits for /readyz of one processor.
ready() {
  local port=$1 pid=$2 name=$3 deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3
      if head -n 1 <&3 | grep -q ' 200 '; then exec 3>&-; return 0; fi
      exec 3>&-
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$logs/$name.log"; echo "$name exited" >&2; return 1; }
    sleep 0.2
  done
  echo "$name is not ready after 90 s; log: $logs/$name.log" >&2
  return 1
}
ready "$metrics_port" "${pids[0]}" escrow-saga
ready "$order_port" "${pids[1]}" order-saga
ready "$inventory_port" "${pids[2]}" inventory
ready "$tracking_port" "${pids[3]}" tracking
ready "$runner_port" "${pids[4]}" runner
ready "$ingest_port" "${pids[5]}" ingest

step "run $bookings bookings and $orders orders across every scenario, then check each outcome"
status=0
"$dir/sagastream-sim" load -n "$bookings" --orders "$orders" --max-in-flight 1000 --settle-timeout 120s \
  --saga-metrics "http://127.0.0.1:$metrics_port/metrics" --saga-metrics "http://127.0.0.1:$order_port/metrics" \
  --trips --via-ingest-every "$via_ingest" --ingest-metrics "http://127.0.0.1:$ingest_port/metrics" \
  --report "$logs/report.json" || status=$?

step "summary"
if [[ -n "$avro_topics" ]]; then
  # The writers register each schema on first use: a subject per event type written.
  subjects=$(curl -fsS --max-time 10 "$SCHEMA_REGISTRY_URL/subjects" || echo '[]')
  n=0
  for t in $avro_topics; do n=$((n + $(grep -o "\"$t-[^\"]*\"" <<<"$subjects" | wc -l))); done
  echo "avro: $avro_topics written in Avro, $n subjects under them in the registry"
fi
echo "report: $logs/report.json; logs: $logs/"
if ((status != 0)); then echo "demo: the outcome check FAILED" >&2; exit "$status"; fi
echo "demo finished"
