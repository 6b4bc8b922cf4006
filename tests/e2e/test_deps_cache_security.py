"""The dependency cache cannot be poisoned: a pod of another namespace, with a service-account token of its own or
none, can neither claim, store nor read a function's dependencies, a stored entry is never replaced (not even with a
token of the owner's namespace), and a function whose own environment points pip at another index gets a build of its
own. The victim always runs with its own dependencies."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import package_index
from conftest import Cluster
from kubeless_api import meta
from support import wait_until
from test_dependencies import USES_GREETING, init_log, kubeless_config, pypi  # noqa: F401 - pypi: a fixture

VERSION = meta.project_version()
PROVISION_IMAGE = meta.image("provision", VERSION)
PYTHON_IMAGE = meta.image("python", VERSION)
HOLD = "kubeless-e2e-hold=nowhere"  # a node selector no node matches: the Deployment exists, its pod waits
POISONED = 'def greet(name):\n    return f"poisoned, {name}"\n'

# Claims, stores and reads the key $KEY with each token of $TOKENS (name:file ...; "none:" sends an empty one), a
# tarball whose greeting module says "poisoned"; prints "<token name> <claim|put|get> <HTTP status>".
ATTACK = """
site=/tmp/p/lib/python3.11/site-packages/greeting
mkdir -p $site && printf 'def greet(name):\\n    return "poisoned"\\n' > $site/__init__.py
tar -czf /tmp/p.tar.gz -C /tmp/p lib
digest=$(sha256sum /tmp/p.tar.gz | cut -d ' ' -f 1)
printf 'eyJhbGciOiJSUzI1NiJ9.forged.forged' > /tmp/forged
printf '%s' "$LEAKED" > /tmp/leaked
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
for entry in $TOKENS; do
  name=${entry%%:*}; token=$(cat "${entry#*:}" 2>/dev/null)
  echo "$name claim $(code -X POST -H "Authorization: Bearer $token" "$URL/v1/$KEY/claim")"
  echo "$name put $(code -X PUT -H "Authorization: Bearer $token" -H "X-Kubeless-Sha256: $digest" \\
    --data-binary @/tmp/p.tar.gz "$URL/v1/$KEY.tar.gz")"
  echo "$name get $(code -H "Authorization: Bearer $token" "$URL/v1/$KEY.tar.gz")"
done
"""
TOKENS = "/var/run/attacker"  # the attacker pod's own projected tokens: `cache` for the cache's audience, `api` not
ALL_REFUSED = {"none": "401", "forged": "403", "api": "403", "own": "403"}


@pytest.fixture
def attacker_namespace(plugin: Cluster) -> str:
    """A second fresh namespace, the attacker's, deleted afterwards."""
    name = f"e2e-{uuid.uuid4().hex[:8]}-attacker"
    plugin.kubectl("create", "namespace", name)
    wait_until(f"namespace {name}'s default service account",
               lambda: plugin.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
               timeout=30)
    yield name
    plugin.kubectl("delete", "namespace", name, "--wait=false", check=False)


def deploy(cluster: Cluster, namespace: str, name: str, tmp_path: Path, requirements: str, *flags: str,
           wait: bool = True) -> None:
    (tmp_path / "hello.py").write_text(USES_GREETING)
    (tmp_path / "requirements.txt").write_text(requirements)
    cluster.run("kubectl", "kubeless", "function", "deploy", name, "-n", namespace, "--runtime", "python3.11",
                "--from-file", str(tmp_path / "hello.py"), "--handler", "hello.hello",
                "--dependencies", str(tmp_path / "requirements.txt"), *flags, *(["--wait"] if wait else []),
                timeout=300)


def call(cluster: Cluster, namespace: str, name: str, data: str) -> str:
    return cluster.run("kubectl", "kubeless", "function", "call", name, "-n", namespace, "--data", data).stdout


def deps_key(cluster: Cluster, namespace: str, name: str) -> str | None:
    """The cache key in the function's Deployment (none until the controller renders it with the cache)."""
    deployment = cluster.get_json("deployment", name, "-n", namespace)
    fetch = next((c for c in deployment["spec"]["template"]["spec"].get("initContainers") or []
                  if c["name"] == "deps-fetch"), None)
    return next((e["value"] for e in fetch["env"] if e["name"] == "DEPS_KEY"), None) if fetch else None


