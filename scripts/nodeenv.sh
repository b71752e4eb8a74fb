#!/usr/bin/env bash
# Installs the Node interoperability peers (kafkajs and
# @kafkajs/confluent-schema-registry, pinned in tests/interop/package.json)
# into .local/node-interop, once; re-installs when package.json changes.
# Prints the directory whose node_modules the peers load.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.local/node-interop"
stamp="$dir/.package.sha256"
want=$(sha256sum "$root/tests/interop/package.json" | cut -d' ' -f1)
if [[ ! -d "$dir/node_modules" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  command -v npm >/dev/null || { echo "nodeenv: npm is needed for the kafkajs interoperability peer (apt-get install npm)" >&2; exit 1; }
  echo "nodeenv: installing kafkajs and @kafkajs/confluent-schema-registry into $dir (once)" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$root/tests/interop/package.json" "$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --silent >&2) \
    || { echo "nodeenv: npm install failed (output above); check the network" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
echo "$dir"
