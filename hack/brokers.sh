#!/usr/bin/env bash
# `make brokers`: Kafka, NATS and a Kinesis endpoint (brokers/) in namespace kubeless, for the event triggers.
# Uses the cluster named by KUBECONFIG when it is set (the broker images must be available there, as the product's
# are: see README); otherwise brings up the local cluster and imports the images into its containerd.
set -euo pipefail
cd "$(dirname "$0")/.."
cluster="python3 hack/localcluster/cluster.py"
if [[ -z ${KUBECONFIG:-} ]]; then
  $cluster up
  # `up` imports every recipe's image only when it starts the cluster; one already up may predate the brokers'
  $cluster images
  KUBECONFIG=$($cluster kubeconfig)
  export KUBECONFIG
  PATH="$($cluster bins | tr '\n' ':')$PATH"
fi

python3 -m brokers.manifests | kubectl apply --server-side --force-conflicts --field-manager=kubeless-brokers -f -
# Kafka formats its storage and starts in 5-15 s; the images are local, so nothing is pulled
kubectl -n kubeless rollout status statefulset/kafka --timeout=180s
kubectl -n kubeless rollout status deployment/nats --timeout=120s
kubectl -n kubeless rollout status deployment/kinesis --timeout=120s