def running_pods(cluster: Cluster, namespace: str, name: str) -> list[str]:
    return [p["metadata"]["name"] for p in cluster.get_json("pods", "-n", namespace, "-l", f"function={name}")["items"]
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def ready_replicas(cluster: Cluster, namespace: str, name: str, count: int, timeout: float = 240) -> None:
    wait_until(f"{count} ready replicas of {name}", lambda: cluster.get_json("deployment", name, "-n", namespace)[
        "status"].get("readyReplicas") == count and len(running_pods(cluster, namespace, name)) == count,
        timeout=timeout)


def attack(cluster: Cluster, namespace: str, key: str, tokens: dict[str, str], *,
           leaked: str = "") -> dict[str, dict[str, str]]:
    """Run ATTACK in a pod of `namespace` with the tokens `tokens` (name: file in the pod); {token name: {claim|put|
    get: HTTP status}}. The files there: /tmp/forged, /tmp/leaked (holding `leaked`), and the pod's own projected
    tokens under TOKENS."""
    url = cluster.get_json("configmap", "kubeless-config", "-n", "kubeless")["data"]["deps-cache-url"]
    name = f"attacker-{uuid.uuid4().hex[:6]}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "restartPolicy": "Never", "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [{"name": "tokens", "projected": {"sources": [
            {"serviceAccountToken": {"audience": "kubeless-deps-cache", "expirationSeconds": 600, "path": "cache"}},
            {"serviceAccountToken": {"expirationSeconds": 600, "path": "api"}}]}}],
        "containers": [{
            "name": "attacker", "image": PROVISION_IMAGE, "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", ATTACK],
            "env": [{"name": "URL", "value": url}, {"name": "KEY", "value": key}, {"name": "LEAKED", "value": leaked},
                    {"name": "TOKENS", "value": " ".join(f"{n}:{f}" for n, f in tokens.items())}],
            "volumeMounts": [{"name": "tokens", "mountPath": TOKENS, "readOnly": True}],
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}
    cluster.apply(json.dumps(pod), namespace)
    wait_until(f"the attacker pod {name} to finish", lambda: cluster.get_json("pod", name, "-n", namespace)[
        "status"].get("phase") in ("Succeeded", "Failed"), timeout=120)
    log = cluster.kubectl("logs", name, "-n", namespace).stdout
    answers: dict[str, dict[str, str]] = {}
    for line in log.splitlines():
        token, verb, status = line.split()
        answers.setdefault(token, {})[verb] = status
    assert sum(len(verbs) for verbs in answers.values()) == 3 * len(tokens), log
    return answers


def every_verb(status: str) -> dict[str, str]:
    return {"claim": status, "put": status, "get": status}


@pytest.mark.usefixtures("pypi")  # the index in the victim's namespace, in kubeless-config's install-env
def test_another_namespace_can_neither_claim_store_nor_read_and_the_victim_keeps_its_dependencies(
        plugin: Cluster, namespace: str, attacker_namespace: str, tmp_path: Path):
    cluster = plugin
    requirements = f"# {namespace}\ngreeting==1.0.0\n"  # this test's own dependency file, so its own key
    # the victim's Deployment is made, its pod cannot start yet: the attacker goes first
    deploy(cluster, namespace, "victim", tmp_path, requirements, "--node-selectors", HOLD, wait=False)
    key = wait_until("the victim's cache key", lambda: deps_key(cluster, namespace, "victim"), timeout=60)
    assert key.endswith(f"@{namespace}"), "the key names the namespace that owns it"
    pod = cluster.get_json("deployment", "victim", "-n", namespace)["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["deps-cache-token"]["projected"]["sources"] == [{"serviceAccountToken": {  # (defaultMode is added)
        "audience": "kubeless-deps-cache", "expirationSeconds": 600, "path": "token"}}]
    # the attacker's own function, with the same dependency file: a key of its own
    deploy(cluster, attacker_namespace, "thief", tmp_path, requirements, "--node-selectors", HOLD, wait=False)
    thief_key = wait_until("the thief's cache key", lambda: deps_key(cluster, attacker_namespace, "thief"),
                           timeout=60)
    assert thief_key != key and thief_key.endswith(f"@{attacker_namespace}"), \
        "the namespace is in the key unless deps-cache-shared"

    tokens = {"none": "", "forged": "/tmp/forged", "api": f"{TOKENS}/api", "own": f"{TOKENS}/cache"}
    answers = attack(cluster, attacker_namespace, key, tokens)
    assert answers == {name: every_verb(status) for name, status in ALL_REFUSED.items()}

    # the victim starts: nobody squats its claim, nothing is in the cache under its key, it builds its own
    cluster.kubectl("patch", "function", "victim", "-n", namespace, "--type=json", "-p", json.dumps(
        [{"op": "remove", "path": "/spec/deployment/spec/template/spec/nodeSelector"}]))
    ready_replicas(cluster, namespace, "victim", 1)
    assert deps_key(cluster, namespace, "victim") == key, "where a pod runs is not in the key"
    (first,) = running_pods(cluster, namespace, "victim")
    fetch_log = init_log(cluster, namespace, first, "deps-fetch")
    assert "building dependencies" in fetch_log and "waiting for it" not in fetch_log, fetch_log
    assert "Successfully installed greeting-1.0.0" in init_log(cluster, namespace, first, "install")
    assert "stored dependencies" in init_log(cluster, namespace, first, "deps-store")
    assert call(cluster, namespace, "victim", "world") == "hello, world\n"

    # stored: still neither replaced nor read by another namespace's pod
    answers = attack(cluster, attacker_namespace, key, tokens)
    assert answers == {name: every_verb(status) for name, status in ALL_REFUSED.items()}
    # even a token of the victim's namespace, leaked, reads the entry but cannot replace it
    leaked = cluster.kubectl("create", "token", "default", "-n", namespace, "--audience", "kubeless-deps-cache",
                             "--duration", "10m").stdout.strip()
    answers = attack(cluster, attacker_namespace, key, {"leaked": "/tmp/leaked"}, leaked=leaked)
    assert answers == {"leaked": {"claim": "409", "put": "409", "get": "200"}}

    # a new replica unpacks what the victim stored, not the attacker's tarball
    cluster.kubectl("scale", "deployment", "victim", "-n", namespace, "--replicas=2")
    ready_replicas(cluster, namespace, "victim", 2)
    (second,) = [pod for pod in running_pods(cluster, namespace, "victim") if pod != first]
    assert "come from the cache" in init_log(cluster, namespace, second, "deps-fetch")
    assert init_log(cluster, namespace, second, "install") == ""
    for _ in range(4):  # both replicas answer from their own dependencies
        assert call(cluster, namespace, "victim", "again") == "hello, again\n"


