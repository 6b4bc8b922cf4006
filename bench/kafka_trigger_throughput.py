#!/usr/bin/env python3
"""Messages per second one Kafka consumer pod delivers to a no-op Python function, on a cluster, with the function's
own sequential ceiling beside it.

    bench/kafka_trigger_throughput.py [--messages 10000]

Runs against $KUBECONFIG or the local cluster, which needs the brokers (`make brokers`) and the consumers
(`kubectl kubeless install --triggers kafka`). In a scratch namespace it deploys a function that returns at once,
creates a topic and a trigger, publishes --messages in one go (Kafka's console producer, one message per line), and
reads the consumer's kubeless_trigger_delivered_total (through the API server's pod proxy) until all are delivered:
the rate is counted from the first delivery to the last. The ceiling is the same function called one request after
another on one keep-alive connection from this machine (through its Service's cluster IP), which is how the
consumer calls it for a partition.
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from function_latency import scratch  # noqa: E402

NOOP = "def handler(event, context):\n    return 'ok'\n"
TIMEOUT = 600
CEILING_CALLS = 3000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    args = parser.parse_args()
    kubeless = ("kubectl", "kubeless")
    topic = f"bench-{uuid.uuid4().hex[:6]}"
    with scratch(TIMEOUT) as (run, namespace, folder):
        source = folder / "noop.py"
        source.write_text(NOOP)
        try:
            run(*kubeless, "function", "deploy", "noop", "-n", namespace, "--runtime", "python3.11", "--from-file",
                str(source), "--handler", "noop.handler", "--label", "bench=kafka", "--wait")
            run(*kubeless, "topic", "create", topic)
            run(*kubeless, "trigger", "kafka", "create", "bench", "-n", namespace, "--trigger-topic", topic,
                "--function-selector", "bench=kafka")
            run("kubectl", "wait", "--for=condition=Ready", "kafkatrigger/bench", "-n", namespace, "--timeout=120s")
            pod = run("kubectl", "get", "pods", "-n", "kubeless", "-l", "kubeless=kafka-trigger-controller", "-o",
                      "jsonpath={.items[0].metadata.name}").stdout.strip()
            counter = re.compile(r'^kubeless_trigger_delivered_total\{(?=[^}]*namespace="' + namespace +
                                 r'")(?=[^}]*trigger="bench")[^}]*\} (\d+)', re.M)

            def delivered() -> int:
                text = run("kubectl", "get", "--raw", f"/api/v1/namespaces/kubeless/pods/{pod}:8080/proxy/metrics",
                           check=False).stdout
                return sum(int(value) for value in counter.findall(text))

            published = time.monotonic()
            run(*kubeless, "topic", "publish", "--topic", topic, "--data",
                "\n".join(json.dumps({"n": n}) for n in range(args.messages)))
            first = last = None
            while time.monotonic() - published < TIMEOUT:
                count = delivered()
                if count and first is None:
                    first = (time.monotonic(), count)
                if count >= args.messages:
                    last = time.monotonic()
                    break
                time.sleep(0.2)
            if last is None or first is None:
                raise SystemExit(f"only {delivered()} of {args.messages} delivered within {TIMEOUT} s")
            rate = (args.messages - first[1]) / max(last - first[0], 1e-3)
            print(f"consumer: {args.messages} messages, {rate:.0f} msg/s from the first delivery to the last "
                  f"({last - published:.1f} s from publish)")

            address = run("kubectl", "get", "service", "noop", "-n", namespace, "-o",
                          "jsonpath={.spec.clusterIP}:{.spec.ports[0].port}").stdout.strip()
            host, port = address.rsplit(":", 1)
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            started = time.monotonic()
            for n in range(CEILING_CALLS):
                connection.request("POST", "/", body=json.dumps({"n": n}), headers={"Content-Type": "application/json"})
                connection.getresponse().read()
            print(f"ceiling: the function called one request after another from this machine: "
                  f"{CEILING_CALLS / (time.monotonic() - started):.0f} req/s")
        finally:
            run(*kubeless, "trigger", "kafka", "delete", "bench", "-n", namespace, check=False)
            run(*kubeless, "topic", "delete", topic, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
