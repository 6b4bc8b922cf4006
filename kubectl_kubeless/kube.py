"""Talking to the cluster the way kubectl does: its global flags, its kubeconfig rules, and a thin JSON client.

Two halves. The first reads kubeconfig files with PyYAML alone, enough to answer "which namespace?" and "which
server?" without importing the `kubernetes` package, so `--help`, `version` and `--dryrun` stay fast. The second,
`Client`, sends plain HTTP with JSON bodies through a urllib3 connection pool, so every command sees the API's own
objects as dicts, and the service proxy (`function call`) and log streams (`function logs -f`) use the same path as
a GET.

Authentication: the static credentials of a kubeconfig (a CA, a client certificate and key, a bearer token or token
file, basic auth; files or inline data) are read here, with the stdlib's ssl module; a plain http:// server (what
`kubectl proxy` serves) gets no TLS at all, and HTTPS_PROXY/HTTP_PROXY/NO_PROXY are honoured as kubectl does (an
https server through a proxy is tunnelled with CONNECT). Everything else (exec plugins, auth-provider entries,
proxy-url, the in-cluster service account) goes through the `kubernetes` package, which gets them right; what it
would only log (a credential plugin that failed) is raised here instead.

The kubeconfig is checked before any request: a file of the wrong shape, an entry of the wrong type, a token with a
line break or `insecure-skip-tls-verify: "maybe"` is one `error:` line naming the entry (client-go refuses them too). Importing it costs the best part of a second (its client package loads every API model), which a
`function ls` would otherwise pay on every run.
"""
from __future__ import annotations

import base64
import json
import os
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

from kubeless_api import meta
from kubectl_kubeless.errors import UserError

DEFAULT_KUBECONFIG = "~/.kube/config"
# client-go's dialer gives up connecting after 30 s; reads have no limit unless --request-timeout says so.
CONNECT_TIMEOUT = 30.0
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class GlobalOptions:
    """kubectl's global flags, which every command takes and which mean what they mean to kubectl."""
    kubeconfig: str | None = None
    context: str | None = None
    cluster: str | None = None
    user: str | None = None
    namespace: str | None = None
    request_timeout: str = "0"


@dataclass(frozen=True)
class Target:
    """Where the requests go, as resolved from the flags and the kubeconfig files."""
    paths: tuple[str, ...]  # the kubeconfig files that exist, in precedence order; empty when in-cluster
    context: str | None
    cluster: str | None
    user: str | None
    namespace: str  # the context's namespace, else "default"
    server: str
    # the kubeconfig entries of the cluster and the user, relative file paths made absolute (empty when in-cluster)
    cluster_entry: dict = field(default_factory=dict, compare=False, repr=False)
    user_entry: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def kubeconfig(self) -> str:
        return os.pathsep.join(self.paths) if self.paths else "(in-cluster service account)"

    def describe(self) -> str:
        """How a message names the cluster: the server, and where it came from."""
        where = f"context \"{self.context}\" of kubeconfig {self.kubeconfig}" if self.context else self.kubeconfig
        return f"{self.server} ({where})"


# --- kubeconfig, the way kubectl reads it ----------------------------------------------------------------------

def kubeconfig_paths(flag: str | None, environ: dict[str, str] | None = None) -> list[str]:
    """--kubeconfig, else the files listed in $KUBECONFIG, else ~/.kube/config (kubectl's precedence)."""
    environ = os.environ if environ is None else environ
    if flag:
        return [os.path.expanduser(flag)]
    listed = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return [os.path.expanduser(p) for p in listed] or [os.path.expanduser(DEFAULT_KUBECONFIG)]