@pytest.mark.usefixtures("pypi")
def test_a_package_index_of_its_own_is_a_cache_key_of_its_own_even_when_shared(
        plugin: Cluster, namespace: str, attacker_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cluster = plugin
    monkeypatch.setattr(package_index, "MODULE", POISONED)  # the same package and version, other code
    evil = package_index.serve_pypi(cluster, attacker_namespace, PYTHON_IMAGE)
    evil_host = evil.split("/")[2].split(":")[0]
    requirements = f"# {namespace}\ngreeting==1.0.0\n"
    with kubeless_config(cluster, **{"deps-cache-shared": "true"}):
        deploy(cluster, attacker_namespace, "thief", tmp_path, requirements,
               "--env", f"PIP_INDEX_URL={evil}", "--env", f"PIP_TRUSTED_HOST={evil_host}")
        ready_replicas(cluster, attacker_namespace, "thief", 1)  # (rolled again if it beat the config change)
        assert call(cluster, attacker_namespace, "thief", "world") == "poisoned, world\n"
        (thief_pod,) = running_pods(cluster, attacker_namespace, "thief")
        assert "stored dependencies" in init_log(cluster, attacker_namespace, thief_pod, "deps-store")

        deploy(cluster, namespace, "victim", tmp_path, requirements)
        assert deps_key(cluster, namespace, "victim") != deps_key(cluster, attacker_namespace, "thief")
        (victim_pod,) = running_pods(cluster, namespace, "victim")
        assert "building dependencies" in init_log(cluster, namespace, victim_pod, "deps-fetch")
        assert call(cluster, namespace, "victim", "world") == "hello, world\n"

        # sharing is on: a function of another namespace with the victim's install gets the victim's build
        deploy(cluster, attacker_namespace, "twin", tmp_path, requirements)
        wait_until("the twin to have the victim's key", lambda: deps_key(cluster, attacker_namespace, "twin") ==
                   deps_key(cluster, namespace, "victim"), timeout=30)
        ready_replicas(cluster, attacker_namespace, "twin", 1)
        (twin_pod,) = running_pods(cluster, attacker_namespace, "twin")
        assert "come from the cache" in init_log(cluster, attacker_namespace, twin_pod, "deps-fetch")
        assert call(cluster, attacker_namespace, "twin", "world") == "hello, world\n"
