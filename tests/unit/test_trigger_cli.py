"""`kubectl kubeless trigger ...` through `main([...])` with string streams and a fake API server: what is sent, the
messages (Kubeless's words), and bad input refused with one `error:` line before anything is written."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from test_cli_completion import FakeLister
from test_cli_main import FakeClient

from kubeless_api import meta, resources, schema
from kubectl_kubeless import cli, completion, objects

FUNCTION = resources.path(meta.API_VERSION, "Function", "ns", "hello")
HTTP_TRIGGERS = resources.path(meta.API_VERSION, "HTTPTrigger", "ns")
CRON_TRIGGERS = resources.path(meta.API_VERSION, "CronJobTrigger", "ns")
KUBECONFIG = {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
              "clusters": [{"name": "k", "cluster": {"server": "https://192.168.49.2:8443"}}],
              "users": [{"name": "u", "user": {"token": "t"}}]}


class TriggerAPI(FakeClient):
    """The fake API server, answering as the real one does where these commands need it: an empty list for a
    collection with no items, and a merge patch applied to what it stores."""

    def get(self, path: str, **query) -> dict:
        if path in (HTTP_TRIGGERS, CRON_TRIGGERS) and path not in self.objects:
            return {"items": [json.loads(json.dumps(obj)) for key, obj in self.objects.items()
                              if key.rsplit("/", 1)[0] == path]}
        return super().get(path, **query)

    def merge_patch(self, path: str, patch: dict) -> dict:
        self.writes.append(("PATCH", path, patch))
        self.objects[path] = objects.apply_merge_patch(self.objects[path], patch)
        return self.get(path)


def stored(kind: str, name: str, spec: dict, **extra) -> tuple[str, dict]:
    path = resources.path(meta.API_VERSION, kind, "ns", name)
    return path, {"apiVersion": meta.API_VERSION, "kind": kind,
                  "metadata": {"name": name, "namespace": "ns", "resourceVersion": "5", "labels": {"created-by":
                                                                                                   "kubeless"}},
                  "spec": spec, **extra}


WEB = stored("HTTPTrigger", "web", {schema.FUNCTION_NAME: "hello", schema.HOST_NAME: "hello.example.com",
                                    schema.GATEWAY: "nginx", "tls": True})
TICK = stored("CronJobTrigger", "tick", {schema.FUNCTION_NAME: "hello", "schedule": "@daily",
                                         "payload": {"name": "world"}})


@pytest.fixture
def api() -> TriggerAPI:
    """A namespace `ns` with the function hello, an HTTP trigger web and a cronjob trigger tick."""
    return TriggerAPI({FUNCTION: {"apiVersion": meta.API_VERSION, "kind": "Function",
                                  "metadata": {"name": "hello", "namespace": "ns"}}, **dict([WEB, TICK])})


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """A kubeconfig, whose server gives nginx's default host."""
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    return {"KUBECONFIG": str(path)}


def run(argv: list[str], client: TriggerAPI, environ: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["trigger", *argv, "-n", "ns"], stdout=out, stderr=err, client=client, environ=environ)
    return code, out.getvalue(), err.getvalue()


def refused(argv: list[str], client: TriggerAPI, environ: dict[str, str]) -> str:
    """Runs the line; asserts exit 1, one `error:` line, nothing on stdout and nothing written; returns the line."""
    code, out, err = run(argv, client, environ)
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert out == "" and client.writes == []
    return err


# --- create ---------------------------------------------------------------------------------------------------------

def test_http_create_sends_the_trigger_and_says_so_as_kubeless(api, environ):
    assert run(["http", "create", "api", "--function-name", "hello", "--path", "/hi"], api, environ) == \
        (0, "", "HTTP trigger api created in namespace ns successfully!\n")
    (method, path, body), = api.writes
    assert (method, path) == ("POST", HTTP_TRIGGERS)
    assert body == {"apiVersion": "kubeless.io/v1beta1", "kind": "HTTPTrigger",
                    "metadata": {"name": "api", "namespace": "ns", "labels": {"created-by": "kubeless"}},
                    "spec": {schema.FUNCTION_NAME: "hello", "path": "hi", schema.GATEWAY: "nginx",
                             schema.HOST_NAME: "hello.192.168.49.2.nip.io"}}


def test_cron_create_sends_the_trigger_and_says_so_as_kubeless(api, environ):
    code, out, err = run(["cronjob", "create", "nightly", "--function", "hello", "--schedule", "0 2 * * *",
                          "-p", "name: world"], api, environ)
    assert (code, out, err) == (0, "", "Cronjob trigger nightly created in namespace ns successfully!\n")
    assert api.writes[0][2]["spec"] == {schema.FUNCTION_NAME: "hello", "schedule": "0 2 * * *",
                                        "payload": {"name": "world"}}


