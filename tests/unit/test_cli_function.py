"""The Function objects the plugin writes, and how it reads them back (ls, describe), without a cluster."""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

import pytest
from test_cli_main import PROXY, FakeClient, calling, run

from kubeless_api import contract
from kubectl_kubeless import objects, readiness
from kubectl_kubeless.function import call, listing, spec
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.function.spec import FunctionOptions, build_function, update_patch
from kubectl_kubeless.source import Code

CODE = Code("def handler(event, context):\n    return 'hi'\n", "text", "sha256:" + "a" * 64)


def deploy_args(**given) -> argparse.Namespace:
    """What argparse gives deploy when only `given` is on the command line."""
    values = dict(name="hello", runtime="python3.11", handler="hello.handler", from_file="hello.py",
                  dependencies=None, label=None, secrets=None, env=None, node_selectors=None, service_account=None,
                  schedule=None, memory=None, cpu=None, runtime_image=None, image_pull_policy=None, timeout=None,
                  port=None, service_port=None, headless=False)
    values.update(given)
    return argparse.Namespace(**values)


def options(**given) -> FunctionOptions:
    parsed = spec.parse_options(deploy_args(**given), deploy=True)
    parsed.namespace = "ns"
    parsed.code = CODE
    return parsed


def pod_spec(fn: dict) -> dict:
    return fn["spec"]["deployment"]["spec"]["template"]["spec"]


# --- deploy: flags -> Function ---------------------------------------------------------------------------------

def test_a_minimal_function_is_shaped_like_kubeless_made_it():
    fn = build_function(options())
    assert fn["apiVersion"] == "kubeless.io/v1beta1" and fn["kind"] == "Function"
    assert fn["metadata"] == {"name": "hello", "namespace": "ns",
                              "labels": {"created-by": "kubeless", "function": "hello"}}
    spec = fn["spec"]
    assert spec["handler"] == "hello.handler" and spec["runtime"] == "python3.11"
    assert spec["function"] == CODE.function and spec["function-content-type"] == "text"
    assert spec["checksum"] == CODE.checksum
    assert spec["timeout"] == "180"
    assert "deps" not in spec
    assert pod_spec(fn) == {"containers": [{"imagePullPolicy": "IfNotPresent"}]}
    assert spec["service"] == {
        "ports": [{"name": "http-function-port", "port": 8080, "targetPort": 8080, "protocol": "TCP"}],
        "selector": {"created-by": "kubeless", "function": "hello"}, "type": "ClusterIP"}


def test_every_deploy_flag_lands_where_kubeless_put_it():
    fn = build_function(options(label=["team=web,tier:front"], env=["A=1,B:2", "URL=http://x:8080"],
                                secrets=["db,api"], node_selectors=["disk=ssd"], service_account="runner",
                                memory="128Mi", cpu="250m", runtime_image="localhost/me:1",
                                image_pull_policy="Never", timeout="30", port=9000, service_port=80,
                                headless=True))
    labels = {"created-by": "kubeless", "function": "hello", "team": "web", "tier": "front"}
    assert fn["metadata"]["labels"] == labels
    pod = pod_spec(fn)
    container = pod["containers"][0]
    assert container["image"] == "localhost/me:1" and container["imagePullPolicy"] == "Never"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"},
                                {"name": "URL", "value": "http://x:8080"}]
    assert container["resources"] == {"requests": {"memory": "128Mi", "cpu": "250m"},
                                      "limits": {"memory": "128Mi", "cpu": "250m"}}
    assert container["volumeMounts"] == [{"name": "db-vol", "mountPath": "/db"},
                                         {"name": "api-vol", "mountPath": "/api"}]
    assert pod["volumes"] == [{"name": "db-vol", "secret": {"secretName": "db"}},
                              {"name": "api-vol", "secret": {"secretName": "api"}}]
    assert pod["nodeSelector"] == {"disk": "ssd"} and pod["serviceAccountName"] == "runner"
    assert fn["spec"]["timeout"] == "30"
    service = fn["spec"]["service"]
    assert service["ports"][0] == {"name": "http-function-port", "port": 80, "targetPort": 9000, "protocol": "TCP"}
    assert service["clusterIP"] == "None" and service["selector"] == labels


