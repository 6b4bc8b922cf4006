"""The shared package kubeless_api: kubeless-config, the catalogue, the rollout rule, and the dependency guard."""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubeless_api import catalogue, conditions, config, meta, resources
from kubeless_api.config import ConfigError, KubelessConfig

REPO = Path(__file__).resolve().parents[2]


# --- the dependency guard --------------------------------------------------------------------------------------

def modules(package_dir: Path) -> list[str]:
    package = package_dir.name
    found = [f"{package}.{info.name}" for info in pkgutil.walk_packages([str(package_dir)], "")]
    return [package] + [name for name in found if not name.endswith("__main__")]  # a __main__ runs its program


SERVER_SIDE = {  # package folder -> what it may import besides the standard library
    REPO / "kubeless_api": {"kubeless_api"},
    REPO / "depcache" / "kubeless_depcache": {"kubeless_api", "kubeless_depcache"},
    REPO / "controller" / "kubeless_controller": {"kubeless_api", "kubeless_depcache", "kubeless_controller"},
    REPO / "brokers": {"kubeless_api", "brokers"},  # manifests.py runs as `python3 -m` before any virtualenv
    # the broker clients (kafka-python, nats-py, boto3) are imported by the consumer that needs them, only there
    REPO / "consumers" / "kubeless_consumers": {"kubeless_api", "kubeless_depcache", "kubeless_controller",
                                                "kubeless_consumers"},
}
PROBE = """
import importlib, json, sys
before = set(sys.modules)
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({name.partition('.')[0] for name in set(sys.modules) - before})))
"""


@pytest.mark.parametrize("module", [m for folder in SERVER_SIDE for m in modules(folder)])
def test_server_side_modules_load_only_the_stdlib_and_the_shared_packages(module: str):
    folder = next(f for f in SERVER_SIDE if module.partition(".")[0] == f.name)
    allowed = SERVER_SIDE[folder]
    path = [str(REPO), str(REPO / "depcache"), str(REPO / "controller"), str(REPO / "consumers")]
    # -I: no site-packages, no user site, no PYTHONPATH; only the folders the images put on the path
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path[:0] = {path!r}\n{PROBE}", module],
                            capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stdout))
    foreign = {name for name in loaded - allowed if name not in sys.stdlib_module_names and name != "_distutils_hack"}
    assert not foreign, f"{module} loads {sorted(foreign)}"
    assert "kubectl_kubeless" not in loaded


def test_the_plugin_and_the_controller_never_import_each_other():
    for folder, other in ((REPO / "controller", "kubectl_kubeless"), (REPO / "kubectl_kubeless", "kubeless_controller"),
                          (REPO / "depcache", "kubectl_kubeless"), (REPO / "consumers", "kubectl_kubeless")):
        for source in folder.rglob("*.py"):
            assert other not in source.read_text(), f"{source} names {other}"


# --- kubeless-config -------------------------------------------------------------------------------------------

def test_settings_from_kubeless_config():
    runtimes = [{"ID": "python", "versions": []}]
    settings = KubelessConfig.from_data({
        "runtime-images": json.dumps(runtimes), "deployment": '{"spec": {"replicas": 2}}',
        "provision-image": " localhost/kubeless/provision:1 ", "functions-namespace": "fns",
        "install-env": '{"PIP_INDEX_URL": "http://pypi.local/simple/"}',
        "deps-cache-url": "http://kubeless-deps-cache.kubeless:8080/"})
    assert settings.runtime_images == runtimes
    assert (settings.deployment, settings.provision_image, settings.install_env, settings.deps_cache_url) == (
        {"spec": {"replicas": 2}}, "localhost/kubeless/provision:1", {"PIP_INDEX_URL": "http://pypi.local/simple/"},
        "http://kubeless-deps-cache.kubeless:8080")
    assert settings.functions_namespace == "fns"


def test_settings_compare_by_value_whatever_the_formatting():
    one = KubelessConfig.from_data({"runtime-images": '[{"ID": "a", "b": 2}]', "deployment": "{}"})
    two = KubelessConfig.from_data({"runtime-images": '[ {"b":2,"ID":"a"} ]', "deployment": ""})
    assert one == two
    assert one != KubelessConfig.from_data({"runtime-images": '[{"ID": "a", "b": 2}]',
                                            "deployment": '{"metadata": {"labels": {"x": "y"}}}'})


def test_missing_config_means_defaults():
    settings = KubelessConfig.from_data(None)
    assert settings == KubelessConfig()
    assert (settings.runtime_images, settings.deployment, settings.provision_image, settings.install_env,
            settings.deps_cache_url) == ([], {}, "", {}, "")


@pytest.mark.parametrize("data", [{"runtime-images": "not json"}, {"runtime-images": "{}"},
                                  {"runtime-images": '[{"no": "ID"}]'},
                                  {"deployment": "[1]"}, {"deployment": "{"}, {"install-env": "[]"},
                                  {"install-env": '{"A": 1}'}])
def test_bad_config_is_rejected(data: dict):
    with pytest.raises(ConfigError):
        KubelessConfig.from_data(data)


def test_what_an_install_writes_reads_back_the_same():
    settings = KubelessConfig(runtime_images=[{"ID": "python", "versions": []}], provision_image="p:1",
                              install_env={"GOPROXY": "http://proxy"}, deps_cache_url="http://cache:8080")
    data = settings.to_data()
    assert KubelessConfig.from_data(data) == settings
    assert all(isinstance(value, str) for value in data.values())


# --- the catalogue ---------------------------------------------------------------------------------------------

RUNTIMES = catalogue.parse((REPO / "kubeless_api" / catalogue.CATALOGUE_FILE).read_text())


