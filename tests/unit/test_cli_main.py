"""Whole command lines through `main([...])`, with string streams and a fake API client: exit codes, messages, and
what would have been sent."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubeless_api import meta, resources
from kubectl_kubeless.manifests import load_catalogue
from kubeless_api.catalogue import runtime_ids

from kubectl_kubeless import cli, manifests
from kubectl_kubeless.kube import ApiError

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = resources.path(meta.API_VERSION, "Function", "ns")
CONFIG = f"/api/v1/namespaces/{meta.SYSTEM_NAMESPACE}/configmaps/{meta.CONFIG_MAP}"


class FakeResponse:
    def __init__(self, status: int, body: bytes, reason: str = ""):
        self.status, self.reason, self.body = status, reason, body

    def read(self) -> bytes:
        return self.body

    def chunks(self):
        yield self.body


class FakeClient:
    """The API server as a dict of path -> object; records every write."""

    def __init__(self, objects: dict[str, dict] | None = None):
        self.objects = {CONFIG: manifests.config_map("0.0.0", manifests.load_catalogue()), **(objects or {})}
        self.writes: list[tuple[str, str, dict | None]] = []
        self.raw: dict[str, FakeResponse] = {}
        self.requests: list[tuple[str, str, bytes | None, dict]] = []

    def get(self, path: str, **query) -> dict:
        if path in self.objects:
            return json.loads(json.dumps(self.objects[path]))
        items = [o for p, o in self.objects.items() if p.rsplit("/", 1)[0] == path]
        if items or path == FUNCTIONS:
            return {"items": items}
        raise ApiError(404, "NotFound", f"{path} not found", {"name": path.rsplit("/", 1)[-1]})

    def create(self, path: str, body: dict) -> dict:
        self.writes.append(("POST", path, body))
        key = f"{path}/{body['metadata']['name']}"
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", "already exists", {"name": body["metadata"]["name"]})
        self.objects[key] = dict(body, metadata=dict(body["metadata"], generation=1, resourceVersion="1"))
        return self.objects[key]

    def merge_patch(self, path: str, patch: dict) -> dict:
        self.writes.append(("PATCH", path, patch))
        return self.get(path)

    def delete(self, path: str) -> dict:
        self.writes.append(("DELETE", path, None))
        if path not in self.objects:
            raise ApiError(404, "NotFound", "not found", {"name": path.rsplit("/", 1)[-1]})
        return self.objects.pop(path)

    def request(self, method, path, *, query=None, body=None, headers=None, timeout=None):
        self.requests.append((method, path, body, headers or {}))
        return self.raw[path]


def run(argv: list[str], client: FakeClient | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, stdout=out, stderr=err, client=client, environ={})
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def hello(tmp_path: Path) -> str:
    path = tmp_path / "hello.py"
    path.write_text("def handler(event, context):\n    return event['data']\n")
    return str(path)


def deploy(hello: str, *extra: str) -> list[str]:
    return ["function", "deploy", "hello", "-n", "ns", "--runtime", "python3.11", "--handler", "hello.handler",
            "--from-file", hello, *extra]


# --- usage errors: exit 2 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["function"], ["function", "deploy"], ["function", "nosuchverb"], ["function", "deploy", "x", "--bogus"],
    ["function", "ls", "-o", "table"], ["function", "describe", "x", "-o", "wide"], ["function", "deploy", "x",
                                                                                       "--port", "http"],
    ["function", "deploy", "x", "--image-pull-policy", "Sometimes"], ["function", "call"],
])
def test_bad_usage_exits_2(argv):
    code, out, err = run(argv)
    assert code == 2, err
    assert "usage:" in err


def test_help_exits_0_and_lists_the_commands():
    code, out, _ = run(["--help"])
    assert code == 0
    for word in ("function", "get-server-config", "version", "--kubeconfig", "--context", "--namespace"):
        assert word in out


def test_version():
    assert run(["version"]) == (0, f"kubectl-kubeless {meta.project_version()}\n", "")


def test_help_and_version_do_not_import_kubernetes():
    probe = ("import sys; from kubectl_kubeless.cli import main; main(['version']); "
             "main(['function', 'deploy', '--help']); assert 'kubernetes' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=REPO, capture_output=True)


def test_global_flags_work_before_and_after_the_verb(hello):
    client = FakeClient()
    assert run(["-n", "ns", "function", "deploy", "hello", "-r", "python3.11", "--handler", "hello.handler",
                "-f", hello], client)[0] == 0
    assert client.writes[0][1] == FUNCTIONS


# --- deploy ------------------------------------------------------------------------------------------------------

def test_deploy_creates_the_function_and_says_how_to_follow_it(hello):
    client = FakeClient()
    code, out, err = run(deploy(hello), client)
    assert code == 0, err
    (method, path, body), = client.writes
    assert (method, path) == ("POST", FUNCTIONS)
    assert body["spec"]["handler"] == "hello.handler" and body["metadata"]["namespace"] == "ns"
    assert "Function hello submitted for deployment" in err
    assert "kubectl kubeless function ls hello -n ns" in err
    assert out == ""


def test_deploy_with_schedule_also_creates_the_cron_job_trigger(hello):
    client = FakeClient()
    assert run(deploy(hello, "--schedule", "@hourly"), client)[0] == 0
    assert [w[1] for w in client.writes] == [FUNCTIONS, resources.path(meta.API_VERSION, "CronJobTrigger", "ns")]
    assert client.writes[1][2]["spec"] == {"schedule": "@hourly", "function-name": "hello"}


def test_an_unknown_runtime_lists_the_supported_ones_and_creates_nothing(hello):
    client = FakeClient()
    code, _, err = run(["function", "deploy", "hello", "-n", "ns", "-r", "cobol85", "--handler", "a.b",
                        "-f", hello], client)
    assert code == 1
    assert err.startswith("error: invalid runtime: cobol85. Supported runtimes are: python3.11")
    assert err.count("\n") == 1 and client.writes == []


def test_an_unreadable_runtime_list_only_warns_like_kubeless(hello):
    client = FakeClient()
    del client.objects[CONFIG]
    code, _, err = run(deploy(hello), client)
    assert code == 0
    assert "warning: cannot read the runtime list" in err and "runtime check is disabled" in err


def test_an_existing_function_points_to_update(hello):
    client = FakeClient()
    run(deploy(hello), client)
    code, _, err = run(deploy(hello), client)
    assert code == 1
    assert 'error: function "hello" already exists in namespace "ns"' in err
    assert "kubectl kubeless function update hello" in err


@pytest.mark.parametrize(("extra", "message"), [
    (["--from-file", "/nonexistent/hello.py"], "--from-file /nonexistent/hello.py: No such file or directory"),
    (["--handler", "hello"], "invalid --handler"),
    (["--env", "JUSTAKEY"], "invalid --env"),
    (["--port", "70000"], "invalid --port 70000"),
])
def test_bad_input_is_one_error_line_and_nothing_is_sent(hello, extra, message):
    client = FakeClient()
    code, out, err = run(deploy(hello) + extra, client)
    assert code == 1
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert client.writes == [] and out == ""


def test_a_bad_name_is_refused(hello):
    code, _, err = run(["function", "deploy", "Hello_World", "-n", "ns", "-r", "python3.11", "--handler", "a.b",
                        "-f", hello], FakeClient())
    assert code == 1 and "DNS-1035" in err


def test_dry_run_prints_yaml_or_json_and_sends_nothing(hello):
    client = FakeClient()
    code, out, _ = run(deploy(hello, "--dryrun"), client)
    assert code == 0 and out.startswith("apiVersion: kubeless.io/v1beta1\nkind: Function\n")
    code, out, _ = run(deploy(hello, "--dry-run", "-o", "json"), client)
    assert json.loads(out)["metadata"]["name"] == "hello"
    assert client.writes == []


def test_dry_run_needs_no_kubeconfig(hello, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(deploy(hello, "--dryrun")[:5] + deploy(hello, "--dryrun")[5:], stdout=out, stderr=err,
                    environ={"KUBECONFIG": str(tmp_path / "none")})
    assert code == 0, err.getvalue()
    assert "runtime check is disabled" in err.getvalue()


# --- update ------------------------------------------------------------------------------------------------------

def test_update_sends_a_merge_patch_of_the_given_flags_only(hello):
    client = FakeClient()
    run(deploy(hello, "--timeout", "7"), client)
    client.writes.clear()
    code, _, err = run(["function", "update", "hello", "-n", "ns", "--timeout", "60"], client)
    assert code == 0, err
    assert client.writes == [("PATCH", f"{FUNCTIONS}/hello", {"metadata": {"resourceVersion": "1"},
                                                             "spec": {"timeout": "60"}})]


def test_update_with_nothing_to_change_is_an_error():
    code, _, err = run(["function", "update", "hello", "-n", "ns"], FakeClient())
    assert code == 1 and "nothing to update" in err


def test_update_of_a_missing_function():
    code, _, err = run(["function", "update", "nope", "-n", "ns", "--timeout", "5"], FakeClient())
    assert code == 1 and 'function "nope" not found in namespace "ns"' in err


# --- ls, describe, delete ----------------------------------------------------------------------------------------

def test_ls_prints_a_table_and_errors_on_missing_names(hello):
    client = FakeClient()
    run(deploy(hello), client)
    code, out, err = run(["function", "ls", "-n", "ns"], client)
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "NAMESPACE", "HANDLER", "RUNTIME", "DEPENDENCIES", "STATUS"]
    assert out.splitlines()[1].split()[:4] == ["hello", "ns", "hello.handler", "python3.11"]
    assert "MISSING: Check controller logs" in out
    code, out, err = run(["function", "list", "-n", "ns", "hello", "nope"], client)
    assert code == 1 and "hello" in out and 'function "nope" not found' in err
    code, out, _ = run(["function", "ls", "-n", "ns", "-o", "name"], client)
    assert out == "function.kubeless.io/hello\n"
    code, out, _ = run(["function", "ls", "-n", "ns", "-o", "json"], client)
    assert [f["metadata"]["name"] for f in json.loads(out)] == ["hello"]


def test_describe_and_delete(hello):
    client = FakeClient()
    run(deploy(hello), client)
    code, out, _ = run(["function", "describe", "hello", "-n", "ns"], client)
    assert code == 0 and "Handler:" in out and "hello.handler" in out
    assert run(["function", "delete", "hello", "-n", "ns"], client)[:2] == (
        0, 'function.kubeless.io "hello" deleted\n')
    code, _, err = run(["function", "describe", "hello", "-n", "ns"], client)
    assert code == 1 and 'function "hello" not found' in err
    assert run(["function", "delete", "hello", "-n", "ns"], client)[0] == 1


def test_a_cluster_without_the_crd_says_so():
    class NoCrd(FakeClient):
        def get(self, path, **query):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    code, _, err = run(["function", "ls", "-n", "ns"], NoCrd())
    assert code == 1 and "not installed on this cluster" in err


# --- call --------------------------------------------------------------------------------------------------------

SERVICE = "/api/v1/namespaces/ns/services/hello"
PROXY = "/api/v1/namespaces/ns/services/hello:http-function-port/proxy/"


def calling(status: int, body: bytes, reason: str = "") -> FakeClient:
    client = FakeClient({SERVICE: {"spec": {"ports": [{"name": "http-function-port", "port": 8080}]}}})
    client.raw[PROXY] = FakeResponse(status, body, reason)
    return client


def test_call_gets_without_data_and_posts_with_it():
    client = calling(200, b"hello")
    assert run(["function", "call", "hello", "-n", "ns"], client) == (0, "hello\n", "")
    assert client.requests[0][:3] == ("GET", PROXY, None)
    assert run(["function", "call", "hello", "-n", "ns", "--data", '{"a": 1}'], client)[0] == 0
    method, _, body, headers = client.requests[1]
    assert method == "POST" and body == b'{"a": 1}'
    assert headers["Content-Type"] == "application/json" and headers["event-namespace"] == "cli.kubeless.io"


def test_a_failing_function_prints_its_answer_on_stderr_and_exits_1():
    code, out, err = run(["function", "call", "hello", "-n", "ns"],
                         calling(500, b"ValueError: no good", "Internal Server Error"))
    assert code == 1 and out == ""
    assert "ValueError: no good" in err and "error: function hello answered 500 Internal Server Error" in err


def test_a_timeout_is_named():
    code, _, err = run(["function", "call", "hello", "-n", "ns"], calling(408, b"Timeout", "Request Timeout"))
    assert code == 1 and "\nerror: Request timeout exceeded: function hello ran longer than its timeout (HTTP 408)" \
        in err and "--timeout" in err


def test_no_endpoints_is_the_api_servers_own_answer():
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503,
              "message": 'no endpoints available for service "hello"'}
    code, _, err = run(["function", "call", "hello", "-n", "ns"],
                       calling(503, json.dumps(status).encode(), "Service Unavailable"))
    assert code == 1 and 'error: no endpoints available for service "hello"' in err and "ready?" in err


def test_call_of_a_function_without_service():
    code, _, err = run(["function", "call", "nope", "-n", "ns"], FakeClient())
    assert code == 1 and 'function "nope" has no service' in err


# --- logs --------------------------------------------------------------------------------------------------------

def pod(name: str, started: bool) -> dict:
    state = {"running": {}} if started else {"waiting": {"reason": "PodInitializing"}}
    return {"metadata": {"name": name}, "status": {"phase": "Running" if started else "Pending",
                                                   "containerStatuses": [{"name": "hello", "state": state}]}}


def test_logs_of_one_pod_are_printed_as_they_are():
    client = FakeClient({"/api/v1/namespaces/ns/pods/a": pod("a", True)})
    client.raw["/api/v1/namespaces/ns/pods/a/log"] = FakeResponse(200, b"line 1\nline 2\n")
    assert run(["function", "logs", "hello", "-n", "ns"], client) == (0, "line 1\nline 2\n", "")


def test_logs_of_several_pods_are_prefixed():
    client = FakeClient({"/api/v1/namespaces/ns/pods/a": pod("a", True),
                         "/api/v1/namespaces/ns/pods/b": pod("b", True)})
    client.raw["/api/v1/namespaces/ns/pods/a/log"] = FakeResponse(200, b"from a\n")
    client.raw["/api/v1/namespaces/ns/pods/b/log"] = FakeResponse(200, b"from b")
    code, out, _ = run(["function", "logs", "hello", "-n", "ns"], client)
    assert code == 0 and out == "[pod/a] from a\n[pod/b] from b\n"


def test_logs_before_any_pod_started_says_why():
    client = FakeClient({"/api/v1/namespaces/ns/pods/a": pod("a", False)})
    code, _, err = run(["function", "logs", "hello", "-n", "ns"], client)
    assert code == 1 and "no pod of function hello has started yet (a: PodInitializing)" in err


# --- get-server-config -------------------------------------------------------------------------------------------

def test_get_server_config_lists_the_runtimes():
    code, out, _ = run(["get-server-config"], FakeClient())
    assert code == 0
    supported = ", ".join(runtime_ids(load_catalogue()))
    assert out == f"Current Server Config: ConfigMap kubeless/kubeless-config\nSupported Runtimes are: {supported}\n"


def test_the_config_location_comes_from_the_environment_first():
    client = FakeClient()
    client.objects["/api/v1/namespaces/other/configmaps/cfg"] = client.objects.pop(CONFIG)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["get-server-config"], stdout=out, stderr=err, client=client,
                    environ={"KUBELESS_NAMESPACE": "other", "KUBELESS_CONFIG": "cfg"})
    assert code == 0 and "ConfigMap other/cfg" in out.getvalue()


def test_the_config_location_comes_from_the_crd_annotations_next():
    client = FakeClient()
    client.objects["/api/v1/namespaces/elsewhere/configmaps/cfg"] = client.objects.pop(CONFIG)
    client.objects["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/functions.kubeless.io"] = {
        "metadata": {"annotations": {"kubeless.io/namespace": "elsewhere", "kubeless.io/config": "cfg"}}}
    code, out, _ = run(["get-server-config"], client)
    assert code == 0 and "ConfigMap elsewhere/cfg" in out


# --- deploy --wait -------------------------------------------------------------------------------------------------

class Reconciling(FakeClient):
    """Answers GETs of the function with the statuses a controller would write, one per poll."""

    def __init__(self, statuses: list[dict]):
        super().__init__()
        self.statuses = statuses

    def get(self, path, **query):
        found = super().get(path, **query)
        if path == f"{FUNCTIONS}/hello" and self.statuses:
            found["status"] = self.statuses.pop(0)
        return found


def ready_status(state: str, reason: str, message: str = "", generation: int = 1) -> dict:
    return {"observedGeneration": generation, "replicas": 1, "readyReplicas": 1 if state == "True" else 0,
            "conditions": [{"type": "Ready", "status": state, "reason": reason, "message": message,
                            "observedGeneration": generation}]}


@pytest.fixture
def no_sleep(monkeypatch):
    from kubectl_kubeless import objects

    monkeypatch.setattr(objects, "POLL_INTERVAL", 0)


def test_wait_shows_progress_and_returns_once_ready(hello, no_sleep):
    client = Reconciling([ready_status("False", "Deploying", "0/1 replicas ready"),
                          ready_status("True", "MinimumReplicasAvailable", "1/1 replicas ready")])
    code, _, err = run(deploy(hello, "--wait"), client)
    assert code == 0, err
    assert "function hello: Ready=False Deploying: 0/1 replicas ready" in err
    assert "function hello is ready (1/1 READY)" in err


def test_wait_fails_fast_with_the_reason_and_the_last_line_of_the_message(hello, no_sleep):
    message = "Collecting nosuchpkg\nERROR: No matching distribution found for nosuchpkg"
    client = Reconciling([ready_status("False", "InstallFailed", message)])
    code, _, err = run(deploy(hello, "--wait"), client)
    assert code == 1
    assert err.splitlines()[-1] == ("error: function hello failed: InstallFailed: ERROR: No matching distribution "
                                    "found for nosuchpkg (kubectl kubeless function describe hello -n ns)")
    assert "    ERROR: No matching distribution found for nosuchpkg" in err  # the whole message, indented


def test_wait_ignores_a_status_of_an_older_generation(hello, no_sleep):
    client = Reconciling([ready_status("True", "MinimumReplicasAvailable", generation=0),
                          ready_status("True", "MinimumReplicasAvailable")])
    code, _, err = run(deploy(hello, "--wait"), client)
    assert code == 0 and err.count("is ready") == 1


def test_wait_gives_up_after_its_limit(hello, no_sleep):
    code, _, err = run(deploy(hello, "--wait", "--wait-timeout", "0.01s"), Reconciling([]))
    assert code == 1
    assert "is not ready after 0.01 s: the controller has not reported on it" in err


def test_printed_objects_leave_out_managed_fields(hello):
    client = FakeClient()
    run(deploy(hello), client)
    client.objects[f"{FUNCTIONS}/hello"]["metadata"]["managedFields"] = [{"manager": "x"}]
    code, out, _ = run(["function", "describe", "hello", "-n", "ns", "-o", "json"], client)
    assert code == 0 and "managedFields" not in out


def test_ls_reads_the_deployments_of_many_functions_in_one_request():
    """Functions without a status fall back on their Deployments: one list for the namespace, not one GET each."""
    class Counting(FakeClient):
        def __init__(self, objects):
            super().__init__(objects)
            self.reads: list[str] = []

        def get(self, path: str, **query) -> dict:
            self.reads.append(path)
            return super().get(path, **query)

    deployments = "/apis/apps/v1/namespaces/ns/deployments"
    objects = {f"{FUNCTIONS}/{name}": {"apiVersion": meta.API_VERSION, "kind": "Function",
                                      "metadata": {"name": name, "namespace": "ns"},
                                      "spec": {"handler": "h.f", "runtime": "python3.11"}} for name in "abc"}
    objects[f"{deployments}/a"] = {"metadata": {"name": "a"}, "status": {"replicas": 1, "readyReplicas": 1}}
    client = Counting(objects)
    code, out, err = run(["function", "ls", "-n", "ns"], client)
    assert code == 0, err
    assert client.reads.count(deployments) == 1
    assert not any(read.startswith(deployments + "/") for read in client.reads)
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "1/1 READY" in rows["a"] and "MISSING" in rows["b"] and "MISSING" in rows["c"]
