#!/usr/bin/env python3
"""Event triggers, at least once: every message reaches the function through a function outage and a consumer
SIGKILL, and how fast a no-op function is fed.

    bench/event_delivery.py --broker kafka --kafka 127.0.0.1:19092 [--messages 1000]
    bench/event_delivery.py --broker nats --nats nats://127.0.0.1:14222 [--messages 1000]

Runs the consumers' core (kubeless_consumers: Fleet, source, delivery) against a real broker with a static trigger
and function, no Kubernetes: the function is a local HTTP server that logs the id in each body. Two phases:
1. throughput: N messages published, one consumer started, seconds until the function saw them all;
2. faults: N more messages; after a third have arrived the function server is killed and started again 3 s later;
   after two thirds the consumer process is SIGKILLed and started again. Then it counts the unique ids the function
   saw (lost = N - unique) and the calls beyond one per id (duplicates, which at-least-once allows).
Needs kafka-python (Kafka) or nats-py (NATS, through a JetStream stream) in the Python that runs it; each phase is
bounded by --timeout. Prints one line per phase.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATHS = [str(REPO), str(REPO / "controller"), str(REPO / "consumers")]


# --- the function and the consumer, each in a process of its own -------------------------------------------------

def serve(port: int, log_path: str) -> None:
    """A no-op function: appends the body's id to the log, answers 200."""
    log = open(log_path, "a", buffering=1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                log.write(json.loads(body)["id"] + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def consume(spec_json: str) -> None:
    """One consumer of a static trigger, until SIGTERM (or SIGKILL)."""
    sys.path[:0] = PATHS
    from kubeless_consumers.fleet import ConsumerSpec, Fleet  # noqa: PLC0415
    from kubeless_consumers.settings import Settings  # noqa: PLC0415
    from kubeless_consumers.sources import factory  # noqa: PLC0415

    spec = ConsumerSpec(**json.loads(spec_json))
    settings = Settings.from_env()
    fleet = Fleet(factory(spec.kind, settings))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    fleet.converge(spec.trigger_key, [spec])
    stop.wait()
    fleet.stop_all()


# --- the driver ----------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def publish(args, topic: str, ids: list[str]) -> None:
    bodies = [json.dumps({"id": i}).encode() for i in ids]
    if args.broker == "kafka":
        from kafka import KafkaProducer  # noqa: PLC0415
        from kafka.admin import KafkaAdminClient, NewTopic  # noqa: PLC0415

        admin = KafkaAdminClient(bootstrap_servers=args.kafka)
        if topic not in admin.list_topics():
            admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=args.kafka, acks="all")
        for body in bodies:
            producer.send(topic, body)
        producer.flush()
        producer.close()
        return
    import asyncio  # noqa: PLC0415

    import nats  # noqa: PLC0415

    async def run() -> None:
        connection = await nats.connect(args.nats)
        js = connection.jetstream()
        try:
            await js.stream_info(args.stream)
        except Exception:  # noqa: BLE001 - not there yet
            await js.add_stream(name=args.stream, subjects=[f"{args.stream}.>"])
        for body in bodies:
            await js.publish(topic, body)
        await connection.close()
    asyncio.run(run())


class Run:
    def __init__(self, args, name: str):
        self.args, self.work = args, tempfile.mkdtemp(prefix=f"event-delivery-{name}-")
        self.log = os.path.join(self.work, "calls.log")
        self.port = free_port()
        self.topic = f"{args.stream}.{name}-{uuid.uuid4().hex[:6]}" if args.broker == "nats" \
            else f"bench-{name}-{uuid.uuid4().hex[:6]}"
        self.spec = {"kind": args.broker, "namespace": "bench", "trigger": name, "function": "noop",
                     "topic": self.topic, "group": f"bench_{name}_noop_{self.topic}",
                     "url": f"http://127.0.0.1:{self.port}", "max_attempts": 5,
                     "dead_letter": f"{self.topic}.dead-letter", "timeout": 10.0,
                     "stream": args.stream if args.broker == "nats" else ""}
        self.env = {**os.environ, "KAFKA_BROKERS": args.kafka, "NATS_URL": args.nats, "BACKOFF_INTERVAL": "1s",
                    "KUBELESS_LOG_LEVEL": "WARNING"}
        self.function = self.consumer = None
        open(self.log, "w").close()

    def start_function(self) -> None:
        self.function = subprocess.Popen([sys.executable, __file__, "serve", str(self.port), self.log])

    def start_consumer(self) -> None:
        self.consumer = subprocess.Popen([sys.executable, __file__, "consume", json.dumps(self.spec)], env=self.env)

    def calls(self) -> list[str]:
        with open(self.log) as file:
            return file.read().split()

    def wait(self, ids: set[str], count: int, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if len(ids & set(self.calls())) >= count:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        for process in (self.consumer, self.function):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


def throughput(args) -> None:
    run = Run(args, "throughput")
    ids = [f"t{n}" for n in range(args.messages)]
    try:
        publish(args, run.topic, ids)
        run.start_function()
        time.sleep(0.5)
        started = time.monotonic()
        run.start_consumer()
        done = run.wait(set(ids), len(ids), started + args.timeout)
        seconds = time.monotonic() - started
        calls = run.calls()
        print(f"throughput broker={args.broker} messages={len(ids)} delivered={len(set(calls) & set(ids))} "
              f"seconds={seconds:.1f} messages_per_s={len(set(calls)) / seconds:.0f} (consumer start included) "
              f"complete={done}")
    finally:
        run.stop()


def faults(args) -> None:
    run = Run(args, "faults")
    ids = [f"f{n}" for n in range(args.messages)]
    wanted = set(ids)
    try:
        publish(args, run.topic, ids)
        run.start_function()
        time.sleep(0.5)
        deadline = time.monotonic() + args.timeout
        run.start_consumer()
        run.wait(wanted, len(ids) // 3, deadline)
        run.function.kill()
        run.function.wait()
        time.sleep(3)  # calls meanwhile are refused: retried without spending attempts
        run.start_function()
        run.wait(wanted, 2 * len(ids) // 3, deadline)
        run.consumer.send_signal(signal.SIGKILL)
        run.consumer.wait()
        run.start_consumer()
        run.wait(wanted, len(ids), deadline)
        calls = [c for c in run.calls() if c in wanted]
        unique = len(set(calls))
        print(f"faults broker={args.broker} messages={len(ids)} unique={unique} lost={len(ids) - unique} "
              f"duplicates={len(calls) - unique} (function killed once, consumer SIGKILLed once)")
    finally:
        run.stop()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "consume":
        consume(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=("kafka", "nats"), required=True)
    parser.add_argument("--kafka", default="127.0.0.1:19092")
    parser.add_argument("--nats", default="nats://127.0.0.1:14222")
    parser.add_argument("--stream", default="BENCH", help="NATS: the JetStream stream (subjects BENCH.>)")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    throughput(args)
    faults(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