def test_only_the_given_quantity_is_set():
    container = pod_spec(build_function(options(memory="64Mi")))["containers"][0]
    assert container["resources"] == {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}


def test_dependencies_go_to_spec_deps():
    parsed = options()
    parsed.deps = "requests==2.32.3\n"
    assert build_function(parsed)["spec"]["deps"] == "requests==2.32.3\n"


def test_a_custom_image_needs_no_runtime_handler_or_code():
    parsed = spec.parse_options(deploy_args(runtime=None, handler=None, from_file=None,
                                                     runtime_image="localhost/me:1"), deploy=True)
    fn = build_function(parsed)
    assert "runtime" not in fn["spec"] and "handler" not in fn["spec"] and "function" not in fn["spec"]
    assert pod_spec(fn)["containers"][0]["image"] == "localhost/me:1"


def test_schedule_makes_a_cron_job_trigger_named_after_the_function():
    trigger = spec.cron_trigger(options(schedule="*/5 * * * *"))
    assert trigger == {"apiVersion": "kubeless.io/v1beta1", "kind": "CronJobTrigger",
                       "metadata": {"name": "hello", "namespace": "ns",
                                    "labels": {"created-by": "kubeless", "function": "hello"}},
                       "spec": {"schedule": "*/5 * * * *", "function-name": "hello"}}


@pytest.mark.parametrize(("given", "message"), [
    (dict(name="Hello_World"), "DNS-1035 label"),
    (dict(name="a" * 64), "DNS-1035 label"),
    (dict(handler="hello"), "<module>.<function>"),
    (dict(handler="hello.world.x"), "<module>.<function>"),
    (dict(handler=None), "--handler is required with --runtime"),
    (dict(runtime=None), "either --runtime or --runtime-image"),
    (dict(from_file=None), "--from-file is required"),
    (dict(env=["NOSEPARATOR"]), "expected KEY=VALUE (or KEY:VALUE)"),
    (dict(env=["=value"]), "expected KEY=VALUE"),
    (dict(label=["bad key=1"]), "invalid --label key"),
    (dict(port=0), "--port 0: must be between 1 and 65535"),
    (dict(port=65536), "--port 65536: must be between 1 and 65535"),
    (dict(service_port=-1), "--servicePort -1: must be between 0 and 65535"),
    (dict(service_port=70000), "--servicePort 70000"),
    (dict(memory="lots"), "invalid --memory"),
    (dict(cpu="1x"), "invalid --cpu"),
    (dict(timeout="soon"), "invalid --timeout"),
    (dict(timeout="0"), "invalid --timeout"),
    (dict(schedule="every minute"), "invalid --schedule"),
    (dict(schedule="61 * * * *"), "bad minute field"),
    (dict(secrets=["Not_A_Name"]), "invalid --secrets name"),
])
def test_bad_flags_are_refused_with_a_message_naming_them(given, message):
    with pytest.raises(UserError, match=None) as refused:
        spec.parse_options(deploy_args(**given), deploy=True)
    assert message in str(refused.value)


# --- update: a patch of what was given, and nothing else --------------------------------------------------------

def stored() -> dict:
    fn = build_function(options(env=["A=1"], memory="64Mi", secrets=["db"], timeout="7", image_pull_policy="Never",
                                node_selectors=["disk=ssd,zone=a"], port=9000))
    fn["metadata"]["resourceVersion"] = "42"
    return fn


def update_options(**given) -> FunctionOptions:
    args = deploy_args(**{"runtime": None, "handler": None, "from_file": None, **given})
    return spec.parse_options(args, deploy=False)


def test_an_update_of_one_flag_patches_only_that_field():
    assert update_patch(stored(), update_options(timeout="60")) == {"spec": {"timeout": "60"}}
    assert update_patch(stored(), update_options(handler="other.main")) == {"spec": {"handler": "other.main"}}
    assert update_patch(stored(), update_options(runtime="python3.11")) == {"spec": {"runtime": "python3.11"}}


def test_update_defaults_nothing_unlike_kubeless():
    nothing = update_options()
    assert nothing.timeout is None and nothing.port is None and nothing.image_pull_policy is None
    assert not spec.given_for_update(nothing)
    assert update_patch(stored(), nothing) == {}