def merge_kubeconfigs(documents: list[dict]) -> dict:
    """kubectl's merge: for clusters, contexts and users the first file naming an entry wins; so does the first file
    that sets current-context."""
    merged: dict = {"clusters": {}, "contexts": {}, "users": {}, "current-context": ""}
    for document in documents:
        for section, key in (("clusters", "cluster"), ("contexts", "context"), ("users", "user")):
            for entry in document.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") and entry["name"] not in merged[section]:
                    merged[section][entry["name"]] = entry.get(key) or {}
        if not merged["current-context"] and document.get("current-context"):
            merged["current-context"] = document["current-context"]
    return merged


def resolve(options: GlobalOptions, environ: dict[str, str] | None = None) -> Target:
    """The target of the requests: reads the kubeconfig files (not the network) and checks that the named context,
    cluster and user exist, so a typo fails before any request with a message naming the file."""
    import yaml  # noqa: PLC0415 - start-up: only commands that need a namespace or a server pay for PyYAML

    environ = os.environ if environ is None else environ
    candidates = kubeconfig_paths(options.kubeconfig, environ)
    if options.kubeconfig and not os.path.exists(candidates[0]):
        raise UserError(f"kubeconfig {candidates[0]} does not exist (--kubeconfig)")
    paths = [p for p in candidates if os.path.isfile(p)]
    if not paths:
        if environ.get("KUBERNETES_SERVICE_HOST"):
            return in_cluster_target(options, environ)
        raise UserError(f"no kubeconfig: {os.pathsep.join(candidates)} does not exist; "
                        "set KUBECONFIG or pass --kubeconfig")
    documents = []
    for path in paths:
        try:
            documents.append(check_kubeconfig(yaml.safe_load(Path(path).read_text()) or {}, path))
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read kubeconfig {path}: {first_line(error)}") from None
    merged = merge_kubeconfigs(documents)
    kubeconfig = os.pathsep.join(paths)
    context_name = options.context or merged["current-context"]
    if not context_name:
        raise UserError(f"kubeconfig {kubeconfig} has no current context; pass --context")
    if context_name not in merged["contexts"]:
        raise UserError(f"context \"{context_name}\" not found in kubeconfig {kubeconfig}")
    context = merged["contexts"][context_name]
    cluster_name = options.cluster or context.get("cluster")
    if cluster_name not in merged["clusters"]:
        raise UserError(f"cluster \"{cluster_name}\" not found in kubeconfig {kubeconfig}")
    user_name = options.user or context.get("user")
    if options.user and user_name not in merged["users"]:
        raise UserError(f"user \"{user_name}\" not found in kubeconfig {kubeconfig}")
    cluster = check_cluster(merged["clusters"][cluster_name], f"cluster \"{cluster_name}\" in kubeconfig {kubeconfig}")
    server = cluster.get("server") or ""
    namespace = context.get("namespace") or "default"
    if not isinstance(namespace, str) or len(namespace) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?",
                                                                                 namespace):
        raise UserError(f"context \"{context_name}\" in kubeconfig {kubeconfig} has namespace {namespace!r}, which is "
                        "not a DNS-1123 label; fix the kubeconfig or pass -n")
    check_user(merged["users"].get(user_name) or {}, f"user \"{user_name}\" in kubeconfig {kubeconfig}")
    return Target(tuple(paths), context_name, cluster_name, user_name, namespace, server.rstrip("/"),
                  cluster_entry=absolute_paths(cluster, origin(documents, paths, "clusters", cluster_name),
                                               ("certificate-authority",)),
                  user_entry=absolute_paths(merged["users"].get(user_name) or {},
                                            origin(documents, paths, "users", user_name),
                                            ("client-certificate", "client-key", "tokenFile")))


# --- the shape of a kubeconfig: what client-go would refuse to unmarshal, refused here with the entry named ------

SECTIONS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))
CLUSTER_STRINGS = ("server", "certificate-authority", "certificate-authority-data", "tls-server-name", "proxy-url")
USER_STRINGS = ("token", "tokenFile", "username", "password", "client-certificate", "client-certificate-data",
                "client-key", "client-key-data")


