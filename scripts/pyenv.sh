#!/usr/bin/env bash
# Creates .local/venv with scripts/requirements.txt, once; prints its python.
# Re-installs when requirements.txt changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.local/venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$root/scripts/requirements.txt" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  python=${PYTHON:-python3}
  command -v "$python" >/dev/null || { echo "pyenv: $python not found; install Python 3.11+ or set PYTHON" >&2; exit 1; }
  echo "pyenv: installing Python tools into $venv (once)" >&2
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