def test_new_code_patches_the_three_code_fields():
    parsed = update_options(from_file="new.py")
    parsed.code = Code("x = 1\n", "text", "sha256:" + "b" * 64)
    assert update_patch(stored(), parsed) == {"spec": {"function": "x = 1\n", "function-content-type": "text",
                                                       "checksum": "sha256:" + "b" * 64}}


def test_env_replaces_the_environment_and_keeps_the_rest_of_the_container():
    patch = update_patch(stored(), update_options(env=["GREETING=hi"]))
    containers = patch["spec"]["deployment"]["spec"]["template"]["spec"]["containers"]
    assert list(patch["spec"]) == ["deployment"]
    assert containers[0]["env"] == [{"name": "GREETING", "value": "hi"}]
    assert containers[0]["imagePullPolicy"] == "Never"
    assert containers[0]["resources"]["limits"] == {"memory": "64Mi"}
    assert containers[0]["volumeMounts"] == [{"name": "db-vol", "mountPath": "/db"}]


def test_memory_keeps_a_cpu_given_before():
    fn = stored()
    pod_spec(fn)["containers"][0]["resources"] = {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
    patch = update_patch(fn, update_options(memory="1Gi"))
    resources = patch["spec"]["deployment"]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def test_secrets_are_added_to_the_existing_ones():
    patch = update_patch(stored(), update_options(secrets=["db,api"]))
    pod = patch["spec"]["deployment"]["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["db-vol", "api-vol"]
    assert [m["name"] for m in pod["containers"][0]["volumeMounts"]] == ["db-vol", "api-vol"]


def test_node_selectors_replace_the_old_ones():
    patch = update_patch(stored(), update_options(node_selectors=["disk=hdd"]))
    assert patch["spec"]["deployment"]["spec"]["template"]["spec"] == {"nodeSelector": {"zone": None,
                                                                                        "disk": "hdd"}}
    merged = objects.apply_merge_patch(stored(), patch)
    assert pod_spec(merged)["nodeSelector"] == {"disk": "hdd"}


def test_port_moves_target_and_service_port_together_unless_a_service_port_was_set():
    patch = update_patch(stored(), update_options(port=7000))
    assert patch["spec"]["service"]["ports"][0]["port"] == 7000
    assert patch["spec"]["service"]["ports"][0]["targetPort"] == 7000
    fn = stored()
    fn["spec"]["service"]["ports"][0]["port"] = 80
    patch = update_patch(fn, update_options(port=7000))
    assert patch["spec"]["service"]["ports"][0] == {"name": "http-function-port", "port": 80, "targetPort": 7000,
                                                    "protocol": "TCP"}
    patch = update_patch(stored(), update_options(service_port=81))
    assert patch["spec"]["service"]["ports"][0]["port"] == 81
    assert patch["spec"]["service"]["ports"][0]["targetPort"] == 9000


def test_labels_merge_and_keep_the_service_selecting_the_pods():
    patch = update_patch(stored(), update_options(label=["team=web"]))
    assert patch == {"metadata": {"labels": {"team": "web"}}}
    fn = stored()
    fn["metadata"]["labels"]["team"] = "old"
    fn["spec"]["service"]["selector"]["team"] = "old"
    patch = update_patch(fn, update_options(label=["team=web"]))
    assert patch["spec"]["service"] == {"selector": {"team": "web"}}


def test_merge_patch_follows_rfc_7386():
    assert objects.apply_merge_patch({"a": 1, "b": {"c": 2, "d": 3}, "l": [1]},
                                     {"b": {"c": None, "e": 4}, "l": [2], "n": "x"}) == \
        {"a": 1, "b": {"d": 3, "e": 4}, "l": [2], "n": "x"}


# --- ls and describe ----------------------------------------------------------------------------------------------

def with_status(fn: dict, ready: str, reason: str, ready_replicas: int = 0, generation: int = 1,
                observed: int = 1) -> dict:
    fn = dict(fn, metadata=dict(fn["metadata"], generation=generation))
    fn["status"] = {"observedGeneration": observed, "replicas": 1, "readyReplicas": ready_replicas,
                    "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": "why",
                                    "observedGeneration": observed}]}
    return fn