def check_kubeconfig(document, path: str) -> dict:
    """A kubeconfig file is a mapping whose sections are lists of {name, <entry>} mappings."""
    if not isinstance(document, dict):
        raise UserError(f"kubeconfig {path} is not a kubeconfig: expected a mapping with clusters, contexts and "
                        f"users, found a {type(document).__name__}")
    if not isinstance(document.get("current-context") or "", str):
        raise UserError(f"kubeconfig {path}: current-context must be a string")
    for section, key in SECTIONS:
        entries = document.get(section) or []
        if not isinstance(entries, list):
            raise UserError(f"kubeconfig {path}: {section} must be a list of entries (- name: ..., {key}: ...)")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                    or not isinstance(entry.get(key) or {}, dict):
                raise UserError(f"kubeconfig {path}: {section}[{index}] must be a mapping with a name and a {key} "
                                "mapping")
    return document


def kubeconfig_bool(value, what: str) -> bool:
    """insecure-skip-tls-verify: a boolean; the strings "true" and "false" mean what they say (a string used to
    count as true, so "false" turned verification off)."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise UserError(f"{what}: insecure-skip-tls-verify must be true or false, not {value!r}")


def check_cluster(cluster: dict, where: str) -> dict:
    for key in CLUSTER_STRINGS:
        if not isinstance(cluster.get(key) or "", str):
            raise UserError(f"{where}: {key} must be a string")
    server = cluster.get("server") or ""
    if not server:
        raise UserError(f"{where} has no server")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s]*)?", server):
        raise UserError(f"{where}: server {server!r} is not an http(s)://host[:port] URL")
    return {**cluster, "insecure-skip-tls-verify": kubeconfig_bool(cluster.get("insecure-skip-tls-verify"), where)}


def check_user(user: dict, where: str) -> None:
    for key in USER_STRINGS:
        value = user.get(key)
        if value is not None and not isinstance(value, str):
            raise UserError(f"{where}: {key} must be a string")
    if any(character in (user.get("token") or "") for character in "\r\n\t "):
        raise UserError(f"{where}: the token has a line break or a space; give the token alone, on one line")
    exec_ = user.get("exec")
    if exec_ is not None and (not isinstance(exec_, dict) or not isinstance(exec_.get("command"), str)
                              or not exec_.get("command")):
        raise UserError(f"{where}: exec must be a mapping with a command (the credential plugin to run)")


def origin(documents: list[dict], paths: list[str], section: str, name: str | None) -> str:
    """The file whose entry won the merge (the first naming it): relative paths in an entry are relative to it."""
    for document, path in zip(documents, paths):
        if any(isinstance(e, dict) and e.get("name") == name for e in document.get(section) or []):
            return path
    return paths[0]


def absolute_paths(entry: dict, kubeconfig: str, keys: tuple[str, ...]) -> dict:
    base = os.path.dirname(os.path.abspath(kubeconfig))
    return {key: os.path.join(base, os.path.expanduser(value)) if key in keys and isinstance(value, str) and value
            else value for key, value in entry.items()}


def in_cluster_target(options: GlobalOptions, environ: dict[str, str]) -> Target:
    host, port = environ["KUBERNETES_SERVICE_HOST"], environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    try:
        namespace = IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    except OSError:
        namespace = "default"
    return Target((), None, None, None, namespace, f"https://{host}:{port}")


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


# A limit beyond a day is a typo (kubectl takes any); 0 says "no limit" plainly.
MAX_REQUEST_TIMEOUT = 24 * 3600.0


def parse_request_timeout(text: str, flag: str = "--request-timeout") -> float | None:
    """kubectl's --request-timeout: whole seconds, or a Go duration (1s, 2m, 1m30s); 0 means no limit."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        seconds = float(text)
    elif re.fullmatch(f"(?:{_DURATION.pattern})+", text):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))
    else:
        raise UserError(f"invalid {flag} \"{text}\": give whole seconds, or a number followed by a unit "
                        "(e.g. 1s, 2m, 3h)")
    if seconds > MAX_REQUEST_TIMEOUT:
        raise UserError(f"invalid {flag} \"{text}\": at most 24h (0 means no limit)")
    return seconds or None