def test_a_dry_run_prints_the_object_and_sends_nothing(api, environ):
    code, out, _ = run(["http", "create", "api", "--function-name", "hello", "--dryrun", "-o", "json"], api, environ)
    assert code == 0 and api.writes == []
    assert out.startswith('{\n    "apiVersion"')  # kubectl's indent 4
    assert json.loads(out)["spec"][schema.HOST_NAME] == "hello.192.168.49.2.nip.io"
    code, out, _ = run(["cronjob", "create", "nightly", "--function", "hello", "--schedule", "@daily", "--dryrun"],
                       api, environ)
    assert code == 0 and yaml.safe_load(out)["kind"] == "CronJobTrigger"


def test_a_dry_run_goes_on_without_a_cluster(tmp_path: Path):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["trigger", "cronjob", "create", "tick", "--function", "hello", "--schedule", "@daily",
                     "--dryrun"], stdout=out, stderr=err, environ={"KUBECONFIG": str(tmp_path / "none")})
    assert code == 0 and yaml.safe_load(out.getvalue())["metadata"]["namespace"] == "default"
    assert err.getvalue().startswith("warning: the check that function hello exists is disabled: no kubeconfig")


def test_an_existing_trigger_says_how_to_change_it(api, environ):
    code, _, err = run(["http", "create", "web", "--function-name", "hello"], api, environ)
    assert code == 1
    assert err == ('error: httptrigger "web" already exists in namespace "ns"; change it with `kubectl kubeless '
                   'trigger http update web -n ns`\n')


@pytest.mark.parametrize(("argv", "message"), [
    (["http", "create", "api", "--function-name", "nope"],
     'function "nope" not found in namespace "ns": deploy it first (kubectl kubeless function deploy nope -n ns ...), '
     "or give an existing one with --function-name (kubectl kubeless function ls -n ns)"),
    (["cronjob", "create", "t", "--function", "nope", "--schedule", "@daily"],
     "or give an existing one with --function "),
    (["cronjob", "create", "t", "--function", "hello", "--schedule", "every day"], "invalid --schedule 'every day'"),
    (["cronjob", "create", "t", "--function", "hello"], "--schedule is required"),
    (["http", "create", "api"], "--function-name is required"),
    (["http", "create", "api", "--function-name", "hello", "--gateway", "apache"], "Unsupported gateway apache"),
    (["http", "create", "api", "--function-name", "hello", "--enableTLSAcme", "--tls-secret", "c"],
     "Cannot specify both --enableTLSAcme and --tls-secret"),
    (["http", "create", "api", "--function-name", "hello", "--gateway", "kong", "--hostname", "a.example.com",
      "--basic-auth-secret", "users"], "is not yet supported"),
    (["http", "create", "api", "--function-name", "hello", "--gateway", "traefik"], "The --hostname flag is required"),
    (["cronjob", "create", "t", "--function", "hello", "--schedule", "@daily", "-p", "{not: [json"],
     "invalid --payload: not JSON or YAML"),
    (["cronjob", "create", "t", "--function", "hello", "--schedule", "@daily", "-p", "{}", "-f", "p.json"],
     "give --payload or --payload-from-file, not both"),
    (["http", "create", "Web_1", "--function-name", "hello"], "invalid http trigger name 'Web_1': must be a DNS-1123 "
                                                              "subdomain"),
    (["cronjob", "create", "t" * 53, "--function", "hello", "--schedule", "@daily"], "at most 52"),
    (["http", "create", "api", "--function-name", "Hello"], "invalid --function-name 'Hello'"),
    (["http", "create", "api", "--function-name", "hello", "-o", "table"], "Output format needs to be yaml or json"),
])
def test_bad_input_creates_nothing(api, environ, argv, message):
    assert message in refused(argv, api, environ)


# --- update ---------------------------------------------------------------------------------------------------------

def test_an_update_patches_only_what_is_given(api, environ):
    assert run(["http", "update", "web", "--path", "/v2"], api, environ) == \
        (0, "", "HTTP trigger web updated in namespace ns successfully!\n")
    (method, path, patch), = api.writes
    assert (method, path) == ("PATCH", WEB[0])
    assert patch == {"spec": {"path": "v2"}, "metadata": {"resourceVersion": "5"}}
    assert api.objects[WEB[0]]["spec"]["tls"] is True  # Kubeless reset it to false


def test_a_cron_update_keeps_schedule_and_function(api, environ):
    assert run(["cronjob", "update", "tick", "-p", '{"name": "you"}'], api, environ)[0] == 0
    assert api.objects[TICK[0]]["spec"] == {schema.FUNCTION_NAME: "hello", "schedule": "@daily",
                                            "payload": {"name": "you"}}


def test_an_update_dry_run_prints_the_result(api, environ):
    code, out, _ = run(["cronjob", "update", "tick", "--schedule", "@hourly", "--dryrun", "-o", "json"], api, environ)
    assert code == 0 and api.writes == []
    assert json.loads(out)["spec"] == {schema.FUNCTION_NAME: "hello", "schedule": "@hourly",
                                       "payload": {"name": "world"}}