def test_ls_row_reads_the_status():
    fn = build_function(options())
    assert listing.ls_row(with_status(fn, "True", "MinimumReplicasAvailable", 1)) == [
        "hello", "ns", "hello.handler", "python3.11", "", "1/1 READY"]
    assert listing.ls_row(with_status(fn, "False", "InstallFailed"))[-1] == "0/1 NOT READY (InstallFailed)"
    assert listing.ls_row(with_status(fn, "False", "Deploying"))[-1] == "0/1 NOT READY"
    stale = with_status(fn, "False", "InstallFailed", generation=2, observed=1)
    assert listing.ls_row(stale)[-1] == "0/1 NOT READY"


def test_ls_row_falls_back_to_the_deployment_then_missing():
    fn = build_function(options())
    assert listing.ls_row(fn, {"status": {"replicas": 2, "readyReplicas": 1}})[-1] == "1/2 READY"
    assert listing.ls_row(fn, {"status": {"replicas": 1}})[-1] == "0/1 NOT READY"
    assert listing.ls_row(fn, None)[-1] == "MISSING: Check controller logs"


def test_ls_wide_has_as_many_values_as_headers():
    fn = build_function(options(env=["A=1"], memory="64Mi", label=["team=web"]))
    row = listing.ls_row(fn, None, wide=True)
    assert len(row) == len(listing.ls_headers(True))
    assert dict(zip(listing.ls_headers(True), row))["MEMORY"] == "64Mi"
    assert dict(zip(listing.ls_headers(True), row))["ENV"] == "A = 1"
    assert "team : web" in dict(zip(listing.ls_headers(True), row))["LABEL"]


def test_node_dependencies_show_one_line_per_package():
    fn = {"spec": {"runtime": "nodejs20", "deps": '{"dependencies": {"lodash": "^4", "express": "4.19"}}'}}
    assert listing.dependencies_text(fn) == "lodash: ^4\nexpress: 4.19"
    assert listing.dependencies_text({"spec": {"runtime": "python3.11", "deps": "requests\n"}}) == "requests"


def test_describe_shows_kubeless_fields_and_the_conditions():
    fn = with_status(build_function(options(env=["A=1"], memory="64Mi")), "False", "FunctionCrashed")
    text = listing.describe_text(fn)
    assert "Name:" in text and "hello" in text
    assert 'Label:         {"created-by":"kubeless","function":"hello"}' in text
    assert 'Envvar:        [{"name":"A","value":"1"}]' in text
    assert "Memory:        64Mi" in text
    assert "Status:        0/1 NOT READY (FunctionCrashed)" in text
    assert "Ready=False FunctionCrashed: why" in text


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
OOM_RESTARTS = {"count": 3, "lastReason": "OOMKilled", "lastExitCode": 137, "lastTime": "2026-01-02T03:02:05Z",
                "lastPod": "hello-6f9c-x2x7q"}


def test_ls_wide_ends_with_the_restarts_and_the_last_reason():
    fn = with_status(build_function(options()), "True", "MinimumReplicasAvailable", 1)
    headers = listing.ls_headers(True)
    assert headers == ["NAME", "NAMESPACE", "HANDLER", "RUNTIME", "DEPENDENCIES", "STATUS", "MEMORY", "ENV", "LABEL",
                       "RESTARTS"]
    assert listing.ls_headers(False) == headers[:6]
    assert listing.ls_row(fn, wide=True, now=NOW)[-1] == "0"
    fn["status"]["restarts"] = OOM_RESTARTS
    assert listing.ls_row(fn, wide=True, now=NOW)[-1] == "3 (OOMKilled 2m ago)"
    assert len(listing.ls_row(fn, now=NOW)) == 6
    assert listing.ls_row(build_function(options()), None, wide=True, now=NOW)[-1] == ""  # no status: not counted


def test_describe_shows_the_restarts_with_the_last_reason_and_when():
    fn = with_status(build_function(options()), "True", "MinimumReplicasAvailable", 1)
    assert "Restarts:      0\n" in listing.describe_text(fn, now=NOW)
    fn["status"]["restarts"] = OOM_RESTARTS
    assert ("Restarts:      3, last OOMKilled (exit code 137) 2m ago at 2026-01-02T03:02:05Z in pod hello-6f9c-x2x7q"
            in listing.describe_text(fn, now=NOW))
    assert "Restarts:      <unknown>" in listing.describe_text(build_function(options()), {"status": {}}, now=NOW)