def first_line(error: BaseException | str) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --- the API client ------------------------------------------------------------------------------------------------

class ApiError(UserError):
    """A non-2xx answer of the API server, with the fields of its Status object."""

    def __init__(self, status: int, reason: str, message: str, details: dict | None = None, *,
                 from_api: bool = True):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.details = details or {}
        self.from_api = from_api  # the answer was a Kubernetes Status, not some other server's page

    @property
    def resource_missing(self) -> bool:
        """404 for the API itself (a CRD not installed) rather than for one named object."""
        return self.status == 404 and self.from_api and not self.details.get("name")


def api_error(status: int, body: bytes, http_reason: str = "") -> ApiError:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        return ApiError(status, parsed.get("reason") or http_reason, parsed.get("message") or http_reason,
                        parsed.get("details"))
    text = first_line(body.decode(errors="replace"))[:300] if body.strip() else ""
    return ApiError(status, http_reason, f"{status} {http_reason}: {text}" if text else f"{status} {http_reason}",
                    from_api=False)


@dataclass
class Response:
    """A raw HTTP answer: the service proxy's and the log stream's, whose bodies are not the API's JSON."""
    status: int
    reason: str
    headers: dict[str, str]
    raw: object  # urllib3.HTTPResponse, not yet read
    server: str = ""  # Target.describe(), for a message
    limit: float | None = None  # the request's time limit

    def read(self) -> bytes:
        with self._reading():
            return self.raw.read()

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives (a log stream with -f never ends on its own)."""
        with self._reading():
            yield from self.raw.stream(64 * 1024)

    @contextmanager
    def _reading(self):
        import urllib3  # noqa: PLC0415 - start-up: cluster commands only

        try:
            yield
        except urllib3.exceptions.ReadTimeoutError:
            raise RequestTimeout(self.server, self.limit) from None
        except urllib3.exceptions.HTTPError as error:
            raise UserError(f"the answer of {self.server} broke off: {transport_reason(error)}") from None
        finally:
            self.raw.release_conn()


class RequestTimeout(UserError):
    """No answer within --request-timeout. The words are Kubeless' own ("Request timeout exceeded"): scripts grep
    for them."""

    def __init__(self, server: str, limit: float | None):
        super().__init__(f"Request timeout exceeded: no answer from {server} within {limit:g} s "
                         "(--request-timeout); give more, or 0 for no limit" if limit else
                         f"Request timeout exceeded: no answer from {server}")


class Client:
    """JSON over HTTPS to the API server named by a kubeconfig, authenticated by the `kubernetes` package."""

    def __init__(self, target: Target, request_timeout: float | None = None, *,
                 environ: dict[str, str] | None = None):
        self.target = target
        self.request_timeout = request_timeout
        self.environ = os.environ if environ is None else environ
        self._configuration = None
        self._static_headers: dict[str, str] = {}
        self._pool = None

    def _connect(self) -> None:
        if self._pool is not None:
            return
        if static_credentials(self.target):
            self._connect_static()
        else:
            self._connect_with_kubernetes()

    def _connect_static(self) -> None:
        """A pool for a kubeconfig whose credentials are files, inline data or a token: no `kubernetes` import."""
        import urllib3  # noqa: PLC0415 - start-up: cluster commands only (tests/unit/test_cli_help.py)

        cluster, user = self.target.cluster_entry, self.target.user_entry
        where = f"kubeconfig {self.target.kubeconfig}"
        self._static_headers = auth_headers(user, where)
        proxy = proxy_for(self.target.server, cluster.get("proxy-url"), self.environ)
        # maxsize: connections kept per host; `logs -f` holds one per pod (the kubernetes client keeps 5 per CPU)
        settings: dict = {"maxsize": 16}
        if self.target.server.startswith("https://"):
            insecure = bool(cluster.get("insecure-skip-tls-verify"))
            try:
                context = tls_context(cluster, user, insecure)
            except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
                raise UserError(f"cannot use the TLS settings of {where}: {first_line(error)}") from None
            if insecure:
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            settings.update(ssl_context=context, cert_reqs="CERT_NONE" if insecure else "CERT_REQUIRED",
                            assert_hostname=False if insecure else None,
                            server_hostname=cluster.get("tls-server-name") or None)
        # a plain http:// server (`kubectl proxy`) gets no TLS at all; through a proxy, https is tunnelled (CONNECT)
        self._pool = urllib3.ProxyManager(proxy, **settings) if proxy else urllib3.PoolManager(**settings)

    def _connect_with_kubernetes(self) -> None:
        from kubernetes.client import ApiClient  # noqa: PLC0415 - slow, cluster commands only

        self._configuration = self._kubernetes_configuration()
        self._pool = ApiClient(self._configuration).rest_client.pool_manager

    def _kubernetes_configuration(self):
        """The `kubernetes` package's Configuration for the target, whatever its credentials."""
        try:
            from kubernetes.client import Configuration  # noqa: PLC0415 - slow, cluster commands only
            from kubernetes.config import ConfigException  # noqa: PLC0415
        except ImportError:
            raise UserError("the `kubernetes` Python package is missing: pip install kubernetes "
                            "(or use the built plugin, dist/kubectl-kubeless)") from None

        configuration = Configuration()
        # insecure-skip-tls-verify is the kubeconfig author's choice; kubectl does not nag about it either.
        import urllib3  # noqa: PLC0415

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        exec_ = self.target.user_entry.get("exec") or {}
        if exec_ and not command_exists(exec_["command"], self.target.paths[0] if self.target.paths else ""):
            raise UserError(f"the credential plugin {exec_['command']!r} of the kubeconfig user {self.target.user} "
                            "is not installed (not found on PATH); install it, or fix users[].user.exec.command")
        # the kubernetes package logs a failed credential plugin and goes on without credentials: stop instead
        with logged_errors() as failures:
            try:
                if self.target.paths:
                    self._load_kubeconfig(configuration)
                else:
                    from kubernetes.config import load_incluster_config  # noqa: PLC0415

                    load_incluster_config(client_configuration=configuration)
            except ConfigException as error:
                raise UserError(f"cannot use kubeconfig {self.target.kubeconfig}: {first_line(error)}") from None
        if failures:
            raise UserError(f"cannot get the credentials of the kubeconfig user {self.target.user} "
                            f"(kubeconfig {self.target.kubeconfig}): {first_line(failures[0])}")
        if not configuration.proxy:  # the package reads proxy-url only; kubectl also honours HTTPS_PROXY
            configuration.proxy = proxy_for(self.target.server, None, self.environ)
        return configuration

    def _load_kubeconfig(self, configuration) -> None:
        from kubernetes.config.kube_config import KubeConfigLoader, KubeConfigMerger  # noqa: PLC0415

        merged = KubeConfigMerger(os.pathsep.join(self.target.paths)).config
        for node in merged.value.get("clusters") or []:  # the package reads the string "false" as true
            entry = getattr(node, "value", node)  # the files after the first are wrapped in ConfigNodes
            cluster = entry.get("cluster") or {}
            if "insecure-skip-tls-verify" in cluster:
                cluster["insecure-skip-tls-verify"] = kubeconfig_bool(cluster["insecure-skip-tls-verify"],
                                                                      f"cluster \"{entry.get('name')}\"")
        context = self.target.context
        if self.target.cluster or self.target.user:
            # --cluster and --user override the context's own: a context made of the chosen pair.
            context = "kubectl-kubeless/flags"
            merged.value["contexts"].insert(0, {"name": context, "context": {
                key: value for key, value in (("cluster", self.target.cluster), ("user", self.target.user))
                if value}})
        KubeConfigLoader(config_dict=merged, active_context=context, config_base_path=None).load_and_set(
            configuration)

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"User-Agent": f"kubectl-kubeless/{meta.project_version()}", "Accept": "application/json",
                   **self._static_headers}
        if self._configuration is not None:  # asked on each request: an exec plugin's token may be refreshed
            for setting in self._configuration.auth_settings().values():
                if setting.get("in") == "header" and setting.get("value"):
                    headers[setting["key"]] = setting["value"]
        headers.update(extra)
        return headers

    def request(self, method: str, path: str, *, query: dict | None = None, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float | None = None) -> Response:
        """Send one request and return the answer whatever its status; only a transport failure raises."""
        import urllib3  # noqa: PLC0415 - start-up: cluster commands only

        self._connect()
        url = self.target.server + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        limit = timeout if timeout is not None else self.request_timeout
        try:
            raw = self._pool.request(method, url, body=body, headers=self._headers(headers or {}),
                                     timeout=urllib3.Timeout(total=limit) if limit else
                                     urllib3.Timeout(connect=CONNECT_TIMEOUT, read=None),
                                     preload_content=False, retries=False, redirect=False)
        except urllib3.exceptions.ReadTimeoutError:
            raise RequestTimeout(self.target.describe(), limit) from None
        except urllib3.exceptions.HTTPError as error:
            raise UserError(f"cannot reach the Kubernetes API server {self.target.describe()}: "
                            f"{transport_reason(error)}") from None
        except ValueError as error:  # http.client refuses a header value (a token read from a file, say)
            raise UserError(f"cannot send the request to {self.target.describe()}: {first_line(error)}") from None
        return Response(raw.status, raw.reason or "", dict(raw.headers), raw, self.target.describe(), limit)

    def call(self, method: str, path: str, *, query: dict | None = None, body: dict | list | None = None,
             content_type: str = "application/json") -> dict:
        """A JSON request to the API: the answer's object, or ApiError with the server's own message."""
        data = json.dumps(body).encode() if body is not None else None
        response = self.request(method, path, query=query, body=data,
                                headers={"Content-Type": content_type} if data is not None else {})
        payload = response.read()
        if response.status == 401:
            raise ApiError(401, "Unauthorized", f"the API server {self.target.describe()} refused the credentials "
                                                f"of the kubeconfig user {self.target.user or ''} (401 Unauthorized)")
        if not 200 <= response.status < 300:
            raise api_error(response.status, payload, response.reason)
        return json.loads(payload) if payload else {}

    def get(self, path: str, **query) -> dict:
        return self.call("GET", path, query=query or None)

    def create(self, path: str, body: dict, field_manager: str = meta.CLIENT_FIELD_MANAGER) -> dict:
        return self.call("POST", path, query={"fieldManager": field_manager}, body=body)

    def merge_patch(self, path: str, patch: dict, field_manager: str = meta.CLIENT_FIELD_MANAGER) -> dict:
        return self.call("PATCH", path, query={"fieldManager": field_manager}, body=patch,
                         content_type="application/merge-patch+json")

    def delete(self, path: str) -> dict:
        return self.call("DELETE", path)

    def exec(self, namespace: str, pod: str, container: str, command: list[str], *, timeout: float) -> ExecResult:
        """Run a command in a container, as `kubectl exec` does (no TTY, no stdin): its exit code, stdout and stderr.
        The exec is a WebSocket upgrade, which the `kubernetes` package speaks."""
        from kubernetes.client import ApiClient, CoreV1Api  # noqa: PLC0415 - slow, exec only
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415
        from kubernetes.stream import stream  # noqa: PLC0415
        from kubernetes.stream.ws_client import ERROR_CHANNEL  # noqa: PLC0415

        where = f"pod {pod} (namespace {namespace}, container {container})"
        api = CoreV1Api(ApiClient(self._configuration or self._kubernetes_configuration()))
        try:
            session = stream(api.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                             command=command, stdin=False, stdout=True, stderr=True, tty=False,
                             _preload_content=False)
        except ApiException as error:
            raise api_error(error.status or 0, (error.body or "").encode() if isinstance(error.body, str)
                            else error.body or b"", error.reason or "") from None
        except Exception as error:  # noqa: BLE001 - websocket-client's and the socket's, which share no base
            raise UserError(f"cannot exec in {where} through {self.target.describe()}: {first_line(error)}") \
                from None
        out, err = [], []
        deadline = time.monotonic() + timeout
        try:
            while session.is_open():
                if time.monotonic() > deadline:
                    raise UserError(f"{' '.join(command)} in {where} did not finish within {timeout:g} s")
                session.update(timeout=1)
                out.append(session.read_stdout(timeout=0))
                err.append(session.read_stderr(timeout=0))
            out.append(session.read_stdout(timeout=0))
            err.append(session.read_stderr(timeout=0))
            status = session.read_channel(ERROR_CHANNEL)
        finally:
            session.close()
        return ExecResult(exec_exit_code(status, where), "".join(out), "".join(err))


