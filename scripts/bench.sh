#!/usr/bin/env bash
# `make bench`: the escrow saga beside its peers in one run on a freshly
# started Apache Kafka (docs/benchmarks.md): the transactional copy-loop
# ceiling, sagastream, Kafka Streams and Quix Streams, in turns over several rounds on the
# same records; prints events/s, the ratios, peak RSS and CPU seconds per
# 1,000 events; then feeds sagastream at half its median rate and prints p50
# and p99 from input to committed output; writes it all to .local/bench/peers.json.
#
#   KAFKA_BOOTSTRAP_SERVERS    a cluster to use instead (nothing is started)
#   SAGASTREAM_BENCH_PORT      the local broker's port (default 19095)
#   SAGASTREAM_BENCH_BOOKINGS  bookings a round (default 20000, 8 inputs each)
#   SAGASTREAM_BENCH_ROUNDS    rounds (default 3)
#   SAGASTREAM_BENCH_RUNNERS   e.g. ceiling,sagastream to leave the peers out
#   SAGASTREAM_BENCH_LATENCY_SECONDS  the latency run's length (default 30, 0 skips it)
#   SAGASTREAM_BENCH_LATENCY_RATE     its inputs/s (default: half the median; a fixed rate compares builds)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=cluster.sh
source scripts/cluster.sh
command -v mvn >/dev/null || { echo "bench: Maven (mvn) builds the Kafka Streams peer; apt-get install maven" >&2; exit 1; }

if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  # A port of its own: a broker started here is fresh (every start formats new storage).
  export SAGASTREAM_BROKER_PORT=${SAGASTREAM_BENCH_PORT:-19095}
  if scripts/broker.sh status >/dev/null 2>&1; then
    echo "bench: a broker already runs on port $SAGASTREAM_BROKER_PORT; stop it (SAGASTREAM_BROKER_PORT=$SAGASTREAM_BROKER_PORT scripts/broker.sh stop) for a fresh one" >&2
    exit 1
  fi
fi
use_cluster
echo "bench: cluster $KAFKA_BOOTSTRAP_SERVERS"
cargo bench --locked -p sagastream-bench --bench peers
