"""HTTP and cron triggers on the local cluster: through a real ingress controller, and a real CronJob's calls.

The ingress controller is whatever serves the `nginx` and `traefik` IngressClasses and the Gateway the trigger
names; the local cluster runs Traefik for all three. A cluster without them (a plain kind) skips the HTTP tests.
Requests go to the address the trigger's status publishes, as a user would read it from `trigger http list`.
"""
from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

import pytest

from conftest import Cluster
from support import wait_until

ECHO = "def handler(event, context):\n    print('event', event, flush=True)\n    return 'hello through the trigger'\n"
FAILING = "def handler(event, context):\n    raise RuntimeError('the function broke on purpose')\n"


def kubeless(cluster: Cluster, namespace: str, *args: str, check: bool = True, timeout: float = 180):
    return cluster.run("kubectl", "kubeless", *args, "-n", namespace, check=check, timeout=timeout)


def deploy(cluster: Cluster, namespace: str, tmp_path: Path, name: str, code: str = ECHO, *extra: str) -> None:
    source = tmp_path / f"{name}.py"
    source.write_text(code)
    kubeless(cluster, namespace, "function", "deploy", name, "--runtime", "python3.11", "--from-file", str(source),
             "--handler", f"{name}.handler", *extra, "--wait")


def needs(cluster: Cluster, *objects: tuple[str, ...]) -> None:
    for obj in objects:
        if cluster.kubectl("get", *obj, check=False).returncode != 0:
            pytest.skip(f"this cluster has no {' '.join(obj)}: no ingress controller to test through")


def ready_trigger(cluster: Cluster, namespace: str, kind: str, name: str, timeout: float = 90) -> dict:
    cluster.kubectl("wait", "--for=condition=Ready", f"{kind}/{name}", "-n", namespace, f"--timeout={timeout}s",
                    timeout=timeout + 10)
    return cluster.get_json(kind, name, "-n", namespace)