@dataclass(frozen=True)
class ExecResult:
    code: int
    stdout: str
    stderr: str


def exec_exit_code(status_text: str, where: str) -> int:
    """The exit code in the Status an exec ends with (its error channel): Success is 0, a NonZeroExitCode names the
    code among its causes; anything else (no such executable, a container gone) is the API server's message."""
    import yaml  # noqa: PLC0415 - start-up: cluster commands only

    try:
        status = yaml.safe_load(status_text) if status_text else None
    except yaml.YAMLError:
        status = None
    if not isinstance(status, dict):
        raise UserError(f"the exec in {where} ended without an exit status (the connection broke off)")
    if status.get("status") == "Success":
        return 0
    for cause in meta.dig(status, "details", "causes", default=[]):
        if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
            return int(cause["message"])
    raise UserError(f"the exec in {where} failed: {first_line(status.get('message') or status)}")


# --- static kubeconfig credentials ------------------------------------------------------------------------------

# What only the `kubernetes` package (or kubectl) knows how to do: run a credential plugin, refresh an OIDC or cloud
# token, tunnel through a proxy-url.
NEEDS_KUBERNETES = {"user": ("exec", "auth-provider"), "cluster": ("proxy-url",)}


def static_credentials(target: Target) -> bool:
    """True when the kubeconfig's entries are all this module reads itself (and there is a kubeconfig at all)."""
    return bool(target.paths) and not any(
        target.user_entry.get(key) for key in NEEDS_KUBERNETES["user"]) and not any(
        target.cluster_entry.get(key) for key in NEEDS_KUBERNETES["cluster"])