def test_runtime_ids_and_lookup():
    assert {"python3.11", "nodejs18", "go1.26"} <= set(catalogue.runtime_ids(RUNTIMES))
    runtime = catalogue.find(RUNTIMES, "python3.11")
    assert (runtime.id, runtime.dep_name, runtime.file_suffix) == ("python3.11", "requirements.txt", ".py")
    assert "runtime" in runtime.phases
    with pytest.raises(catalogue.CatalogueError, match="unknown runtime 'cobol85'; supported: .*python3.11"):
        catalogue.find(RUNTIMES, "cobol85")


def test_a_yaml_catalogue_is_refused_with_what_to_do():
    with pytest.raises(catalogue.CatalogueError, match="not JSON"):
        catalogue.parse("- ID: python\n  versions: []\n")


# --- conditions and the rollout rule ---------------------------------------------------------------------------

def deployment(generation=1, **status) -> dict:
    return {"metadata": {"name": "d", "generation": generation}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, **status}}


@pytest.mark.parametrize("dep, stage", [
    (deployment(generation=2), "observed"),
    (deployment(updatedReplicas=1), "updated"),
    (deployment(updatedReplicas=2, replicas=3), "terminated"),
    (deployment(updatedReplicas=2, replicas=2, availableReplicas=1), "available"),
    (deployment(updatedReplicas=2, replicas=2, availableReplicas=2), "done"),
])
def test_rollout_stages(dep: dict, stage: str):
    assert conditions.rollout(dep).stage == stage
    assert conditions.rollout(dep).done == (stage == "done")


def test_failure_reasons_are_ready_reasons_that_waiting_cannot_fix():
    assert conditions.REASON_DEPLOYING not in conditions.FAILURE_REASONS
    assert {"InstallFailed", "FunctionCrashed", "InvalidSpec"} <= conditions.FAILURE_REASONS
    assert conditions.get_condition({"conditions": [{"type": "Ready", "status": "True"}]}, "Ready")["status"] == "True"
    assert conditions.get_condition(None, "Ready") == {}


# --- resources and meta ----------------------------------------------------------------------------------------

def test_paths():
    assert resources.path("v1", "Pod", "ns") == "/api/v1/namespaces/ns/pods"
    assert resources.path("apps/v1", "Deployment", "ns", "d", "status") == "/apis/apps/v1/namespaces/ns/deployments/d/status"
    assert resources.path(meta.API_VERSION, "Function") == "/apis/kubeless.io/v1beta1/functions"
    assert resources.display_name({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}) == \
        "deployment.apps/x"


def test_dig():
    assert meta.dig({"a": {"b": {"c": 1}}}, "a", "b", "c") == 1
    assert meta.dig({"a": None}, "a", "b", default={}) == {}
    assert meta.dig({"a": [1]}, "a", "b") is None


# --- the runtime contract --------------------------------------------------------------------------------------

RUNTIME_SOURCES = {
    "python": [REPO / "runtimes" / "python" / "kubeless_runtime.py"],
    "nodejs": sorted((REPO / "runtimes" / "nodejs").glob("**/*.js")),
    "go": sorted(p for p in (REPO / "runtimes" / "go" / "kubeless" / "pkg").glob("**/*.go")
                 if not p.name.endswith("_test.go")),
}


@pytest.mark.parametrize("runtime", sorted(RUNTIME_SOURCES))
def test_every_runtime_uses_the_contracts_names(runtime: str):
    """The runtimes are other languages and cannot import the contract: their sources must name what it names
    (tests/unit/test_runtime_contract.py checks what they do with them)."""
    from kubeless_api import contract

    source = "\n".join(path.read_text() for path in RUNTIME_SOURCES[runtime])
    names = [contract.ENV_HANDLER, contract.ENV_MODULE, contract.ENV_TIMEOUT, contract.ENV_RUNTIME,
             contract.ENV_MEMORY_LIMIT, contract.ENV_PORT, contract.ENV_BODY_LIMIT, contract.ENV_HEADER_TIMEOUT,
             contract.ENV_READ_TIMEOUT, contract.ENV_MAX_CONNECTIONS, contract.ENV_GRACE_PERIOD,
             *contract.EVENT_HEADERS,
             contract.PATH_HEALTH, contract.PATH_METRICS, contract.METRIC_CALLS, contract.METRIC_FAILURES,
             contract.METRIC_DURATION, contract.METRIC_STUCK]
    missing = [name for name in names if name not in source]
    assert not missing, f"the {runtime} runtime does not name {missing}"


def test_an_upgrade_keeps_the_admins_settings_and_takes_the_new_versions():
    fresh = KubelessConfig(runtime_images=[{"ID": "python", "versions": []}], provision_image="p:2").to_data()
    existing = {**KubelessConfig(provision_image="p:1").to_data(), "install-env": '{"PIP_INDEX_URL": "http://mine"}',
                "my-own-key": "x"}
    data = config.upgraded(existing, fresh)
    assert data["install-env"] == '{"PIP_INDEX_URL": "http://mine"}' and data["my-own-key"] == "x"
    assert data["provision-image"] == "p:2" and data["runtime-images"] == fresh["runtime-images"]
    assert config.upgraded(None, fresh) == fresh


@pytest.mark.parametrize("timeout, seconds", [("30", 30), (45, 45), (None, 180), ("", 180), ("0", 180),
                                              ("1.5", 180)])
def test_a_functions_timeout_is_its_whole_seconds_or_the_default(timeout, seconds):
    assert meta.timeout_seconds({"spec": {"timeout": timeout}}) == seconds
