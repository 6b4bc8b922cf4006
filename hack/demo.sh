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

# An HTTP trigger, when an ingress controller serves the nginx class (the local cluster's Traefik does).
if kubectl get ingressclass nginx >/dev/null 2>&1; then
  kubectl kubeless trigger http delete hello-py >/dev/null 2>&1 || true
  run kubectl kubeless trigger http create hello-py --function-name hello-py --hostname hello-py.demo.test
  run kubectl wait --for=condition=Ready httptrigger/hello-py --timeout=60s
  run kubectl kubeless trigger http list
  address=$(kubectl get httptrigger hello-py -o jsonpath='{.status.address}')
  # the ingress controller picks the route up within a second or two of publishing its address
  for _ in $(seq 20); do
    curl -fsS -o /dev/null -H 'Host: hello-py.demo.test' -d x "http://$address/" 2>/dev/null && break
    sleep 0.5
  done
  run curl -sS -H 'Host: hello-py.demo.test' -d 'hello through the ingress controller!' "http://$address/"
  echo
fi