def inline_data(entry: dict, key: str) -> bytes | None:
    """A `<key>-data` value: base64 of a PEM file."""
    value = entry.get(f"{key}-data")
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=False)
    except ValueError:
        raise ValueError(f"{key}-data is not base64") from None


def tls_context(cluster: dict, user: dict, insecure: bool):
    """The cluster's CA (else the system's roots, as kubectl), and the user's client certificate when it has one."""
    import ssl  # noqa: PLC0415 - start-up: cluster commands only

    ca_data = inline_data(cluster, "certificate-authority")
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=None if ca_data else cluster.get("certificate-authority") or None,
                                             cadata=ca_data.decode("ascii", "replace") if ca_data else None)
    cert_data, key_data = inline_data(user, "client-certificate"), inline_data(user, "client-key")
    cert_file, key_file = user.get("client-certificate"), user.get("client-key")
    if cert_data or key_data:
        # load_cert_chain reads files only: the data goes through a private folder that is gone right after.
        with tempfile.TemporaryDirectory(prefix="kubectl-kubeless-") as folder:
            if cert_data:
                cert_file = os.path.join(folder, "client.crt")
                Path(cert_file).write_bytes(cert_data)
            if key_data:
                key_file = os.path.join(folder, "client.key")
                Path(key_file).write_bytes(key_data)
            context.load_cert_chain(cert_file, key_file or None)
    elif cert_file:
        context.load_cert_chain(cert_file, key_file or None)
    return context


