"""HTTP calls to functions, on one keep-alive connection per thread and function: a partition's messages follow one
another on the same connection instead of paying a TCP handshake each."""
from __future__ import annotations

import errno
import http.client
import socket
import threading
import urllib.parse

from kubeless_consumers.delivery import Unreachable

# Errors raised while connecting: the request was never sent, so the function did not run.
UNREACHABLE_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})


class HttpTransport:
    def __init__(self):
        self._local = threading.local()

    def _connection(self, netloc: str, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        connections = self._local.__dict__.setdefault("connections", {})
        connection = connections.get(netloc)
        if connection is not None:
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            return connection, True
        url = urllib.parse.urlsplit(f"http://{netloc}")
        connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
        try:
            connection.connect()
        except socket.gaierror as error:
            raise Unreachable(f"cannot resolve {url.hostname}: {error.strerror}") from None
        except TimeoutError:
            raise Unreachable(f"connecting to {netloc} timed out") from None
        except OSError as error:
            if error.errno in UNREACHABLE_ERRNOS:
                raise Unreachable(f"{netloc}: {error.strerror}") from None
            raise
        connections[netloc] = connection
        return connection, False

    def _drop(self, netloc: str) -> None:
        connection = self._local.__dict__.get("connections", {}).pop(netloc, None)
        if connection is not None:
            connection.close()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        parts = urllib.parse.urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for _ in (1, 2):
            connection, reused = self._connection(parts.netloc, timeout)
            try:
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop(parts.netloc)
                if reused:  # the server closed an idle keep-alive connection: send again on a new one
                    continue
                raise
            except (OSError, http.client.HTTPException) as error:
                self._drop(parts.netloc)
                if isinstance(error, http.client.HTTPException):
                    raise OSError(f"bad answer: {error}") from None
                raise
            if response.will_close:
                self._drop(parts.netloc)
            return response.status
        raise OSError("the connection closed twice")  # not reached: the second try raises
