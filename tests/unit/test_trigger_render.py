"""The trigger renderers and status readers (pure), and the cron call's script run for real against a local server."""
from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading

import pytest

from kubeless_api import conditions, contract, schema
from kubeless_controller.runner import Unready
from kubeless_controller.triggers import cron
from kubeless_controller.triggers import http as http_trigger


def trigger(kind: str = "HTTPTrigger", annotations: dict | None = None, **spec) -> dict:
    return {"apiVersion": "kubeless.io/v1beta1", "kind": kind,
            "metadata": {"name": "hello-trigger", "namespace": "ns", "uid": "uid-1", "generation": 2,
                         "labels": {"created-by": "kubeless", "team": "a"}, "annotations": annotations or {}},
            "spec": {schema.FUNCTION_NAME: "hello", **spec}}


def function(timeout: str | None = "30") -> dict:
    return {"apiVersion": "kubeless.io/v1beta1", "kind": "Function",
            "metadata": {"name": "hello", "namespace": "ns", "uid": "fn-uid"},
            "spec": {"timeout": timeout} if timeout else {}}


def reason_of(call) -> str:
    with pytest.raises(Unready) as raised:
        call()
    return raised.value.problem.reason


# --- HTTP -------------------------------------------------------------------------------------------------------

def test_an_nginx_ingress_routes_the_path_to_the_services_port_with_kubeless_annotations():
    rendered = http_trigger.ingress(trigger(**{schema.HOST_NAME: "hello.example.com", "path": "echo"}), "hello", 8081)
    assert rendered["spec"]["ingressClassName"] == "nginx"
    rule = rendered["spec"]["rules"][0]
    assert rule["host"] == "hello.example.com"
    assert rule["http"]["paths"] == [{"path": "/echo", "pathType": "Prefix", "backend": {
        "service": {"name": "hello", "port": {"number": 8081}}}}]
    assert rendered["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/rewrite-target": "/"}
    assert rendered["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert rendered["metadata"]["labels"] == {"created-by": "kubeless", "team": "a"}
    assert "tls" not in rendered["spec"]


def test_a_path_given_with_its_slash_is_not_doubled():
    assert http_trigger.route_path({"path": "/echo"}) == "/echo"
    assert http_trigger.route_path({}) == "/"


@pytest.mark.parametrize("gateway, expected", [
    ("nginx", {"nginx.ingress.kubernetes.io/enable-cors": "true",
               "nginx.ingress.kubernetes.io/auth-type": "basic", "nginx.ingress.kubernetes.io/auth-secret": "users"}),
    ("traefik", {"ingress.kubernetes.io/enable-cors": "true", "ingress.kubernetes.io/auth-type": "basic",
                 "ingress.kubernetes.io/auth-secret": "users",
                 "traefik.ingress.kubernetes.io/router.middlewares":
                     "ns-hello-trigger-cors@kubernetescrd,ns-hello-trigger-basic-auth@kubernetescrd"}),
])
def test_cors_and_basic_auth_annotations_follow_the_gateway(gateway: str, expected: dict):
    annotations = http_trigger.ingress_annotations(trigger(gateway=gateway, **{schema.CORS_ENABLE: True,
                                                                        schema.BASIC_AUTH_SECRET: "users"}))
    assert {key: value for key, value in annotations.items() if "rewrite" not in key} == expected


def test_traefik_does_cors_then_basic_auth_through_a_middleware_each():
    cors, auth = http_trigger.traefik_middlewares(trigger(gateway="traefik", **{schema.CORS_ENABLE: True,
                                                                              schema.BASIC_AUTH_SECRET: "users"}))
    assert {(m["apiVersion"], m["kind"]) for m in (cors, auth)} == {("traefik.io/v1alpha1", "Middleware")}
    assert (cors["metadata"]["name"], auth["metadata"]["name"]) == ("hello-trigger-cors", "hello-trigger-basic-auth")
    assert auth["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert auth["spec"] == {"basicAuth": {"secret": "users"}}
    assert cors["spec"]["headers"]["accessControlAllowOriginList"] == ["*"]
    assert "OPTIONS" in cors["spec"]["headers"]["accessControlAllowMethods"]


@pytest.mark.parametrize("gateway, spec", [("traefik", {}), ("nginx", {schema.CORS_ENABLE: True}),
                                           ("kong", {schema.CORS_ENABLE: True})])
def test_no_middleware_without_traefik_and_something_for_it_to_do(gateway: str, spec: dict):
    assert http_trigger.traefik_middlewares(trigger(gateway=gateway, **spec)) == []
    assert "traefik.ingress.kubernetes.io/router.middlewares" not in http_trigger.ingress_annotations(
        trigger(gateway=gateway, **spec))


def test_the_triggers_own_annotations_win_but_kubectls_bookkeeping_is_left_out():
    own = {"nginx.ingress.kubernetes.io/rewrite-target": "/v2",
           "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    annotations = http_trigger.ingress_annotations(trigger(annotations=own))
    assert annotations == {"nginx.ingress.kubernetes.io/rewrite-target": "/v2"}


def test_kong_with_basic_auth_is_an_invalid_spec():
    assert reason_of(lambda: http_trigger.ingress_annotations(
        trigger(gateway="kong", **{schema.BASIC_AUTH_SECRET: "users"}))) == conditions.REASON_INVALID_SPEC


def test_tls_from_a_secret_or_from_acme_and_never_both():
    assert http_trigger.tls(trigger(**{schema.HOST_NAME: "h", schema.TLS_SECRET: "cert"})) == [
        {"hosts": ["h"], "secretName": "cert"}]
    acme = trigger(**{schema.HOST_NAME: "h", "tls": True})
    assert http_trigger.tls(acme) == [{"hosts": ["h"], "secretName": "hello-trigger-tls"}]
    assert http_trigger.ingress_annotations(acme)["kubernetes.io/tls-acme"] == "true"
    assert reason_of(lambda: http_trigger.tls(trigger(**{schema.TLS_SECRET: "cert", "tls": True}))) == \
        conditions.REASON_INVALID_SPEC


def test_an_http_route_attaches_to_the_named_gateway():
    route = http_trigger.http_route(trigger(gateway="gateway-api", path="echo", **{schema.GATEWAY_REF: "edge/public"}),
                            "hello", 8080)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"][0] | {} == {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                                   "namespace": "edge", "name": "public"}
    assert route["spec"]["rules"] == [{"matches": [{"path": {"type": "PathPrefix", "value": "/echo"}}],
                                       "backendRefs": [{"name": "hello", "port": 8080}]}]
    assert "hostnames" not in route["spec"]


def test_the_gateway_ref_defaults_and_a_bare_name_is_in_the_triggers_namespace():
    assert http_trigger.gateway_ref(trigger()) == tuple(schema.DEFAULT_GATEWAY_REF.split("/"))
    assert http_trigger.gateway_ref(trigger(**{schema.GATEWAY_REF: "public"})) == ("ns", "public")


@pytest.mark.parametrize("field", [schema.BASIC_AUTH_SECRET, schema.TLS_SECRET])
def test_what_an_http_route_cannot_carry_is_an_invalid_spec(field: str):
    assert reason_of(lambda: http_trigger.http_route(trigger(gateway="gateway-api", **{field: "x"}), "hello", 8080)) == \
        conditions.REASON_INVALID_SPEC


def test_the_address_and_url_come_from_the_published_status():
    assert http_trigger.ingress_address({"status": {"loadBalancer": {"ingress": [{"ip": "10.1.2.3"}]}}}) == "10.1.2.3"
    assert http_trigger.ingress_address({"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}}) == \
        "lb.example"
    assert http_trigger.ingress_address({"status": {}}) == ""
    assert http_trigger.url(trigger(path="echo"), "10.1.2.3") == "http://10.1.2.3/echo"
    assert http_trigger.url(trigger(**{schema.HOST_NAME: "h", schema.TLS_SECRET: "c"}), "10.1.2.3") == "https://h/"
    assert http_trigger.gateway_address({"status": {"addresses": [{"type": "IPAddress", "value": "10.1.2.3"}]}}) == \
        "10.1.2.3"


def test_an_http_routes_acceptance_is_read_from_its_parents():
    route = {"status": {"parents": [{"conditions": [{"type": "Accepted", "status": "False", "reason": "NotAllowed",
                                                     "message": "no"}]}]}}
    assert http_trigger.route_acceptance(route)["reason"] == "NotAllowed"
    assert http_trigger.route_acceptance({}) == {}


# --- cron -------------------------------------------------------------------------------------------------------

def test_a_cron_job_calls_the_functions_service_with_the_event_namespace_and_payload():
    job = cron.cron_job(trigger("CronJobTrigger", schedule="* * * * *", payload={"a": 1}), function(), 8081,
                        "localhost/kubeless/provision:1", "pull")
    assert job["metadata"]["name"] == "hello-trigger"
    assert job["spec"]["schedule"] == "* * * * *"
    template = job["spec"]["jobTemplate"]
    assert template["spec"]["backoffLimit"] == 0
    assert template["spec"]["activeDeadlineSeconds"] == 30 + cron.START_MARGIN_SECONDS
    pod = template["spec"]["template"]["spec"]
    env = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
    assert env["URL"] == "http://hello.ns.svc:8081/"
    assert env["PAYLOAD"] == '{"a":1}'
    assert env["EVENT_NAMESPACE"] == contract.EVENT_NAMESPACE_CRON
    assert env["TIMEOUT"] == "30"
    assert pod["imagePullSecrets"] == [{"name": "pull"}]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False


def test_the_calls_pods_pass_restricted_and_never_carry_the_functions_labels():
    job = cron.cron_job(trigger("CronJobTrigger", schedule="@hourly"), function(None), 8080, "img")
    template = job["spec"]["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["labels"] == {cron.LABEL_TRIGGER: "hello-trigger"}
    container = template["spec"]["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True
    assert "PAYLOAD" not in {item["name"] for item in container["env"]}
    assert job["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 180 + cron.START_MARGIN_SECONDS


def test_a_trigger_name_too_long_for_a_cron_job_is_an_invalid_spec():
    long = trigger("CronJobTrigger", schedule="@hourly")
    long["metadata"]["name"] = "x" * 53
    assert reason_of(lambda: cron.cron_job(long, function(), 8080, "img")) == conditions.REASON_INVALID_SPEC


def job(name: str, outcome: str | None, at: str) -> dict:
    status = {}
    if outcome == "Complete":
        status = {"completionTime": at, "conditions": [{"type": "Complete", "status": "True"}]}
    elif outcome == "Failed":
        status = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                  "lastTransitionTime": at}]}
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": at}, "status": status}


def test_the_last_finished_job_decides_the_last_result():
    jobs = [job("a", "Complete", "2026-01-01T00:01:00Z"), job("b", "Failed", "2026-01-01T00:02:00Z"),
            job("c", None, "2026-01-01T00:03:00Z")]
    assert cron.last_finished(jobs)["metadata"]["name"] == "b"
    assert cron.job_outcome(jobs[1]) == ("Failed", "BackoffLimitExceeded")
    assert cron.job_outcome(jobs[2]) is None
    assert cron.last_finished([jobs[2]]) is None


def test_a_failed_calls_message_is_what_its_pod_said():
    pod = {"status": {"containerStatuses": [{"state": {"terminated": {
        "exitCode": 1, "message": "the function answered 500: boom\n"}}}]}}
    assert cron.pod_message([pod]) == "the function answered 500: boom"
    assert cron.pod_message([]) == ""


class Recorder(http.server.BaseHTTPRequestHandler):
    answers: list[tuple[int, bytes]] = []
    seen: list[dict] = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append({"method": self.command, "headers": dict(self.headers.items()),
                          "body": self.rfile.read(length).decode()})
        code, body = self.answers.pop(0)
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Recorder.answers, Recorder.seen = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def run_call(url: str, payload: str | None) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "URL": url, "TIMEOUT": "5", "POD_UID": "pod-uid-1",
           "EVENT_NAMESPACE": contract.EVENT_NAMESPACE_CRON}
    if payload is not None:
        env["PAYLOAD"] = payload
    return subprocess.run(["/bin/sh", "-c", cron.CALL_SCRIPT], env=env, capture_output=True, text=True, timeout=30)


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="the call script runs curl")


@needs_curl
def test_the_call_posts_the_payload_with_the_event_headers_and_succeeds_on_2xx(server: str):
    Recorder.answers = [(200, b"pong")]
    result = run_call(server, '{"a":1}')
    assert result.returncode == 0, result.stderr
    assert result.stdout == "pong"
    call = Recorder.seen[0]
    headers = {key.lower(): value for key, value in call["headers"].items()}
    assert call["method"] == "POST" and json.loads(call["body"]) == {"a": 1}
    assert headers["content-type"] == "application/json"
    assert headers["event-id"] == "pod-uid-1"
    assert headers["event-namespace"] == contract.EVENT_NAMESPACE_CRON
    assert headers["event-type"] == "application/json"
    assert headers["event-time"].endswith("Z")


@needs_curl
def test_the_call_without_payload_is_a_get(server: str):
    Recorder.answers = [(204, b"")]
    assert run_call(server, None).returncode == 0
    assert Recorder.seen[0]["method"] == "GET"


@needs_curl
@pytest.mark.parametrize("code", [500, 404, 302])
def test_the_call_fails_on_anything_but_2xx_and_says_what_the_function_answered(server: str, code: int):
    Recorder.answers = [(code, b"boom\nsecond line")]
    result = run_call(server, "{}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"the function answered {code}: boom")


@needs_curl
def test_a_function_that_cannot_be_reached_fails_the_call():
    result = run_call("http://127.0.0.1:9/", None)
    assert result.returncode != 0 and "curl" in result.stderr


def test_a_payload_too_big_for_the_calls_environment_is_an_invalid_spec():
    big = trigger("CronJobTrigger", schedule="@hourly", payload={"data": "x" * schema.CRON_PAYLOAD_MAX_BYTES})
    assert reason_of(lambda: cron.cron_job(big, function(), 8080, "img")) == conditions.REASON_INVALID_SPEC