def auth_headers(user: dict, where: str) -> dict[str, str]:
    """A bearer token (inline or tokenFile, read now) or basic auth, as client-go sends them."""
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            token = Path(user["tokenFile"]).read_text().strip()
        except OSError as error:
            raise UserError(f"cannot read the tokenFile of {where}: {first_line(error)}") from None
    if token and any(character in token for character in "\r\n"):
        raise UserError(f"the tokenFile of {where} has more than one line; it must hold the token alone")
    if token:
        return {"Authorization": f"Bearer {token}"}
    if user.get("username"):
        pair = f"{user['username']}:{user.get('password') or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return {}


def command_exists(command: str, kubeconfig: str) -> bool:
    """client-go's rule for exec.command: a bare name is looked up on PATH, a relative path is relative to the
    kubeconfig's folder."""
    import shutil  # noqa: PLC0415 - start-up: exec credential plugins only

    if os.sep not in command:
        return shutil.which(command) is not None
    path = os.path.join(os.path.dirname(os.path.abspath(kubeconfig)), os.path.expanduser(command))
    return os.path.isfile(path) and os.access(path, os.X_OK)


@contextmanager
def logged_errors() -> Iterator[list[str]]:
    """The errors the kubernetes package logs instead of raising (a credential plugin that failed), collected
    rather than printed."""
    import logging  # noqa: PLC0415 - start-up: ~4 ms, for commands that use the kubernetes package only

    messages: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: messages.append(record.getMessage())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield messages
    finally:
        root.removeHandler(handler)


