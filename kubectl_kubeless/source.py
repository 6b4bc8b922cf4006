"""A function's code as a Function stores it: the content, its content type and its checksum (Kubeless' rules).

- A local file that is valid UTF-8 is stored as `text`; any other file as `base64`. An archive (`.zip`, `.tar.gz`,
  ...) is always `base64`, with `+zip` or `+compressedtar` added, and the controller unpacks it.
- An `http(s)://` location is stored as `url` (plus the archive suffix of its path): the pods download it when they
  start. The plugin downloads it once, only to compute the checksum the pods then verify.
- The checksum is `sha256:<hex>` of the bytes as given (before base64).

A Function's code also lands in a ConfigMap, which holds at most meta.CONFIGMAP_LIMIT bytes: bigger code must be
served from a URL, and the check below says so before anything is sent.
"""
from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubeless_api import meta, schema
from kubectl_kubeless.errors import UserError

ARCHIVE_SUFFIXES = [(".zip", "+zip")] + [(ext, "+compressedtar") for ext in (
    ".tar.gz", ".taz", ".tgz", ".tar.bz2", ".tb2", ".tbz", ".tbz2", ".tz2", ".tar.xz")]
DOWNLOAD_TIMEOUT = 60


@dataclass(frozen=True)
class Code:
    """The three spec fields that carry the code: `function`, `function-content-type` and `checksum`."""
    function: str
    content_type: str
    checksum: str

    def spec(self) -> dict:
        return {"function": self.function, schema.CONTENT_TYPE: self.content_type, "checksum": self.checksum}


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def archive_suffix(name: str) -> str:
    lowered = name.lower()
    for extension, suffix in ARCHIVE_SUFFIXES:
        if lowered.endswith(extension):
            return suffix
    return ""


def hasher():
    import hashlib  # noqa: PLC0415 - start-up: loading OpenSSL takes ~3 ms that `version` and `--help` do not need

    return hashlib.sha256()


def checksum(data: bytes) -> str:
    digest = hasher()
    digest.update(data)
    return "sha256:" + digest.hexdigest()


def code_from_bytes(name: str, data: bytes) -> Code:
    """A local file's content as stored: text when it is UTF-8 (and no archive), base64 otherwise."""
    suffix = archive_suffix(name)
    if not suffix:
        try:
            return Code(data.decode("utf-8"), "text", checksum(data))
        except UnicodeDecodeError:
            pass
    check_archive(name, suffix, data)
    return Code(base64.b64encode(data).decode("ascii"), "base64" + suffix, checksum(data))


def code_from_url(url: str, chunks: Iterable[bytes]) -> Code:
    """A URL is stored as is; `chunks` are what it served when the plugin fetched it, for the checksum. They are
    hashed as they arrive, never held whole: code served from a URL is the code too big for a ConfigMap."""
    suffix = archive_suffix(urlsplit(url).path)
    digest, head = hasher(), b""
    for chunk in chunks:
        digest.update(chunk)
        if len(head) < MAGIC_LENGTH:
            head += chunk[:MAGIC_LENGTH]
    check_archive(url, suffix, head)
    return Code(url, "url" + suffix, "sha256:" + digest.hexdigest())