@pytest.mark.parametrize(("seconds", "text"), [(-3, "0s"), (45, "45s"), (150, "2m30s"), (600, "10m"), (3 * 3600, "3h"),
                                               (5 * 3600 + 60, "5h1m"), (30 * 3600, "30h"), (3 * 86400, "3d"),
                                               (800 * 86400, "2y")])
def test_ages_read_like_kubectls(seconds, text):
    assert readiness.age(NOW - timedelta(seconds=seconds), NOW) == text


def test_wait_state_needs_ready_for_the_current_generation():
    fn = build_function(options())
    assert readiness.wait_state(fn) == "waiting"
    assert readiness.wait_state(with_status(fn, "True", "MinimumReplicasAvailable", 1)) == "ready"
    assert readiness.wait_state(with_status(fn, "True", "MinimumReplicasAvailable", 1, generation=2)) == "waiting"
    assert readiness.wait_state(with_status(fn, "False", "CompileFailed")) == "failed"
    assert readiness.wait_state(with_status(fn, "False", "Deploying")) == "waiting"


# --- call ---------------------------------------------------------------------------------------------------------

def test_call_content_type_is_kubeless_rule():
    assert call.call_content_type('{"a": 1}') == "application/json"
    assert call.call_content_type("[1, 2]") == "application/x-www-form-urlencoded"
    assert call.call_content_type("hello, world!") == "application/x-www-form-urlencoded"


def test_call_headers_carry_the_event():
    from datetime import datetime, timezone

    headers = call.event_headers('{"a": 1}', now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert headers["event-time"] == "2026-01-02T03:04:05Z"
    assert headers["event-namespace"] == contract.EVENT_NAMESPACE_CLI
    assert headers["Content-Type"] == headers["event-type"] == "application/json"
    assert len(headers["event-id"]) == 15
    assert "Content-Type" not in call.event_headers(None)


def test_call_goes_through_the_service_proxy_by_port_name_else_number():
    named = {"spec": {"ports": [{"name": "http-function-port", "port": 8080}]}}
    assert call.proxy_path("ns", "hello", named) == \
        "/api/v1/namespaces/ns/services/hello:http-function-port/proxy/"
    assert call.proxy_path("ns", "hello", {"spec": {"ports": [{"port": 9000}]}}) == \
        "/api/v1/namespaces/ns/services/hello:9000/proxy/"


# --- call: the function died while handling it -------------------------------------------------------------------

PODS = "/api/v1/namespaces/ns/pods"
EOF_STATUS = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503, "reason": "ServiceUnavailable",
              "message": "error trying to reach service: EOF"}


def function_pod(name: str, finished: datetime | None, reason: str = "OOMKilled", exit_code: int = 137,
                 *, restarted: bool = True, limit: str | None = "128Mi") -> dict:
    stop = {"terminated": {"reason": reason, "exitCode": exit_code, "finishedAt": call_time(finished)}} if finished \
        else {}
    resources = {"limits": {"memory": limit}} if limit else {}
    state = {"running": {}} if restarted else stop
    return {"metadata": {"name": name, "labels": {"function": "hello"}},
            "spec": {"containers": [{"name": "hello", "resources": resources}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "hello", "restartCount": 1 if restarted and finished else 0, "state": state,
                 "lastState": stop if restarted else {}}]}}


def call_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def dying(*pods: dict, status: int = 503, body: bytes | None = None, reason: str = "Service Unavailable"):
    client = calling(status, json.dumps(EOF_STATUS).encode() if body is None else body, reason)
    for item in pods:
        client.objects[f"{PODS}/{item['metadata']['name']}"] = item
    return client


@pytest.fixture
def no_wait(monkeypatch):
    monkeypatch.setattr(call, "STOP_WAIT", 0)


def now() -> datetime:
    return datetime.now(timezone.utc)