def proxy_for(server: str, proxy_url: str | None, environ: dict[str, str]) -> str | None:
    """The proxy a request to `server` goes through, as kubectl picks it: the cluster's proxy-url, else
    HTTPS_PROXY (https) or HTTP_PROXY (http), upper or lower case, unless NO_PROXY names the host; never for
    localhost or a loopback address (Go's http.ProxyFromEnvironment)."""
    from urllib.parse import urlsplit  # noqa: PLC0415 - already loaded by urlencode's module

    if proxy_url:
        return proxy_url
    parts = urlsplit(server)
    host, port = (parts.hostname or "").lower(), str(parts.port or (443 if parts.scheme == "https" else 80))
    if not host or host == "localhost" or host.endswith(".localhost") or is_loopback(host):
        return None
    name = "HTTPS_PROXY" if parts.scheme == "https" else "HTTP_PROXY"
    proxy = environ.get(name) or environ.get(name.lower())
    if not proxy or excluded(host, port, environ.get("NO_PROXY") or environ.get("no_proxy") or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def is_loopback(host: str) -> bool:
    import ipaddress  # noqa: PLC0415 - start-up: cluster commands only

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def excluded(host: str, port: str, no_proxy: str) -> bool:
    """NO_PROXY: `*`, host names (also matching their subdomains; a leading dot too), IPs, CIDRs, any with :port."""
    import ipaddress  # noqa: PLC0415

    for entry in (item.strip().lower() for item in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry.strip("[]"), strict=False):
                return True
            continue
        except ValueError:
            pass
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != port:
            continue
        name = name.lstrip("*").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def transport_reason(error: Exception) -> str:
    """The root cause of a urllib3 failure in a few words (Connection refused, certificate verify failed, ...)."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            return current.strerror or first_line(current)
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)
    return re.sub(r"<[^>]+>: ", "", first_line(error))
