"""NATS's client protocol, the little a publish needs, with the standard library: every detail of the wire lives here.

The protocol is text over TCP (https://docs.nats.io/reference/reference-protocols/nats-protocol): the server speaks
first (`INFO {json}`), the client answers `CONNECT {json}`, then `PUB <subject> [reply] <bytes>` and the payload.
With `verbose: false` the server acknowledges nothing, so a `PING` after the `PUB` and its `PONG` tell that the
server read (and accepted) everything before it: it answers in order, and an `-ERR` for the CONNECT or the PUB comes
first. A JetStream publish also asks for the stream's ack: the PUB names a reply inbox the client subscribed to, and
the stream answers there with `{"stream": ..., "seq": ...}`, or the server with a 503 "no responders" status when no
stream holds the subject (which needs `headers` and `no_responders` in the CONNECT).
"""
from __future__ import annotations

import json
import secrets
import socket
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 4222
SCHEMES = ("nats",)
CLIENT_NAME = "kubectl-kubeless"
ACK_SID = "1"  # the one subscription a publish makes: its ack inbox


class NatsError(Exception):
    """The server refused, or could not be reached or understood: one line, naming the server."""


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str | None = None
    password: str | None = None
    token: str | None = None

    @property
    def url(self) -> str:
        """The URL without its credentials, for a message."""
        return f"nats://{self.host}:{self.port}"

    def credentials(self) -> dict:
        """What the CONNECT carries of the URL's user info: `user:password@` or a token alone (`token@`)."""
        if self.token:
            return {"auth_token": self.token}
        if self.user is not None:
            return {"user": self.user, "pass": self.password or ""}
        return {}


def parse_url(url: str) -> Server:
    """nats://[user:password@|token@]host[:port]; ValueError says what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ValueError(str(error)) from None
    if parts.scheme not in SCHEMES:
        raise ValueError(f"the scheme must be nats:// (tls:// is not supported), not {parts.scheme or 'none'}")
    if not parts.hostname:
        raise ValueError("no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a server URL has no path or query")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if user is not None and password is None:
        return Server(parts.hostname, port or DEFAULT_PORT, token=user)
    return Server(parts.hostname, port or DEFAULT_PORT, user, password)


def check_subject(subject: str) -> str:
    """A subject a message can be published to: dot-separated tokens, no white space, no wildcard."""
    tokens = subject.split(".")
    if not subject or any(not token or token in ("*", ">") or any(c.isspace() for c in token) for token in tokens):
        raise ValueError("a subject is dot-separated words without white space or wildcards (* >), e.g. orders.new")
    return subject


@dataclass(frozen=True)
class Ack:
    """JetStream's answer to a publish: the stream that stored the message and its sequence number there."""
    stream: str
    seq: int


class Connection:
    """The byte stream of one connection, read line by line under one deadline."""

    def __init__(self, sock: socket.socket, server: Server, deadline: float):
        self.sock, self.server, self.deadline = sock, server, deadline
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            raise NatsError(f"the NATS server {self.server.url} closed the connection")
        self.buffer += data

    def line(self) -> str:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("utf-8", errors="replace")

    def exact(self, size: int) -> bytes:
        """`size` bytes, then the CRLF that ends a message's payload."""
        while len(self.buffer) < size + 2:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size + 2:]
        return data

    def operation(self) -> tuple[str, list[str], bytes]:
        """The next operation that concerns a publisher (PONG, MSG, HMSG), answering the server's PINGs and
        raising its -ERR; a message's headers and payload come as one block."""
        while True:
            line = self.line()
            op, _, rest = line.partition(" ")
            op = op.upper()
            if op == "PING":
                self.send(b"PONG\r\n")
            elif op == "-ERR":
                raise NatsError(f"the NATS server {self.server.url} refused: {rest.strip().strip(chr(39))}")
            elif op in ("MSG", "HMSG"):
                args = rest.split()
                return op, args, self.exact(int(args[-1]))
            elif op == "PONG":
                return op, [], b""
            # INFO (a cluster's update) and +OK: nothing to do


def connect_options(server: Server, *, wants_ack: bool) -> dict:
    options = {"verbose": False, "pedantic": False, "name": CLIENT_NAME, "lang": "python", "protocol": 1,
               **server.credentials()}
    if wants_ack:
        options.update(headers=True, no_responders=True)
    return options


def read_ack(server: Server, subject: str, op: str, args: list[str], block: bytes) -> Ack:
    """The stream's ack, its error, or the server's "no responders"."""
    payload = block
    if op == "HMSG":
        header_size = int(args[-2])
        status = block[:header_size].split(b"\r\n", 1)[0].split()
        payload = block[header_size:]
        if len(status) > 1 and status[1] == b"503":
            raise NatsError(f"no JetStream stream on {server.url} holds the subject {subject} (no responders); "
                            "create one, or publish without --stream")
    try:
        answer = json.loads(payload)
    except ValueError:
        raise NatsError(f"the NATS server {server.url} answered the publish with {payload[:200]!r}, not a "
                        "JetStream ack") from None
    if not isinstance(answer, dict):
        raise NatsError(f"the NATS server {server.url} answered the publish with {answer!r}, not a JetStream ack")
    error = answer.get("error")
    if error:
        raise NatsError(f"JetStream on {server.url} refused the message: {error.get('description') or error}")
    return Ack(str(answer.get("stream", "")), int(answer.get("seq", 0)))


def publish(server: Server, subject: str, payload: bytes, *, timeout: float, wants_ack: bool = False) -> Ack | None:
    """Publish one message and return once the server has it (and, with `wants_ack`, once a JetStream stream has
    stored it: its Ack). NatsError says why not, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
            connection = Connection(sock, server, deadline)
            op, _, info_text = connection.line().partition(" ")
            if op.upper() != "INFO":
                raise NatsError(f"{server.url} does not speak NATS (it said {op[:40]!r} first)")
            info = json.loads(info_text)
            if info.get("tls_required"):
                raise NatsError(f"the NATS server {server.url} requires TLS, which publish does not speak")
            limit = info.get("max_payload")
            if isinstance(limit, int) and len(payload) > limit:
                raise NatsError(f"the message is {len(payload)} bytes, over the {limit} the NATS server "
                                f"{server.url} takes (max_payload)")
            inbox = f"_INBOX.{secrets.token_hex(11)}" if wants_ack else ""
            request = b"CONNECT " + json.dumps(connect_options(server, wants_ack=wants_ack)).encode() + b"\r\n"
            if inbox:
                request += f"SUB {inbox} {ACK_SID}\r\n".encode()
            request += " ".join(filter(None, ("PUB", subject, inbox, str(len(payload))))).encode() + b"\r\n" + payload
            connection.send(request + b"\r\nPING\r\n")
            answered = None
            while True:
                op, args, block = connection.operation()
                if op == "PONG":
                    break
                answered = answered or (op, args, block)  # an ack may come before the PONG
            if not inbox:
                return None
            while answered is None:
                op, args, block = connection.operation()
                if op != "PONG":
                    answered = (op, args, block)
            return read_ack(server, subject, *answered)
    except socket.timeout:
        raise NatsError(f"no answer from the NATS server {server.url} within {timeout:g} s") from None
    except ValueError as error:  # the INFO's JSON
        raise NatsError(f"the NATS server {server.url} sent what NATS does not: {error}") from None
    except OSError as error:
        raise NatsError(f"cannot reach the NATS server {server.url}: {error.strerror or error}") from None
