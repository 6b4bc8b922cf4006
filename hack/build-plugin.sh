#!/usr/bin/env bash
# `make plugin`: builds dist/kubectl-kubeless, one executable file (a shiv zipapp of the plugin and its
# dependencies) that kubectl runs as `kubectl kubeless ...` once dist/ is on PATH.
#
# Reproducible (SOURCE_DATE_EPOCH, shiv --reproducible) and skipped when its inputs have not changed since the last
# build: the hash of the sources is kept next to the output. --compile-pyc: the first run compiles the bytecode once
# (users who set PYTHONDONTWRITEBYTECODE would otherwise recompile `kubernetes` on every command).
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/kubectl-kubeless
stamp=dist/.kubectl-kubeless.inputs

inputs=$( (cat pyproject.toml VERSION README.md; find kubectl_kubeless -type f \( -name '*.py' -o -name '*.json' \) \
  -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-64)
if [[ -x $out && -f $stamp && $(cat "$stamp") == "$inputs" ]]; then
  echo "$out is up to date" >&2
  exit 0
fi

venv=$(hack/deps.sh)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 315532800)}
mkdir -p dist
tmp=$(mktemp -d)
src=dist/.build/kubectl-kubeless  # a fixed path: pip records it in the zipapp (direct_url.json)
trap 'rm -rf "$tmp" dist/.build' EXIT
# Build from a copy, so setuptools' build/ and *.egg-info never land in the sources.
rm -rf dist/.build && mkdir -p "$src"
cp -r pyproject.toml README.md VERSION kubectl_kubeless "$src/"
find "$src" -name __pycache__ -prune -exec rm -rf {} +
"$venv/bin/shiv" --reproducible --compressed --compile-pyc --python '/usr/bin/env python3' \
  --console-script kubectl-kubeless --output-file "$tmp/kubectl-kubeless" \
  --quiet --disable-pip-version-check "./$src" >&2
mv "$tmp/kubectl-kubeless" "$out"
echo "$inputs" > "$stamp"
echo "built $out ($(du -h "$out" | cut -f1))" >&2
