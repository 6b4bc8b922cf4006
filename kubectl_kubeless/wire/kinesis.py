"""Amazon Kinesis's JSON API and AWS Signature Version 4, with the standard library: every detail of the wire lives
here.

Kinesis takes a POST to `/` of its endpoint with the action in `X-Amz-Target` (`Kinesis_20131202.PutRecords`) and a
JSON body (`application/x-amz-json-1.1`), signed with SigV4
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4-create-signed-request.html): a canonical form of
the request, hashed into a string to sign, HMAC'd with a key derived from the secret key, the date, the region and
the service. An error answers with a JSON `__type` (`ResourceInUseException`, sometimes prefixed by a namespace and
`#`) and a `message`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

SERVICE = "kinesis"
API_VERSION = "Kinesis_20131202"
CONTENT_TYPE = "application/x-amz-json-1.1"
ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


class KinesisError(Exception):
    """Kinesis refused the request, or could not be reached: one line naming the endpoint."""


def endpoint_for(region: str) -> str:
    """AWS's own endpoint of a region (what an empty --endpoint means)."""
    return f"https://kinesis.{region}.amazonaws.com"


# --- Signature Version 4 ----------------------------------------------------------------------------------------

def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret_access_key}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def canonical_query(query: str) -> str:
    """The query's parameters URI-encoded and sorted by name, then value."""
    pairs = [item.partition("=") for item in query.split("&") if item]
    return "&".join(f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
                    for name, _, value in sorted((n, e, v) for n, e, v in pairs))


def sign(method: str, url: str, headers: dict[str, str], body: bytes, credentials: Credentials, region: str,
         service: str, now: datetime) -> dict[str, str]:
    """The headers with X-Amz-Date and the Authorization that signs them all (Host must be among them)."""
    parts = urlsplit(url)
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    signed = {**headers, "X-Amz-Date": stamp}
    canonical = {name.lower(): " ".join(str(value).split()) for name, value in signed.items()}
    names = ";".join(sorted(canonical))
    request = "\n".join([method, quote(parts.path or "/", safe="/-_.~"), canonical_query(parts.query),
                         "".join(f"{name}:{canonical[name]}\n" for name in sorted(canonical)), names,
                         hashlib.sha256(body).hexdigest()])
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    signature = hmac.new(signing_key(credentials.secret_access_key, stamp[:8], region, service), to_sign.encode(),
                         hashlib.sha256).hexdigest()
    return {**signed, "Authorization": f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
                                       f"SignedHeaders={names}, Signature={signature}"}


# --- the JSON API -----------------------------------------------------------------------------------------------

def request(endpoint: str, action: str, body: dict, *, credentials: Credentials, region: str,
            now: datetime | None = None) -> tuple[str, dict[str, str], bytes]:
    """What `call` sends for an action: the URL, the signed headers and the body."""
    parts = urlsplit(endpoint)
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Host": parts.netloc, "Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{API_VERSION}.{action}"}
    url = f"{parts.scheme}://{parts.netloc}/"
    return url, sign("POST", url, headers, data, credentials, region, SERVICE, now or datetime.now(timezone.utc)), data


def error_text(status: int, reason: str, body: bytes) -> str:
    """`ResourceInUseException: Stream s already exists` from an error answer, else its status line."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("__type"):
        kind = str(answer["__type"]).rpartition("#")[2]
        message = answer.get("message") or answer.get("Message") or ""
        return f"{kind}: {message}" if message else kind
    text = body.decode(errors="replace").strip().splitlines()
    return f"{status} {reason}" + (f": {text[0][:200]}" if text else "")


def call(endpoint: str, action: str, body: dict, *, credentials: Credentials, region: str,
         timeout: float) -> dict:
    url, headers, data = request(endpoint, action, body, credentials=credentials, region=region)
    parts = urlsplit(url)
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", "/", body=data, headers=headers)
        response = connection.getresponse()
        answer = response.read()
    except OSError as error:  # refused, unresolvable, timed out, TLS
        raise KinesisError(f"cannot reach Kinesis at {endpoint}: {getattr(error, 'strerror', None) or error}") \
            from None
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        why = error_text(response.status, response.reason, answer)
        raise KinesisError(f"Kinesis at {endpoint} refused {action}: {why}")
    return json.loads(answer) if answer.strip() else {}


def put_records_body(stream: str, partition_key: str, records: list[bytes]) -> dict:
    return {"StreamName": stream, "Records": [{"Data": base64.b64encode(record).decode(),
                                               "PartitionKey": partition_key} for record in records]}


def failed_records(answer: dict) -> list[str]:
    """`record 2: ProvisionedThroughputExceededException (Rate exceeded)` for each record PutRecords did not store."""
    return [f"record {index}: {item.get('ErrorCode')} ({item.get('ErrorMessage', '')})"
            for index, item in enumerate(answer.get("Records") or [], start=1) if item.get("ErrorCode")]