@pytest.mark.parametrize(("argv", "message"), [
    (["http", "update", "web"], "nothing to update: give at least one flag (see `kubectl kubeless trigger http update "
                                "--help`)"),
    (["http", "update", "web", "--hostname", "hello.example.com"], "nothing to update: HTTP trigger web already has"),
    (["http", "update", "nope", "--path", "x"], 'httptrigger "nope" not found in namespace "ns"'),
    (["http", "update", "web", "--function-name", "nope"], 'function "nope" not found in namespace "ns"'),
    (["http", "update", "web", "--tls-secret", "cert"], "Cannot specify both --enableTLSAcme and --tls-secret"),
    (["cronjob", "update", "tick", "--schedule", "soon"], "invalid --schedule 'soon'"),
    (["cronjob", "update", "tick", "--function", ""], "--function is required"),
])
def test_bad_update_input_changes_nothing(api, environ, argv, message):
    assert message in refused(argv, api, environ)


# --- delete, ls -----------------------------------------------------------------------------------------------------

def test_delete_says_so_as_kubeless(api, environ):
    assert run(["cronjob", "delete", "tick"], api, environ) == \
        (0, "", "Cronjob trigger tick deleted from namespace ns successfully!\n")
    assert api.writes == [("DELETE", TICK[0], None)]
    assert run(["http", "delete", "nope"], api, environ) == \
        (1, "", 'error: httptrigger "nope" not found in namespace "ns"\n')


def test_ls_shows_the_triggers_and_what_the_controller_reports(api, environ):
    api.objects[WEB[0]]["status"] = {"address": "10.0.0.9", "conditions": [
        {"type": "Ready", "status": "False", "reason": "IngressClassNotFound"}]}
    code, out, _ = run(["http", "ls"], api, environ)
    assert code == 0
    assert out.splitlines() == [
        "NAME   NAMESPACE   FUNCTION   HOST                PATH   GATEWAY   ADDRESS    READY",
        "web    ns          hello      hello.example.com   /      nginx     10.0.0.9   False (IngressClassNotFound)"]
    assert run(["cronjob", "ls", "-o", "name"], api, environ) == (0, "cronjobtrigger.kubeless.io/tick\n", "")
    code, out, _ = run(["cronjob", "ls", "tick", "-o", "yaml"], api, environ)
    assert yaml.safe_load(out)[0]["spec"]["schedule"] == "@daily"


def test_ls_of_names_prints_those_found_and_fails_for_the_others(api, environ):
    code, out, err = run(["cronjob", "list", "tick", "gone"], api, environ)
    assert code == 1 and out.splitlines()[1].startswith("tick ")
    assert err == 'error: cronjobtrigger "gone" not found in namespace "ns"\n'


def test_ls_of_an_empty_namespace_prints_the_headers(environ):
    code, out, _ = run(["http", "ls"], TriggerAPI(), environ)
    assert (code, out.split()) == (0, ["NAME", "NAMESPACE", "FUNCTION", "HOST", "PATH", "GATEWAY", "ADDRESS",
                                       "READY"])


# --- what function deploy and delete do with triggers ---------------------------------------------------------------

@pytest.mark.parametrize(("calls", "deleted"), [("hello", True), ("other", False)])
def test_function_delete_takes_its_schedule_trigger_while_it_still_calls_it(api, environ, calls, deleted):
    path, schedule_trigger = stored("CronJobTrigger", "hello", {schema.FUNCTION_NAME: calls, "schedule": "@daily"})
    schedule_trigger["metadata"]["labels"] = meta.function_labels("hello")  # as deploy --schedule made it
    api.objects[path] = schedule_trigger
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["function", "delete", "hello", "-n", "ns"], stdout=out, stderr=err, client=api,
                    environ=environ) == 0
    assert (("DELETE", path, None) in api.writes) is deleted  # re-pointed at another function: not deploy's now


# --- completion -----------------------------------------------------------------------------------------------------

def complete(*words: str) -> tuple[list[str], int]:
    candidates, directive = completion.complete(cli.build_parser(), list(words), FakeLister())
    return [c.split("\t")[0] for c in candidates], directive


def test_completion_knows_the_trigger_commands():
    assert complete("trigger", "")[0] == ["http", "cronjob", "kafka", "nats", "kinesis"]
    assert complete("trigger", "http", "")[0] == ["create", "update", "delete", "list"]
    assert "--gateway-ref" in complete("trigger", "http", "create", "x", "--gateway")[0]


def test_completion_offers_trigger_and_function_names():
    assert complete("trigger", "http", "delete", "")[0] == ["web"]
    assert complete("trigger", "cronjob", "update", "t")[0] == ["tick"]
    assert complete("trigger", "cronjob", "ls", "nightly", "")[0] == ["tick"]
    assert complete("trigger", "http", "create", "x", "")[0] == []  # a new name: nothing to offer
    assert complete("trigger", "http", "create", "x", "--function-name", "")[0] == ["echo"]
    assert complete("trigger", "cronjob", "create", "x", "-n", "team", "--function", "he")[0] == ["hello", "help-desk"]


def test_completion_offers_the_values_the_command_checks():
    assert complete("trigger", "http", "create", "x", "--gateway", "")[0] == list(schema.GATEWAYS)
    assert complete("trigger", "http", "update", "x", "-o", "")[0] == ["json", "yaml"]
    assert complete("trigger", "cronjob", "create", "x", "-f", "") == ([], completion.DEFAULT)
