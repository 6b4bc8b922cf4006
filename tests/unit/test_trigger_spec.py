"""The trigger objects the plugin writes and the patches it sends, from real command lines, without a cluster: the
builders (flags → object), the update patch (only what is given), nginx's default host, each bad input's message,
the `ls` rows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kubeless_api import meta, schema
from kubectl_kubeless import cli, objects
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.function import spec as function_spec
from kubectl_kubeless.trigger.cronjob import CRON_JOB, cron_trigger
from kubectl_kubeless.trigger.http import HTTP
from kubectl_kubeless.trigger.spec import ready_column

SERVER = "https://192.168.49.2:8443"


def api_server() -> str:
    return SERVER


def given(*argv: str) -> dict:
    """The spec fields a `kubectl kubeless trigger ...` line gives, parsed by the real parser."""
    args = cli.build_parser().parse_args(["trigger", *argv])
    return {"http": HTTP, "cronjob": CRON_JOB}[argv[0]].given_fields(args)


def http_spec(*flags: str) -> dict:
    return HTTP.new_spec(given("http", "create", "web", "--function-name", "hello", *flags), api_server)


def cron_spec(*flags: str) -> dict:
    return CRON_JOB.new_spec(given("cronjob", "create", "tick", "--function", "hello", *flags))


# --- http: create ---------------------------------------------------------------------------------------------------

def test_nginx_gets_kubeless_default_host_from_the_api_server():
    assert http_spec() == {schema.FUNCTION_NAME: "hello", schema.GATEWAY: "nginx",
                           schema.HOST_NAME: "hello.192.168.49.2.nip.io"}
    assert HTTP.new_spec({schema.FUNCTION_NAME: "f"}, lambda: "https://kube.example.com")[schema.HOST_NAME] == \
        "f.kube.example.com.nip.io"


def test_a_host_given_is_kept_and_the_api_server_not_read():
    def unreachable() -> str:
        raise AssertionError("read the kubeconfig for a host it did not need")

    spec = HTTP.new_spec(given("http", "create", "web", "--function-name", "hello", "--hostname", "hi.example.com"),
                         unreachable)
    assert spec[schema.HOST_NAME] == "hi.example.com"


def test_every_flag_lands_in_its_kubeless_field():
    spec = http_spec("--path", "/hello", "--hostname", "*.example.com", "--gateway", "traefik",
                     "--basic-auth-secret", "users", "--tls-secret", "cert", "--cors-enable")
    assert spec == {schema.FUNCTION_NAME: "hello", "path": "hello", schema.HOST_NAME: "*.example.com",
                    schema.GATEWAY: "traefik", schema.BASIC_AUTH_SECRET: "users", schema.TLS_SECRET: "cert",
                    schema.CORS_ENABLE: True}
    assert http_spec("--enableTLSAcme")["tls"] is True


@pytest.mark.parametrize(("path", "stored"), [("/hello", "hello"), ("hello", "hello"), ("/v2/hello/", "v2/hello/"),
                                              ("/", None)])
def test_the_path_is_stored_without_its_leading_slash(path, stored):
    assert http_spec("--path", path).get("path") == stored


def test_gateway_api_needs_no_host_and_names_its_gateway():
    assert http_spec("--gateway", "gateway-api") == {schema.FUNCTION_NAME: "hello", schema.GATEWAY: "gateway-api",
                                                     schema.GATEWAY_REF: schema.DEFAULT_GATEWAY_REF}
    assert http_spec("--gateway", "gateway-api", "--gateway-ref", "public")[schema.GATEWAY_REF] == "public"


def test_the_object_is_labelled_as_kubeless_made_it():
    trigger = HTTP.build("web", "ns", http_spec(), {meta.LABEL_CREATED_BY: meta.CREATED_BY})
    assert trigger["metadata"] == {"name": "web", "namespace": "ns", "labels": {"created-by": "kubeless"}}
    assert (trigger["apiVersion"], trigger["kind"]) == ("kubeless.io/v1beta1", "HTTPTrigger")


@pytest.mark.parametrize(("flags", "message"), [
    (["--gateway", "traefik"], "The --hostname flag is required with --gateway traefik"),
    (["--gateway", "kong"], "The --hostname flag is required with --gateway kong"),
    (["--gateway", "apache"], "Unsupported gateway apache: choose nginx, traefik, kong, gateway-api"),
    (["--enableTLSAcme", "--tls-secret", "cert"], "Cannot specify both --enableTLSAcme and --tls-secret"),
    (["--gateway", "kong", "--hostname", "a.example.com", "--basic-auth-secret", "users"],
     "--basic-auth-secret with --gateway kong is not yet supported"),
    (["--gateway", "gateway-api", "--tls-secret", "cert"], "--tls-secret with --gateway gateway-api is not supported"),
    (["--gateway", "gateway-api", "--enableTLSAcme"], "--enableTLSAcme with --gateway gateway-api is not supported"),
    (["--gateway", "gateway-api", "--basic-auth-secret", "u"], "--basic-auth-secret with --gateway gateway-api"),
    (["--gateway", "gateway-api", "--cors-enable"], "--cors-enable with --gateway gateway-api is not supported"),
    (["--gateway-ref", "public"], "--gateway-ref only goes with --gateway gateway-api; this trigger's gateway is "
                                  "nginx"),
    (["--gateway", "gateway-api", "--gateway-ref", "Infra/public"], "'Infra' is not a namespace"),
    (["--gateway", "gateway-api", "--gateway-ref", "infra/Public"], "invalid --gateway-ref name 'Public'"),
    (["--hostname", "10.0.0.1"], "invalid --hostname '10.0.0.1': a DNS name"),
    (["--hostname", "Hello.example.com"], "invalid --hostname 'Hello.example.com'"),
    (["--path", "/a b"], "invalid --path '/a b': a URL path"),
    (["--path", "/a/../b"], "without empty, '.' or '..' segments"),
    (["--path", "/a?b=1"], "invalid --path"),
    (["--tls-secret", "Cert_1"], "invalid --tls-secret 'Cert_1': must be a DNS-1123 subdomain"),
])
def test_bad_http_input_is_refused_with_a_message_naming_it(flags, message):
    with pytest.raises(UserError) as refused:
        http_spec(*flags)
    assert message in str(refused.value)


def test_a_function_name_must_be_one():
    with pytest.raises(UserError, match="invalid --function-name 'Hello': must be a DNS-1123 label"):
        given("http", "create", "web", "--function-name", "Hello")
    with pytest.raises(UserError, match="--function-name is required"):
        HTTP.new_spec(given("http", "create", "web"), api_server)


def test_no_default_host_without_a_usable_api_server():
    def no_kubeconfig() -> str:
        raise UserError("no kubeconfig: ~/.kube/config does not exist")

    with pytest.raises(UserError, match=r"no kubeconfig: .*or give --hostname"):
        HTTP.new_spec({schema.FUNCTION_NAME: "f"}, no_kubeconfig)
    with pytest.raises(UserError, match=r"the API server https://\[::1\]:6443 gives no usable default host"):
        HTTP.new_spec({schema.FUNCTION_NAME: "f"}, lambda: "https://[::1]:6443")


# --- http: update ---------------------------------------------------------------------------------------------------

def stored_http(**spec) -> dict:
    return {"apiVersion": meta.API_VERSION, "kind": "HTTPTrigger",
            "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "7"},
            "spec": {schema.FUNCTION_NAME: "hello", schema.HOST_NAME: "hello.example.com", schema.GATEWAY: "nginx",
                     "tls": True, schema.CORS_ENABLE: False, **spec}}


def http_patch(current: dict, *flags: str) -> dict:
    return HTTP.update_patch(current, given("http", "update", "web", *flags), api_server)


def test_an_update_changes_only_what_is_given_and_keeps_tls_unlike_kubeless():
    assert http_patch(stored_http(), "--path", "/v2") == {"spec": {"path": "v2"}}
    assert http_patch(stored_http(), "--function-name", "other") == {"spec": {schema.FUNCTION_NAME: "other"}}


def test_an_empty_value_or_no_flag_removes_a_setting():
    assert http_patch(stored_http(path="v2"), "--path", "") == {"spec": {"path": None}}
    assert http_patch(stored_http(), "--no-enableTLSAcme") == {"spec": {"tls": None}}
    assert http_patch(stored_http(), "--no-cors-enable") == {"spec": {schema.CORS_ENABLE: None}}


def test_what_the_trigger_has_already_patches_nothing():
    assert http_patch(stored_http(), "--hostname", "hello.example.com", "--enableTLSAcme") == {}


def test_an_update_is_checked_with_what_the_trigger_has():
    with pytest.raises(UserError, match="Cannot specify both --enableTLSAcme and --tls-secret"):
        http_patch(stored_http(), "--tls-secret", "cert")
    assert http_patch(stored_http(), "--tls-secret", "cert", "--no-enableTLSAcme") == \
        {"spec": {schema.TLS_SECRET: "cert", "tls": None}}
    with pytest.raises(UserError, match="--gateway-ref only goes with --gateway gateway-api"):
        http_patch(stored_http(), "--gateway-ref", "public")


def test_moving_to_gateway_api_and_back():
    to_gateway_api = http_patch(stored_http(tls=False), "--gateway", "gateway-api", "--hostname", "")
    assert to_gateway_api == {"spec": {schema.GATEWAY: "gateway-api", schema.HOST_NAME: None,
                                       schema.GATEWAY_REF: schema.DEFAULT_GATEWAY_REF}}
    on_gateway_api = objects.apply_merge_patch(stored_http(tls=False), to_gateway_api)
    # back to nginx: the Gateway reference goes, and nginx's default host comes back
    assert http_patch(on_gateway_api, "--gateway", "nginx") == {"spec": {
        schema.GATEWAY: "nginx", schema.GATEWAY_REF: None, schema.HOST_NAME: "hello.192.168.49.2.nip.io"}}
    with pytest.raises(UserError, match="The --hostname flag is required with --gateway traefik"):
        http_patch(on_gateway_api, "--gateway", "traefik")


def test_a_trigger_kubeless_wrote_without_a_gateway_is_an_nginx_one():
    kubeless_made = stored_http(tls=False)
    del kubeless_made["spec"][schema.GATEWAY]
    assert http_patch(kubeless_made, "--path", "x") == {"spec": {"path": "x"}}
    with pytest.raises(UserError, match="--gateway-ref only goes with --gateway gateway-api; this trigger's gateway "
                                        "is nginx"):
        http_patch(kubeless_made, "--gateway-ref", "public")


# --- cronjob --------------------------------------------------------------------------------------------------------

def test_a_cron_trigger_as_kubeless_made_it():
    assert cron_spec("--schedule", "*/5 * * * *") == {schema.FUNCTION_NAME: "hello", "schedule": "*/5 * * * *"}


@pytest.mark.parametrize("text", ['{"name": "world", "n": 1}', "name: world\nn: 1", "{name: world, n: 1}"])
def test_a_payload_is_json_or_yaml(text):
    assert cron_spec("--schedule", "@daily", "-p", text)["payload"] == {"name": "world", "n": 1}


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_a_payload_file_is_json_or_yaml_by_its_name(tmp_path: Path, suffix):
    path = tmp_path / f"payload{suffix}"
    path.write_text('{"name": "world"}' if suffix == ".json" else "name: world\n")
    assert cron_spec("--schedule", "@daily", "-f", str(path))["payload"] == {"name": "world"}


@pytest.mark.parametrize(("flags", "message"), [
    (["--schedule", "every day"], "invalid --schedule 'every day': expected 5 fields"),
    (["--schedule", "61 * * * *"], "bad minute field"),
    (["--schedule", "@daily", "-p", "{oops"], "invalid --payload: not JSON or YAML (JSON: Expecting property name"),
    (["--schedule", "@daily", "-p", "hello"], "invalid --payload: a payload is an object, e.g. "),
    (["--schedule", "@daily", "-p", "[1, 2]"], "not a list"),
    (["--schedule", "@daily", "-p", "when: 2024-01-02"], "it holds a value JSON cannot carry (a YAML date"),
    (["--schedule", "@daily", "-p", "{}", "-f", "x.json"], "give --payload or --payload-from-file, not both"),
    (["--schedule", "@daily", "-p", '{"data": "' + "x" * 70000 + '"}'], "over the 65536 a scheduled call carries"),
    (["--schedule", "@daily", "-f", "payload.txt"], "invalid --payload-from-file payload.txt: give a .json, .yaml "
                                                    "or .yml file"),
    (["--schedule", "@daily", "-f", "/nonexistent/p.json"], "--payload-from-file /nonexistent/p.json: No such file"),
])
def test_bad_cron_input_is_refused_with_a_message_naming_it(flags, message):
    with pytest.raises(UserError) as refused:
        cron_spec(*flags)
    assert message in str(refused.value)


def test_a_json_file_is_read_as_json_only(tmp_path: Path):
    path = tmp_path / "payload.json"
    path.write_text("name: world\n")
    with pytest.raises(UserError, match=r"invalid --payload-from-file .*payload.json: not JSON \(JSON: Expecting"):
        cron_spec("--schedule", "@daily", "-f", str(path))


def test_a_huge_payload_file_is_refused_as_a_payload_without_reading_it_whole(tmp_path: Path):
    path = tmp_path / "payload.json"
    with path.open("wb") as handle:
        handle.truncate(2 * 1024 * 1024)
    with pytest.raises(UserError, match=r"--payload-from-file .*: 2097152 bytes, over the 262144 read for a payload "
                                        r"\(a scheduled call carries 65536 bytes of JSON\)") as refused:
        cron_spec("--schedule", "@daily", "-f", str(path))
    assert "ConfigMap" not in str(refused.value)


def test_create_needs_a_function_and_a_schedule():
    with pytest.raises(UserError, match="--schedule is required"):
        cron_spec()
    with pytest.raises(UserError, match="--function is required"):
        CRON_JOB.new_spec(given("cronjob", "create", "tick", "--schedule", "@daily"))


def test_a_new_cron_trigger_name_fits_its_cronjob():
    assert CRON_JOB.new_name("a" * 52) == "a" * 52
    with pytest.raises(UserError, match="at most 52 .*the CronJob that calls the function is named after it"):
        CRON_JOB.new_name("a" * 53)
    with pytest.raises(UserError, match="invalid cronjob trigger name 'Tick_1': must be a DNS-1123 subdomain"):
        CRON_JOB.new_name("Tick_1")


def stored_cron(**spec) -> dict:
    return {"apiVersion": meta.API_VERSION, "kind": "CronJobTrigger",
            "metadata": {"name": "tick", "namespace": "ns", "resourceVersion": "3"},
            "spec": {schema.FUNCTION_NAME: "hello", "schedule": "@daily", **spec}}


def cron_patch(current: dict, *flags: str) -> dict:
    return CRON_JOB.update_patch(current, given("cronjob", "update", "tick", *flags))


def test_an_update_keeps_the_function_and_schedule_unlike_kubeless():
    assert cron_patch(stored_cron(), "--schedule", "@hourly") == {"spec": {"schedule": "@hourly"}}
    assert cron_patch(stored_cron(payload={"a": 1}), "--function", "other") == {"spec": {schema.FUNCTION_NAME: "other"}}


def test_a_new_payload_replaces_the_old_one_whole():
    patch = cron_patch(stored_cron(payload={"a": 1, "keep": {"x": 1, "y": 2}}), "-p", '{"b": 2, "keep": {"x": 1}}')
    assert patch == {"spec": {"payload": {"a": None, "b": 2, "keep": {"y": None}}}}
    assert objects.apply_merge_patch(stored_cron(payload={"a": 1, "keep": {"x": 1, "y": 2}}), patch)["spec"][
        "payload"] == {"b": 2, "keep": {"x": 1}}
    assert cron_patch(stored_cron(payload={"a": 1}), "-p", "") == {"spec": {"payload": None}}


def test_a_null_member_cannot_be_sent_by_a_merge_patch():
    with pytest.raises(UserError, match="cannot set payload.user to null: an update is a JSON merge patch"):
        cron_patch(stored_cron(payload={"a": 1}), "-p", '{"user": null}')


def test_deploy_schedule_builds_its_trigger_as_trigger_cronjob_create_does():
    made = cron_trigger("tick", "ns", function="hello", schedule="@daily", labels=meta.function_labels("tick"))
    assert made == CRON_JOB.build("tick", "ns", cron_spec("--schedule", "@daily"), meta.function_labels("tick"))


def test_deploy_schedule_refuses_a_function_name_its_cronjob_cannot_take():
    args = cli.build_parser().parse_args(["function", "deploy", "a" * 53, "-r", "python3.11", "--handler", "h.f",
                                          "-f", "h.py", "--schedule", "@daily"])
    with pytest.raises(UserError, match="invalid function name with --schedule 'a{53}': .*at most 52"):
        function_spec.parse_options(args, deploy=True)
    args.schedule = None  # without a trigger, the name is fine
    assert function_spec.parse_options(args, deploy=True).name == "a" * 53


# --- the merge patch between two specs ------------------------------------------------------------------------------

@pytest.mark.parametrize(("current", "wanted"), [
    ({"a": 1, "b": {"c": 1, "d": 2}}, {"a": 1, "b": {"c": 2}}),
    ({"a": {"x": 1}}, {"a": [1, None]}),
    ({"a": 1}, {"a": {"x": {}}}),
    ({"a": None, "b": 1}, {"a": None, "b": 2}),  # a null stored already stays as it is
    ({}, {}),
])
def test_merge_patch_from_is_undone_by_applying_it(current, wanted):
    assert objects.apply_merge_patch(current, objects.merge_patch_from(current, wanted)) == wanted


# --- the ls rows ----------------------------------------------------------------------------------------------------

def with_ready(trigger: dict, status: str, reason: str, **fields) -> dict:
    return {**trigger, "status": {"conditions": [{"type": "Ready", "status": status, "reason": reason}], **fields}}


def test_http_row():
    now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    row = HTTP.row(with_ready(stored_http(path="v2"), "True", "RouteReady", address="10.0.0.9"), now)
    assert row == ["web", "ns", "hello", "hello.example.com", "/v2", "nginx", "10.0.0.9", "True"]
    gateway_api = stored_http(**{schema.GATEWAY: "gateway-api", schema.HOST_NAME: ""})
    assert HTTP.row(with_ready(gateway_api, "False", "GatewayNotFound"), now) == \
        ["web", "ns", "hello", "*", "/", "gateway-api", "<none>", "False (GatewayNotFound)"]
    assert len(HTTP.row(stored_http(), now)) == len(HTTP.headers)


def test_cron_row():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    called = with_ready(stored_cron(), "False", "LastCallFailed", lastResult="Failed",
                        lastScheduleTime=meta.rfc3339(now - timedelta(minutes=5)))
    assert CRON_JOB.row(called, now) == ["tick", "ns", "@daily", "hello", "5m", "Failed", "False (LastCallFailed)"]
    assert CRON_JOB.row(stored_cron(), now) == ["tick", "ns", "@daily", "hello", "<none>", "<none>", "<none>"]
    assert len(CRON_JOB.row(stored_cron(), now)) == len(CRON_JOB.headers)


def test_ready_shows_the_reason_unless_true():
    assert ready_column(with_ready({}, "True", "Scheduled")) == "True"
    assert ready_column(with_ready({}, "Unknown", "")) == "Unknown"
    assert ready_column({}) == "<none>"
