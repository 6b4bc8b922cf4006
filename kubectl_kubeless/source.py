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


def checksum(data: bytes) -> str:
    import hashlib  # noqa: PLC0415 - start-up: loading OpenSSL takes ~3 ms that `version` and `--help` do not need

    return "sha256:" + hashlib.sha256(data).hexdigest()


def code_from_bytes(name: str, data: bytes) -> Code:
    """A local file's content as stored: text when it is UTF-8 (and no archive), base64 otherwise."""
    suffix = archive_suffix(name)
    if not suffix:
        try:
            return Code(data.decode("utf-8"), "text", checksum(data))
        except UnicodeDecodeError:
            pass
    return Code(base64.b64encode(data).decode("ascii"), "base64" + suffix, checksum(data))


def code_from_url(url: str, data: bytes) -> Code:
    """A URL is stored as is; `data` is what it served when the plugin fetched it, for the checksum."""
    return Code(url, "url" + archive_suffix(urlsplit(url).path), checksum(data))


def read_file(location: str, flag: str) -> bytes:
    if os.path.isdir(location):
        raise UserError(f"{flag} {location}: is a directory; give a file (an archive such as a .zip for several)")
    try:
        with open(location, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise UserError(f"{flag} {location}: {error.strerror or error}") from None


def download(url: str, flag: str) -> bytes:
    import urllib.error  # noqa: PLC0415 - start-up: urllib.request is slow to import; only URL sources need it
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as answer:  # noqa: S310 - http(s) only
            return answer.read()
    except urllib.error.HTTPError as error:
        raise UserError(f"{flag} {url}: the server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UserError(f"{flag} {url}: cannot download it: {reason}") from None


def read_code(location: str, fetch=download) -> Code:
    if is_url(location):
        return code_from_url(location, fetch(location, "--from-file"))
    return code_from_bytes(os.path.basename(location), read_file(location, "--from-file"))


def read_deps(location: str, fetch=download) -> str:
    """--dependencies: the file's text, or base64 when it is not UTF-8 (Kubeless' rule)."""
    data = fetch(location, "--dependencies") if is_url(location) else read_file(location, "--dependencies")
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
    limit = f"{meta.CONFIGMAP_LIMIT // (1024 * 1024)} MiB ({meta.CONFIGMAP_LIMIT} bytes)"
    if code and size > deps_size:
        encoded = " once base64-encoded" if code.content_type.startswith("base64") else ""
        raise UserError(f"--from-file {location} takes {size} bytes{encoded}, over the {limit} a function's "
                        f"ConfigMap holds; serve it from a URL instead: --from-file https://.../"
                        f"{os.path.basename(location)}")
    raise UserError(f"the code and --dependencies take {size + deps_size} bytes, over the {limit} a function's "
                    "ConfigMap holds; serve the code from a URL instead (--from-file https://...)")