# The first bytes of what the controller unpacks: a zip (an empty one too), and tar's gzip, bzip2, xz and compress.
ARCHIVE_MAGIC = {"+zip": (b"PK\x03\x04", b"PK\x05\x06"),
                 "+compressedtar": (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x1f\x9d")}
MAGIC_LENGTH = max(len(magic) for magics in ARCHIVE_MAGIC.values() for magic in magics)


def check_archive(location: str, suffix: str, data: bytes) -> None:
    """An archive's name is a promise the pods keep only if the content is one: refuse it here, not in an init
    container."""
    if suffix and not data.startswith(ARCHIVE_MAGIC[suffix]):
        kind = "a zip archive" if suffix == "+zip" else "a compressed tar archive"
        raise UserError(f"--from-file {location}: the name says {kind}, but the content is not one; give a real "
                        "archive, or a name without the archive extension")


URL_CHARACTERS = r"[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]*"  # RFC 3986's, brackets aside (compiled on first use)


def location(value: str, flag: str) -> str:
    """A --from-file or --dependencies value: a path, or an http(s) URL that parses (host, port, no spaces)."""
    if "\n" in value or "\x00" in value:
        raise UserError(f"invalid {flag} {value!r}: a file name or URL on one line")
    if not is_url(value):
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as error:
        raise UserError(f"invalid {flag} URL {value!r}: {error} (expected http(s)://host[:port]/path)") from None
    userinfo, _, host_port = parts.netloc.rpartition("@")
    if host_port.startswith("["):
        host_port = host_port[host_port.index("]") + 1:]  # an IPv6 literal, whose brackets urlsplit has checked
    rest = value[len(f"{parts.scheme}://{parts.netloc}"):]  # the path, query and fragment
    if not parts.hostname or parts.port == 0 or not re.fullmatch(URL_CHARACTERS, userinfo + host_port + rest) \
            or re.search(r"%(?![0-9A-Fa-f]{2})", value):
        raise UserError(f"invalid {flag} URL {value!r}: expected http(s)://host[:port]/path, with spaces, brackets "
                        "and other special characters percent-encoded (%20)")
    return value


def too_big(flag: str, location: str, size: int, encoded: str = "") -> UserError:
    limit = f"{meta.CONFIGMAP_LIMIT // (1024 * 1024)} MiB ({meta.CONFIGMAP_LIMIT} bytes)"
    return UserError(f"{flag} {location} takes {size} bytes{encoded}, over the {limit} a function's ConfigMap "
                     f"holds; serve it from a URL instead: {flag} https://.../{os.path.basename(location)}")


def read_file(location: str, flag: str, limit: int = meta.CONFIGMAP_LIMIT,
              oversize: Callable[[str, str, int], UserError] = too_big) -> bytes:
    """A regular file of at most `limit` bytes (what a ConfigMap holds, unless told); a FIFO, a device or a huge
    file is refused before reading."""
    try:
        descriptor = os.open(location, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise UserError(f"{flag} {location}: {error.strerror or error}") from None
    status = os.fstat(descriptor)
    problem = ("is a directory; give a file (an archive such as a .zip for several)" if stat.S_ISDIR(status.st_mode)
               else None if stat.S_ISREG(status.st_mode) else "is not a regular file (a pipe or a device?); give a file")
    if problem or status.st_size > limit:
        os.close(descriptor)
        raise UserError(f"{flag} {location}: {problem}") if problem else oversize(flag, location, status.st_size)
    with os.fdopen(descriptor, "rb") as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as error:
            raise UserError(f"{flag} {location}: {error.strerror or error}") from None
    if len(data) > limit:  # it grew since fstat
        raise oversize(flag, location, len(data))
    return data


DOWNLOAD_CHUNK = 1024 * 1024


def download(url: str, flag: str) -> Iterator[bytes]:
    """What the URL serves, chunk by chunk."""
    import urllib.error  # noqa: PLC0415 - start-up: urllib.request is slow to import; only URL sources need it
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as answer:  # noqa: S310 - http(s) only
            while chunk := answer.read(DOWNLOAD_CHUNK):
                yield chunk
    except urllib.error.HTTPError as error:
        raise UserError(f"{flag} {url}: the server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UserError(f"{flag} {url}: cannot download it: {reason}") from None


def download_bounded(url: str, flag: str, fetch=download) -> bytes:
    """What the URL serves, refused (without reading on) beyond what a ConfigMap holds."""
    data = bytearray()
    for chunk in fetch(url, flag):
        data += chunk
        if len(data) > meta.CONFIGMAP_LIMIT:
            raise UserError(f"{flag} {url} serves more than the {meta.CONFIGMAP_LIMIT} bytes a function's "
                            "ConfigMap holds; the dependency file must fit in it")
    return bytes(data)


def read_code(location: str, fetch=download) -> Code:
    if is_url(location):
        return code_from_url(location, fetch(location, "--from-file"))
    return code_from_bytes(os.path.basename(location), read_file(location, "--from-file"))


def read_deps(location: str, fetch=download) -> str:
    """--dependencies: the file's text, or base64 when it is not UTF-8 (Kubeless' rule)."""
    data = (download_bounded(location, "--dependencies", fetch) if is_url(location)
            else read_file(location, "--dependencies"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii")


def check_size(location: str, code: Code | None, deps: str | None) -> None:
    """Refuse what the controller could not put into the function's ConfigMap."""
    size = len(code.function.encode()) if code else 0
    deps_size = len(deps.encode()) if deps else 0
    if size + deps_size <= meta.CONFIGMAP_LIMIT:
        return
    if code and size > deps_size:
        raise too_big("--from-file", location, size,
                      " once base64-encoded" if code.content_type.startswith("base64") else "")
    limit = f"{meta.CONFIGMAP_LIMIT // (1024 * 1024)} MiB ({meta.CONFIGMAP_LIMIT} bytes)"
    raise UserError(f"the code and --dependencies take {size + deps_size} bytes, over the {limit} a function's "
                    "ConfigMap holds; serve the code from a URL instead (--from-file https://...)")
