#!/usr/bin/env python3
"""From `trigger http create` to the first 200 through the ingress controller, for each gateway.

Runs `kubectl kubeless` (dist/ first on PATH) against $KUBECONFIG (or the local cluster, whose Traefik serves the
nginx and traefik classes and the Gateway default/kubeless), in a scratch namespace.
    bench/http_trigger_latency.py [--rounds 5] [--gateways nginx,traefik,gateway-api]
The function is deployed and ready first; each round creates a trigger with a new host, reads the address the
trigger's status publishes (as `trigger http list` shows it), and requests it until it answers 200 with the
function's body; the clock runs from before `create` to that answer. Prints p50 and max per gateway.
"""
from __future__ import annotations

import argparse
import http.client
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from function_latency import percentile, scratch  # noqa: E402

HELLO = "def hello(event, context):\n    return 'through the ingress'\n"
ROUND_TIMEOUT = 120


def answer(address: str, host: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(address, 80, timeout=5)
    try:
        connection.request("GET", "/", headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    except OSError:
        return 0, ""
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gateways", default="nginx,traefik,gateway-api")
    args = parser.parse_args()
    with scratch() as (run, namespace, folder):
        source = folder / "hello.py"
        source.write_text(HELLO)
        run("kubectl", "kubeless", "function", "deploy", "hello", "-n", namespace, "--runtime", "python3.11",
            "--from-file", str(source), "--handler", "hello.hello", "--wait")
        for gateway in args.gateways.split(","):
            samples = []
            for index in range(args.rounds):
                name, host = f"{gateway}-{index}", f"{gateway}-{index}.bench.test"
                started = time.monotonic()
                run("kubectl", "kubeless", "trigger", "http", "create", name, "-n", namespace, "--function-name",
                    "hello", "--gateway", gateway, "--hostname", host)
                deadline = started + ROUND_TIMEOUT
                address = ""
                while time.monotonic() < deadline:
                    if not address:
                        address = run("kubectl", "get", "httptrigger", name, "-n", namespace, "-o",
                                      "jsonpath={.status.address}", check=False).stdout.strip()
                    if address and answer(address, host) == (200, "through the ingress"):
                        break
                    time.sleep(0.05)
                else:
                    raise SystemExit(f"{gateway}: no 200 from {host} through {address or 'no address'}")
                samples.append(time.monotonic() - started)
                run("kubectl", "kubeless", "trigger", "http", "delete", name, "-n", namespace)
            print(f"{gateway}: create to first 200 p50 {percentile(samples, 0.5):.2f} s, max {max(samples):.2f} s "
                  f"({len(samples)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