def curl(*args: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of one request; curl is what the issue's users type."""
    result = subprocess.run(["curl", "-sS", "-i", "--max-time", "10", *args], capture_output=True, text=True,
                            timeout=30, check=True)
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    headers = {key.strip().lower(): value.strip() for key, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def through(trigger: dict, path: str = "", *args: str) -> tuple[int, dict[str, str], str]:
    host = trigger["spec"].get("host-name")
    return curl(*(["-H", f"Host: {host}"] if host else []), *args, f"http://{trigger['status']['address']}/{path}")


def answers(trigger: dict, path: str, code: int, *args: str):
    """Wait until the ingress controller has the route (it follows the API server within seconds)."""
    return wait_until(f"{code} from {path!r} through the ingress controller",
                      lambda: (got := through(trigger, path, *args))[0] == code and got, timeout=60)


@pytest.mark.parametrize("gateway", ["nginx", "traefik", "gateway-api"])
def test_an_http_trigger_routes_to_the_function_follows_a_new_path_and_goes_with_delete(
        plugin: Cluster, namespace: str, tmp_path: Path, gateway: str):
    needs(plugin, ("gateways.gateway.networking.k8s.io", "kubeless", "-n", "default") if gateway == "gateway-api"
          else ("ingressclass", gateway))
    deploy(plugin, namespace, tmp_path, "echo")
    kubeless(plugin, namespace, "trigger", "http", "create", "web", "--function-name", "echo", "--gateway", gateway,
             "--hostname", f"echo-{gateway}.test", "--path", "hello")
    trigger = ready_trigger(plugin, namespace, "httptrigger", "web")
    assert trigger["status"]["url"] == f"http://echo-{gateway}.test/hello"
    listing = kubeless(plugin, namespace, "trigger", "http", "list").stdout
    assert trigger["status"]["address"] in listing
    _, _, body = answers(trigger, "hello", 200)
    assert body == "hello through the trigger"

    kubeless(plugin, namespace, "trigger", "http", "update", "web", "--path", "other")
    answers(trigger, "other", 200)
    answers(trigger, "hello", 404)
    assert plugin.get_json("httptrigger", "web", "-n", namespace)["spec"]["host-name"] == f"echo-{gateway}.test", \
        "update changes only what it is given"

    kubeless(plugin, namespace, "trigger", "http", "delete", "web")
    answers(trigger, "other", 404)


def htpasswd_sha(user: str, password: str) -> str:
    return f"{user}:{{SHA}}{base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()}"


ORIGIN = "https://app.example"


def preflight(trigger: dict) -> tuple[int, dict[str, str], str]:
    """What a browser sends before a cross-origin POST: no credentials, ever."""
    return through(trigger, "", "-X", "OPTIONS", "-H", f"Origin: {ORIGIN}", "-H", "Access-Control-Request-Method: POST")


def allows_origin(answer: tuple[int, dict[str, str], str]) -> bool:
    return answer[1].get("access-control-allow-origin") in ("*", ORIGIN)


@pytest.mark.parametrize("gateway", ["nginx", "traefik"])
def test_basic_auth_and_cors_through_the_class(plugin: Cluster, namespace: str, tmp_path: Path, gateway: str):
    """The secret is the one Kubeless's docs make (`htpasswd` lines under `auth`), for either class."""
    needs(plugin, ("ingressclass", gateway))
    deploy(plugin, namespace, tmp_path, "guarded")
    plugin.kubectl("create", "secret", "generic", "users", "-n", namespace,
                   f"--from-literal=auth={htpasswd_sha('alice', 's3cret')}")
    for name, flags in (("guarded", ("--basic-auth-secret", "users", "--cors-enable")), ("open", ("--cors-enable",))):
        kubeless(plugin, namespace, "trigger", "http", "create", name, "--function-name", "guarded",
                 "--gateway", gateway, "--hostname", f"{name}-{gateway}.test", *flags)
    guarded = ready_trigger(plugin, namespace, "httptrigger", "guarded")
    answers(guarded, "", 401)
    _, _, body = answers(guarded, "", 200, "-u", "alice:s3cret")
    assert body == "hello through the trigger"
    assert through(guarded, "", "-u", "alice:wrong")[0] == 401
    assert allows_origin(through(guarded, "", "-u", "alice:s3cret", "-H", f"Origin: {ORIGIN}"))

    code, headers, _ = wait_until("a CORS preflight answered", lambda: (got := preflight(
        ready_trigger(plugin, namespace, "httptrigger", "open")))[0] in (200, 204) and got, timeout=60)
    assert allows_origin((code, headers, "")), headers
    if gateway == "traefik":  # its Middlewares answer the preflight before asking for credentials
        code, headers, _ = preflight(guarded)
        assert code in (200, 204) and allows_origin((code, headers, "")), headers


def test_a_tls_secret_serves_https_that_curl_verifies(plugin: Cluster, namespace: str, tmp_path: Path):
    needs(plugin, ("ingressclass", "nginx"))
    deploy(plugin, namespace, tmp_path, "secure")
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    subprocess.run([*openssl, "-keyout", tmp_path / "ca.key", "-out", tmp_path / "ca.pem", "-subj", "/CN=e2e test CA",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp_path / "tls.key",
                    "-out", tmp_path / "tls.csr", "-subj", "/CN=secure.test"], check=True, capture_output=True)
    (tmp_path / "ext").write_text("subjectAltName=DNS:secure.test\n")
    subprocess.run(["openssl", "x509", "-req", "-in", tmp_path / "tls.csr", "-CA", tmp_path / "ca.pem",
                    "-CAkey", tmp_path / "ca.key", "-CAcreateserial", "-days", "2", "-out", tmp_path / "tls.crt",
                    "-extfile", tmp_path / "ext"], check=True, capture_output=True)
    plugin.kubectl("create", "secret", "tls", "secure-tls", "-n", namespace, f"--cert={tmp_path / 'tls.crt'}",
                   f"--key={tmp_path / 'tls.key'}")
    kubeless(plugin, namespace, "trigger", "http", "create", "secure", "--function-name", "secure",
             "--hostname", "secure.test", "--tls-secret", "secure-tls")
    trigger = ready_trigger(plugin, namespace, "httptrigger", "secure")
    assert trigger["status"]["url"] == "https://secure.test/"
    address = trigger["status"]["address"]
    code, _, body = wait_until("HTTPS through the ingress controller", lambda: (got := curl(
        "--cacert", str(tmp_path / "ca.pem"), "--resolve", f"secure.test:443:{address}",
        "https://secure.test/"))[0] == 200 and got, timeout=60)
    assert body == "hello through the trigger"


def test_cron_triggers_call_on_schedule_with_the_event_and_show_a_failing_function(
        plugin: Cluster, namespace: str, tmp_path: Path):
    deploy(plugin, namespace, tmp_path, "tick")
    deploy(plugin, namespace, tmp_path, "broken", FAILING)
    kubeless(plugin, namespace, "trigger", "cronjob", "create", "tick-every-minute", "--function", "tick",
             "--schedule", "* * * * *", "--payload", '{"answer": 42}')
    kubeless(plugin, namespace, "trigger", "cronjob", "create", "broken-every-minute", "--function", "broken",
             "--schedule", "* * * * *")
    ready_trigger(plugin, namespace, "cronjobtrigger", "tick-every-minute")

    logs = wait_until("the scheduled call in the function's log", lambda: "cronjobtrigger.kubeless.io" in (
        out := kubeless(plugin, namespace, "function", "logs", "tick").stdout) and out, timeout=100, interval=3)
    line = next(line for line in logs.splitlines() if "cronjobtrigger.kubeless.io" in line)
    assert "'answer': 42" in line and "application/json" in line, line

    def last_result(name: str) -> dict:
        status = plugin.get_json("cronjobtrigger", name, "-n", namespace).get("status") or {}
        return status if status.get("lastResult") else {}

    assert wait_until("a finished call of the tick trigger", lambda: last_result("tick-every-minute"),
                      timeout=120, interval=3)["lastResult"] == "Succeeded"
    failed = wait_until("a finished call of the broken trigger", lambda: last_result("broken-every-minute"),
                        timeout=60, interval=3)
    assert failed["lastResult"] == "Failed"
    assert "the function answered 500" in failed["lastMessage"], failed
    ready = next(c for c in failed["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "LastCallFailed")
    listing = kubeless(plugin, namespace, "trigger", "cronjob", "list").stdout
    assert "Failed" in next(line for line in listing.splitlines() if line.startswith("broken-every-minute"))


def test_deploy_schedule_makes_a_running_trigger_and_delete_takes_every_trigger_with_the_function(
        plugin: Cluster, namespace: str, tmp_path: Path):
    deploy(plugin, namespace, tmp_path, "nightly", ECHO, "--schedule", "0 3 * * *")
    trigger = ready_trigger(plugin, namespace, "cronjobtrigger", "nightly")
    assert trigger["spec"]["schedule"] == "0 3 * * *"
    cron_job = plugin.get_json("cronjob", "nightly", "-n", namespace)
    assert cron_job["spec"]["schedule"] == "0 3 * * *"
    kubeless(plugin, namespace, "trigger", "http", "create", "nightly-web", "--function-name", "nightly",
             "--hostname", "nightly.test")
    wait_until("the http trigger to name its function as owner", lambda: plugin.get_json(
        "httptrigger", "nightly-web", "-n", namespace)["metadata"].get("ownerReferences"))

    kubeless(plugin, namespace, "function", "delete", "nightly")
    wait_until("the triggers and what they made to be collected", lambda: not plugin.get_json(
        "cronjobtriggers,httptriggers,cronjobs,ingresses", "-n", namespace)["items"], timeout=60)


@pytest.mark.parametrize("args, message", [
    (["http", "create", "t", "--function-name", "nope", "--hostname", "h.test"], "nope"),
    (["http", "create", "t", "--function-name", "fn", "--gateway", "haproxy"], "gateway"),
    (["http", "create", "t", "--function-name", "fn", "--hostname", "h.test", "--tls-secret", "s",
      "--enableTLSAcme"], "tls"),
    (["cronjob", "create", "t", "--function", "nope", "--schedule", "* * * * *"], "nope"),
    (["cronjob", "create", "t", "--function", "fn", "--schedule", "61 * * * *"], "schedule"),
    (["cronjob", "create", "t", "--function", "fn", "--schedule", "* * * * *", "--payload", "{not: json: ["],
     "payload"),
])
def test_bad_trigger_input_is_one_error_line_and_creates_nothing(plugin: Cluster, namespace: str, tmp_path: Path,
                                                                 args: list[str], message: str):
    if not plugin.get_json("functions", "-n", namespace)["items"]:
        deploy(plugin, namespace, tmp_path, "fn")
    result = kubeless(plugin, namespace, "trigger", *args, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0].lower(), result.stderr
    assert "Traceback" not in result.stderr
    assert not plugin.get_json("httptriggers,cronjobtriggers", "-n", namespace)["items"]
