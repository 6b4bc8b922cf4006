# kubectl-kubeless: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CLUSTER := python3 hack/localcluster/cluster.py

.PHONY: help demo test unit e2e deps components images cluster-up cluster-down cluster-status kubeconfig plugin manifests \
	brokers

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

demo: deps ## bring up the local cluster (unless KUBECONFIG is set), install the product, deploy and call a function
	@hack/demo.sh

test: ## install what is missing, run the unit tests, then the e2e tests on a real cluster; prints the times
	@hack/test.sh

unit: deps ## unit tests only (no cluster)
	@"$$(hack/deps.sh)/bin/python" -m pytest -q tests/unit

e2e: deps ## end-to-end tests only (local cluster, kind, or KUBELESS_TEST_KUBECONFIG)
	@"$$(hack/deps.sh)/bin/python" -m pytest -v tests/e2e

deps: ## apt packages and the Python virtualenv (cached outside the clone)
	@hack/deps.sh >/dev/null

components: deps ## build etcd, Kubernetes, containerd, CNI plugins, CoreDNS and Traefik from the Go module proxy (cached)
	@bash hack/localcluster/build.sh >/dev/null

images: deps ## build the project's OCI images offline (cached by content)
	@python3 hack/images/build.py --all

brokers: deps ## Kafka, NATS and Kinesis (moto) for the event triggers, in namespace kubeless (local cluster unless KUBECONFIG is set)
	@hack/brokers.sh

cluster-up: deps ## start the local single-node cluster, with Traefik serving Ingresses and the Gateway API on the node IP
	@$(CLUSTER) up

cluster-down: ## stop it, leaving no process, mount, bridge, iptables rule or netns behind
	@$(CLUSTER) down

cluster-status: ## show each component and the pod fence
	@$(CLUSTER) status

kubeconfig: ## print the local cluster's admin kubeconfig path
	@$(CLUSTER) kubeconfig

plugin: deps ## build dist/kubectl-kubeless, the plugin as one executable (a shiv zipapp)
	@hack/build-plugin.sh

manifests: deps ## regenerate manifests/kubeless.yaml from kubectl_kubeless/manifests.py
	@"$$(hack/deps.sh)/bin/python" -m kubectl_kubeless.manifests > manifests/kubeless.yaml

.PHONY: release krew-manifest
release: plugin ## dist/: the release archive (one for every platform: pure Python) and its .sha256
	@"$$(hack/deps.sh)/bin/python" hack/release.py archive

krew-manifest: release ## regenerate krew-manifest.yaml: the version and sha256 of the release archive
	@"$$(hack/deps.sh)/bin/python" hack/release.py krew-manifest
