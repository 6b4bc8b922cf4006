#!/usr/bin/env bash
# `make demo`: the user's story, from nothing to a function answering.
# Uses the cluster named by KUBECONFIG when it is set (the project's images must be available there: see README);
# otherwise brings up the local cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
cluster="python3 hack/localcluster/cluster.py"
if [[ -z ${KUBECONFIG:-} ]]; then
  $cluster up
  KUBECONFIG=$($cluster kubeconfig)
  export KUBECONFIG
  PATH="$($cluster bins | tr '\n' ':')$PATH"
fi
hack/build-plugin.sh >/dev/null
export PATH="$PWD/dist:$PATH"

say() { printf '\n\033[1m$'; printf ' %q' "$@"; printf '\033[0m\n'; }
run() { say "$@"; "$@"; }

run kubectl kubeless install --wait
kubectl kubeless function delete hello-py >/dev/null 2>&1 || true
run cat hack/demo/hello.py
run kubectl kubeless function deploy hello-py --runtime python3.11 --from-file hack/demo/hello.py --handler hello.hello --wait
run kubectl kubeless function ls
run kubectl kubeless function call hello-py --data 'hello, world!'
