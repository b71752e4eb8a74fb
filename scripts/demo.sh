#!/usr/bin/env bash
# `make demo`: install what is missing, start the local broker (unless
# KAFKA_BOOTSTRAP_SERVERS is set), apply topics.yaml, run the pipeline on
# generated traffic, print a summary, and stop what it started.
#
# The pipeline grows with each processor; today it publishes one event of
# every catalog type to its topic and reads each back typed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n==> %s\n' "$*"; }
# shellcheck source=cluster.sh
source scripts/cluster.sh

# topics.yaml says 3 (production); one local broker needs 1. For a small
# external cluster set SAGASTREAM_REPLICATION_FACTOR.
rf_args=()
[[ -n "${SAGASTREAM_REPLICATION_FACTOR:-}" ]] && rf_args=(--replication-factor "$SAGASTREAM_REPLICATION_FACTOR")
step "cluster"
use_cluster
[[ -n "$local_broker" ]] && rf_args=(--replication-factor "${SAGASTREAM_REPLICATION_FACTOR:-1}")

step "build sagactl"
cargo build --quiet --locked -p sagactl
sagactl="${CARGO_TARGET_DIR:-$root/target}/debug/sagactl"

step "validate and apply topics.yaml to $KAFKA_BOOTSTRAP_SERVERS"
"$sagactl" topics validate
"$sagactl" topics apply "${rf_args[@]}"

step "publish one event of every type and read each back"
"$sagactl" events roundtrip

step "summary"
"$sagactl" topics plan "${rf_args[@]}" | tail -n 1
echo "demo finished"