def test_an_oom_kill_during_the_call_is_named_with_the_limit(no_wait):
    code, out, err = run(["function", "call", "hello", "-n", "ns", "--data", "x" * 10],
                         dying(function_pod("hello-1", now())))
    assert code == 1 and out == ""
    assert "error: function hello was OOMKilled (limit 128Mi) while handling the call" in err
    assert "function update hello -n ns --memory" in err
    assert "error trying to reach service" not in err


def test_an_exit_during_the_call_gives_its_code_and_where_its_output_is(no_wait):
    code, _, err = run(["function", "call", "hello", "-n", "ns"],
                       dying(function_pod("hello-1", now(), "Error", 1)))
    assert code == 1
    assert "error: function hello exited with code 1 while handling the call" in err
    assert "kubectl logs -n ns hello-1 -c hello --previous" in err
    _, _, err = run(["function", "call", "hello", "-n", "ns"],
                    dying(function_pod("hello-1", now(), "Error", 137, restarted=False)))
    assert "exited with code 137, killed by signal 9 while handling the call" in err
    assert "kubectl logs -n ns hello-1 -c hello)" in err


def test_a_reset_connection_or_a_bad_gateway_also_looks_at_the_pods(no_wait):
    reset = dict(EOF_STATUS, message="error trying to reach service: read tcp 10.0.0.1:4->10.1.0.5:8080: read: "
                                     "connection reset by peer")
    _, _, err = run(["function", "call", "hello", "-n", "ns"],
                    dying(function_pod("hello-1", now()), body=json.dumps(reset).encode()))
    assert "was OOMKilled (limit 128Mi)" in err
    _, _, err = run(["function", "call", "hello", "-n", "ns"],
                    dying(function_pod("hello-1", now(), limit=None), status=502, body=b"upstream: EOF",
                          reason="Bad Gateway"))
    assert "error: function hello was OOMKilled while handling the call" in err


def test_a_stop_before_the_call_is_not_blamed_on_it(no_wait):
    """An OOM kill a minute ago is not this call's: the API server's message stays, as before."""
    code, _, err = run(["function", "call", "hello", "-n", "ns"],
                       dying(function_pod("hello-1", now() - timedelta(minutes=1)), function_pod("hello-2", None)))
    assert code == 1 and "error: error trying to reach service: EOF (is function hello ready?" in err


def test_the_kubelets_clock_may_be_a_little_behind():
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    pods = [function_pod("hello-1", since - timedelta(seconds=1))]
    assert objects.recent_stop(pods, since)["pod"] == "hello-1"
    assert objects.recent_stop(pods, since + timedelta(seconds=5)) is None
    newest = function_pod("hello-2", since + timedelta(seconds=1), "Error", 1)
    assert objects.recent_stop([*pods, newest], since)["reason"] == "Error"


def test_the_stop_is_awaited_while_the_kubelet_has_not_reported_it(monkeypatch):
    class Lagging(FakeClient):
        reads = 0

        def get(self, path, **query):
            if path == PODS:
                self.reads += 1
                if self.reads == 3:
                    self.objects[f"{PODS}/hello-1"] = function_pod("hello-1", now())
            return super().get(path, **query)

    monkeypatch.setattr(call.time, "sleep", lambda seconds: None)
    client = Lagging(dying().objects)
    client.raw[PROXY] = dying().raw[PROXY]
    client.objects[f"{PODS}/hello-1"] = function_pod("hello-1", None)
    _, _, err = run(["function", "call", "hello", "-n", "ns"], client)
    assert client.reads == 3 and "was OOMKilled (limit 128Mi)" in err


def test_a_call_that_works_or_fails_otherwise_reads_no_pod(no_wait):
    class Counting(FakeClient):
        def get(self, path, **query):
            assert path != PODS, "pods read"
            return super().get(path, **query)

    for status, body, reason in ((200, b"hi", "OK"), (500, b"EOF in the handler", "Internal Server Error"),
                                 (408, b"Timeout", "Request Timeout")):
        client = Counting(dying(function_pod("hello-1", now())).objects)
        client.raw[PROXY] = calling(status, body, reason).raw[PROXY]
        code, _, err = run(["function", "call", "hello", "-n", "ns"], client)
        assert (code == 0) == (status == 200) and "OOMKilled" not in err
