#!/usr/bin/env bash
# `make test`: everything from a fresh machine to a verdict, timing each step.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -a times
step() {
  local name=$1 t0=$SECONDS rc=0; shift
  "$@" || rc=$?
  times+=("$(printf '%-36s %5d s  %s' "$name" $((SECONDS - t0)) "$([[ $rc == 0 ]] && echo ok || echo "FAILED ($rc)")")")
  return $rc
}

print_times() {
  echo; echo "== times"; printf '%s\n' "${times[@]}"
  [[ -f .cluster/up-seconds ]] && printf '%-36s %5s s  (of the e2e step)\n' "local cluster up" "$(cat .cluster/up-seconds)"
  return 0
}
trap print_times EXIT

venv=""
find_venv() { venv=$(hack/deps.sh); }
step "dependencies (apt, pip)" find_venv
step "components (Go build, cached)" bash -c 'hack/localcluster/build.sh >/dev/null'
step "images (offline, cached)" python3 hack/images/build.py --all >&2
step "lint (ruff)" "$venv/bin/ruff" check --quiet .
step "unit tests" "$venv/bin/python" -m pytest -q tests/unit
step "e2e tests (incl. cluster up/down)" "$venv/bin/python" -m pytest -v -rs tests/e2e
