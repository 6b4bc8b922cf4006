"""The event brokers that triggers consume, for the local cluster and the e2e tests: one image recipe per broker
(kafka/, nats/, kinesis/, built offline by hack/images/build.py like every image) and manifests.py, their
Kubernetes objects. `make brokers` builds, imports and applies them."""
