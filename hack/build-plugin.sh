#!/usr/bin/env bash
# `make plugin`: builds dist/kubectl-kubeless, one executable file (a shiv zipapp of the plugin and its
# dependencies) that kubectl runs as `kubectl kubeless ...` once dist/ is on PATH.
#
# One file for every platform: the dependencies are the pure-Python wheels pinned in hack/plugin-requirements.txt
# (PyYAML built without its C extension), installed with --no-index from a wheel folder that holds nothing else, and
# the build fails if a compiled module (.so, .pyd, .dylib) ends up inside anyway. It needs python3 >= 3.10 on PATH.
#
# Reproducible: the pins, a fixed SOURCE_DATE_EPOCH (timestamps carry no information here, and a date taken from git
# would change the bytes at every commit) and shiv --reproducible give the same bytes for the same sources. Skipped
# when its inputs have not changed since the last build: the hash of the sources is kept next to the output.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/localcluster/lib.sh
out=dist/kubectl-kubeless
stamp=dist/.kubectl-kubeless.inputs

inputs=$( (cat pyproject.toml VERSION hack/build-plugin.sh hack/zipapp.py hack/plugin-requirements.txt \
  hack/plugin-build-constraints.txt hack/kubectl_complete-kubeless
  find kubectl_kubeless kubeless_api -type f \( -name '*.py' -o -name '*.json' \) -print0 | sort -z \
    | xargs -0 sha256sum) \
  | sha256sum | cut -c1-64)
if [[ -x $out && -x dist/kubectl_complete-kubeless && -f $stamp && $(cat "$stamp") == "$inputs" ]]; then
  echo "$out is up to date" >&2
  exit 0
fi

venv=$(hack/deps.sh)
pip=("$venv/bin/pip" --disable-pip-version-check)

# The wheels, downloaded once per set of pins (offline afterwards).
wheels="$KUBELESS_CACHE/plugin-wheels-$(cat hack/plugin-requirements.txt hack/plugin-build-constraints.txt \
  | sha256sum | cut -c1-12)"
if [[ ! -f $wheels/.complete ]]; then
  log "downloading the plugin's pinned dependencies into $wheels"
  rm -rf "$wheels" && mkdir -p "$wheels"
  grep -v -i '^pyyaml==' hack/plugin-requirements.txt > "$wheels/pure.txt"
  "${pip[@]}" download -q --no-deps --only-binary=:all: --platform any --implementation py --abi none \
    --python-version 3.10 -d "$wheels" -r "$wheels/pure.txt" >&2
  # PYYAML_FORCE_LIBYAML=0: setup.py leaves the extension out, and the wheel is tagged py3-none-any.
  PYYAML_FORCE_LIBYAML=0 PIP_CONSTRAINT="$PWD/hack/plugin-build-constraints.txt" "${pip[@]}" wheel -q --no-deps \
    --no-binary pyyaml -w "$wheels" "$(grep -i '^pyyaml==' hack/plugin-requirements.txt)" >&2
  # The build backend of the plugin's own wheel (pyproject.toml), for the offline install below; not in the zipapp.
  "${pip[@]}" download -q --no-deps --only-binary=:all: -d "$wheels" \
    "$(grep -i '^setuptools==' hack/plugin-build-constraints.txt)" >&2
  rm "$wheels/pure.txt"
  for wheel in "$wheels"/*.whl; do
    [[ $wheel == *-none-any.whl ]] || die "$wheel is not a pure-Python wheel"
  done
  touch "$wheels/.complete"
fi

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}  # 1980-01-01, the earliest date a zip can hold
mkdir -p dist
tmp=$(mktemp -d)  # private: several builds may run at once (each e2e session builds), and each ends with a mv
trap 'rm -rf "$tmp"' EXIT
# The plugin's own wheel, from a copy (setuptools' build/ and *.egg-info never land in the sources), then installed
# by name: installing a folder would record its path in the zipapp (direct_url.json), different in every clone.
mkdir -p "$tmp/src"
cp -r pyproject.toml VERSION kubectl_kubeless kubeless_api "$tmp/src/"
# The wheel's long description: a fixed line, so an edit of the README does not change the release archive.
echo "kubectl-kubeless: Kubeless functions-as-a-service as a kubectl plugin." > "$tmp/src/README.md"
cp VERSION "$tmp/src/kubeless_api/VERSION"  # meta.project_version() reads it: no importlib.metadata at start-up
find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} +
offline=(env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONSTRAINT=)
"${offline[@]}" "${pip[@]}" wheel -q --no-deps --no-index --find-links "$wheels" -w "$tmp/wheels" "$tmp/src" >&2
# --no-index and --find-links: only the pinned wheels and the plugin's own can get in; not even a find-links
# folder named by the environment.
"${offline[@]}" "$venv/bin/shiv" --reproducible --compressed --python '/usr/bin/env python3' \
  --console-script kubectl-kubeless --output-file "$tmp/kubectl-kubeless" \
  --quiet --disable-pip-version-check --no-index --find-links "$wheels" --find-links "$tmp/wheels" \
  "kubectl-kubeless==$(cat VERSION)" --requirement hack/plugin-requirements.txt >&2
"$venv/bin/python" hack/zipapp.py precompile "$tmp/kubectl-kubeless"
"$venv/bin/python" hack/zipapp.py check "$tmp/kubectl-kubeless"
cp -p "$tmp/kubectl-kubeless" "$out.$$" && mv "$out.$$" "$out"  # a rename: whoever runs the old one keeps it
# kubectl's completion of `kubectl kubeless <TAB>` runs it from PATH, next to the plugin
cp -p hack/kubectl_complete-kubeless "dist/kubectl_complete-kubeless.$$" \
  && mv "dist/kubectl_complete-kubeless.$$" dist/kubectl_complete-kubeless
echo "$inputs" > "$stamp"
echo "built $out ($(du -h "$out" | cut -f1))" >&2
