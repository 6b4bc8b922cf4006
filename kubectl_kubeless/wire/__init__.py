"""The protocols the plugin speaks to systems other than Kubernetes, with the standard library only: NATS's client
protocol (`trigger nats publish`) and Amazon Kinesis's JSON API with AWS Signature Version 4 (`trigger kinesis
publish|create-stream`). Each module is the one home of its wire's details."""
