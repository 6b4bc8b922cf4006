"""The wire modules without the outside world: SigV4 against AWS's published test vectors, the Kinesis call and the
NATS publish against small servers of this test on 127.0.0.1, each bounded in time."""
from __future__ import annotations

import base64
import json
import socket
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from kubectl_kubeless.wire import kinesis, nats

EXAMPLE = kinesis.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
VECTOR_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc)


# --- SigV4 ----------------------------------------------------------------------------------------------------------

def test_sigv4_get_vanilla():
    """The SigV4 test suite's get-vanilla: GET / of example.amazonaws.com, service `service`, us-east-1."""
    headers = kinesis.sign("GET", "https://example.amazonaws.com/", {"Host": "example.amazonaws.com"}, b"", EXAMPLE,
                           "us-east-1", "service", VECTOR_TIME)
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")


def test_sigv4_get_vanilla_query_order_key_case():
    headers = kinesis.sign("GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1",
                           {"Host": "example.amazonaws.com"}, b"", EXAMPLE, "us-east-1", "service", VECTOR_TIME)
    assert headers["Authorization"].endswith("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")


def test_a_kinesis_request_is_a_signed_json_post():
    url, headers, body = kinesis.request("http://localhost:4566", "CreateStream", {"StreamName": "s", "ShardCount": 1},
                                         credentials=EXAMPLE, region="us-east-1", now=VECTOR_TIME)
    assert url == "http://localhost:4566/" and json.loads(body) == {"StreamName": "s", "ShardCount": 1}
    assert headers["X-Amz-Target"] == "Kinesis_20131202.CreateStream"
    assert headers["Content-Type"] == "application/x-amz-json-1.1" and headers["Host"] == "localhost:4566"
    assert "/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, " \
           in headers["Authorization"]


# --- Kinesis against a stub -----------------------------------------------------------------------------------------

@pytest.fixture
def stub():
    """An HTTP server answering PutRecords with one failed record and anything else with an error."""
    seen: list[tuple[dict, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((dict(self.headers), body))
            if self.headers["X-Amz-Target"].endswith(".PutRecords"):
                status, answer = 200, {"FailedRecordCount": 1, "Records": [
                    {"SequenceNumber": "1", "ShardId": "shardId-000000000000"},
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}]}
            else:
                status, answer = 400, {"__type": "com.amazon#ResourceInUseException", "message": "Stream s exists"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def test_put_records_reports_each_failed_record(stub):
    url, seen = stub
    answer = kinesis.call(url, "PutRecords", kinesis.put_records_body("s", "p", [b"a", b"b"]), credentials=EXAMPLE,
                          region="us-east-1", timeout=5)
    assert kinesis.failed_records(answer) == ["record 2: ProvisionedThroughputExceededException (Rate exceeded)"]
    headers, body = seen[0]
    assert [base64.b64decode(r["Data"]) for r in body["Records"]] == [b"a", b"b"]
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")


def test_a_kinesis_error_is_its_type_and_message(stub):
    url, _ = stub
    with pytest.raises(kinesis.KinesisError, match=r"refused CreateStream: ResourceInUseException: Stream s exists$"):
        kinesis.call(url, "CreateStream", {}, credentials=EXAMPLE, region="us-east-1", timeout=5)


# --- NATS against a scripted server ---------------------------------------------------------------------------------

def scripted_nats(answer):
    """A one-connection NATS server: INFO, then `answer(received)` gives the bytes for what it has read so far
    (None: read on). Returns its Server and the bytes it received."""
    listener = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.sendall(b'INFO {"server_id":"x","max_payload":16}\r\n')
            connection.settimeout(5)
            while True:
                data = connection.recv(4096)
                if not data:
                    return
                received.extend(data)
                reply = answer(bytes(received))
                if reply is not None:
                    connection.sendall(reply)
                    if b"PONG" in reply and b"_INBOX" not in bytes(received):
                        return

    threading.Thread(target=serve, daemon=True).start()
    return nats.Server("127.0.0.1", listener.getsockname()[1], token="t0k"), received


def test_nats_publish_is_connect_pub_ping():
    server, received = scripted_nats(lambda data: b"PING\r\nPONG\r\n" if data.endswith(b"PING\r\n") else None)
    assert nats.publish(server, "orders", b"hello", timeout=5) is None
    connect, rest = bytes(received).split(b"\r\n", 1)
    options = json.loads(connect.removeprefix(b"CONNECT "))
    assert options["verbose"] is False and options["pedantic"] is False and options["auth_token"] == "t0k"
    assert rest == b"PUB orders 5\r\nhello\r\nPING\r\n"


def answer_on_inbox(operation: bytes, sizes: list[int], block: bytes):
    """A server's answer once the PING is in: PONG, then `operation` (MSG, HMSG) on the client's inbox."""
    def answer(data: bytes):
        if not data.endswith(b"PING\r\n"):
            return None
        inbox = data.split(b"SUB ", 1)[1].split()[0]
        return b"PONG\r\n%s %s 1 %s\r\n%s\r\n" % (operation, inbox, " ".join(map(str, sizes)).encode(), block)
    return answer


def test_nats_jetstream_publish_waits_for_the_ack():
    ack = b'{"stream":"ORDERS","seq":42}'
    server, received = scripted_nats(answer_on_inbox(b"MSG", [len(ack)], ack))
    assert nats.publish(server, "orders", b"hi", timeout=5, wants_ack=True) == nats.Ack("ORDERS", 42)
    assert json.loads(bytes(received).split(b"\r\n", 1)[0].removeprefix(b"CONNECT "))["no_responders"] is True


def test_nats_errors_are_one_line():
    server, _ = scripted_nats(lambda data: b"-ERR 'Authorization Violation'\r\n" if b"PING" in data else None)
    with pytest.raises(nats.NatsError, match="refused: Authorization Violation$"):
        nats.publish(server, "orders", b"hi", timeout=5)
    server, _ = scripted_nats(lambda data: None)
    with pytest.raises(nats.NatsError, match="over the 16 the NATS server"):
        nats.publish(server, "orders", b"x" * 17, timeout=5)
    server, _ = scripted_nats(lambda data: None)
    with pytest.raises(nats.NatsError, match=r"no answer from the NATS server nats://127.0.0.1:\d+ within 0.3 s"):
        nats.publish(server, "orders", b"x", timeout=0.3)


def test_nats_no_responders_means_no_stream():
    headers = b"NATS/1.0 503\r\n\r\n"
    server, _ = scripted_nats(answer_on_inbox(b"HMSG", [len(headers), len(headers)], headers))
    with pytest.raises(nats.NatsError, match="no JetStream stream on .* holds the subject orders"):
        nats.publish(server, "orders", b"hi", timeout=5, wants_ack=True)


@pytest.mark.parametrize(("url", "server"), [
    ("nats://localhost", nats.Server("localhost", 4222)),
    ("nats://u:p%40ss@h:4333", nats.Server("h", 4333, "u", "p@ss")),
    ("nats://tok@h", nats.Server("h", 4222, token="tok")),
])
def test_nats_urls(url, server):
    assert nats.parse_url(url) == server
