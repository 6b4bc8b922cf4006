"""Pure functions from a Function (plus the controller's configuration) to the objects that run it.

The reconcile loop applies what these return with server-side apply and nothing else: every decision about what a
function's ConfigMap, Service, Deployment and HorizontalPodAutoscaler look like lives here, where unit tests read it.
"""
from __future__ import annotations

import copy
import hashlib
import json
import shlex
from dataclasses import dataclass

from kubectl_kubeless import api
from kubectl_kubeless.runtimes import runtime_ids


class RenderError(ValueError):
    """The Function cannot be turned into workloads; the message goes into its Ready condition as is."""


@dataclass(frozen=True)
class Runtime:
    """One runtime version of the catalogue, e.g. python3.11, with what the render needs from its entry."""
    id: str
    dep_name: str
    file_suffix: str
    phases: dict[str, dict]  # phase name (installation, compilation, runtime) -> {image, command, env}
    liveness_probe: dict | None = None


def find_runtime(catalogue: list[dict], runtime_id: str) -> Runtime:
    for entry in catalogue:
        for version in entry.get("versions", []):
            if entry["ID"] + version["version"] == runtime_id:
                if not any(image.get("phase") == "runtime" for image in version.get("images", [])):
                    raise RenderError(f"runtime {runtime_id!r} has no runtime image in the catalogue")
                return Runtime(runtime_id, entry.get("depName", ""), entry.get("fileNameSuffix", ""),
                               {image["phase"]: image for image in version.get("images", [])},
                               entry.get("livenessProbeInfo"))
    raise RenderError(f"unknown runtime {runtime_id!r}; supported: {', '.join(runtime_ids(catalogue))}")


def split_handler(handler: str) -> tuple[str, str]:
    module, _, function = handler.partition(".")
    if not module or not function or "." in function:
        raise RenderError(f"handler {handler!r} must be <module>.<function>, e.g. hello.handler")
    return module, function


def content_type(spec: dict) -> str:
    return spec.get("function-content-type") or "text"


def is_archive(kind: str) -> bool:
    return "+zip" in kind or "+compressedtar" in kind


def source_file_name(spec: dict, runtime: Runtime) -> str:
    """The key of the code in the ConfigMap and its name in /kubeless: an archive keeps the bare module name."""
    module, _ = split_handler(spec["handler"])
    return module if is_archive(content_type(spec)) else module + runtime.file_suffix


def owner_reference(function: dict) -> dict:
    return {"apiVersion": api.API_VERSION, "kind": "Function", "name": function["metadata"]["name"],
            "uid": function["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def child_metadata(function: dict, extra_labels: dict | None = None) -> dict:
    meta = function["metadata"]
    labels = {**(extra_labels or {}), **meta.get("labels", {}), **api.function_labels(meta["name"])}
    return {"name": meta["name"], "namespace": meta["namespace"], "labels": labels,
            "ownerReferences": [owner_reference(function)]}


def target_port(spec: dict) -> int:
    ports = (spec.get("service") or {}).get("ports") or []
    if ports:
        port = ports[0].get("targetPort") or ports[0].get("port")
        if isinstance(port, int):
            return port
    return api.FUNCTION_PORT


def uses_custom_image(spec: dict) -> bool:
    containers = (((spec.get("deployment") or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get(
        "containers") or [{}]
    return bool(containers[0].get("image"))


# --- ConfigMap and Service -------------------------------------------------------------------------------------

def config_map(function: dict, runtime: Runtime | None) -> dict:
    spec = function["spec"]
    data = {}
    if spec.get("handler") and runtime is not None:
        data["handler"] = spec["handler"]
        data[source_file_name(spec, runtime)] = spec.get("function", "")
        if runtime.dep_name:
            data[runtime.dep_name] = spec.get("deps", "")
    size = sum(len(key) + len(value.encode()) for key, value in data.items())
    if size > api.CONFIGMAP_LIMIT:
        raise RenderError(f"the code and dependencies take {size} bytes, over the ConfigMap limit of "
                          f"{api.CONFIGMAP_LIMIT}; serve the code from a URL (function-content-type url)")
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": child_metadata(function), "data": data}


def service(function: dict) -> dict:
    spec = copy.deepcopy(function["spec"].get("service") or {})
    name = function["metadata"]["name"]
    if not spec.get("ports"):
        spec["ports"] = [{"name": api.FUNCTION_PORT_NAME, "port": api.FUNCTION_PORT,
                          "targetPort": api.FUNCTION_PORT, "protocol": "TCP"}]
    for port in spec["ports"]:
        port.setdefault("protocol", "TCP")
        if not port.get("nodePort"):
            port.pop("nodePort", None)
    spec["selector"] = spec.get("selector") or api.function_labels(name)
    spec.setdefault("type", "ClusterIP")
    if not spec.get("clusterIP"):
        spec.pop("clusterIP", None)
    return {"apiVersion": "v1", "kind": "Service", "metadata": child_metadata(function), "spec": spec}


# --- Deployment ------------------------------------------------------------------------------------------------

def merge_template(defaults: dict, own: dict) -> dict:
    """The controller's default Deployment under the function's own: the function wins, container lists merge by
    index, and the env, volumeMounts and ports of a container are appended (Kubeless' rules)."""
    result = copy.deepcopy(defaults)
    for key, value in own.items():
        if key == "containers" or key == "initContainers":
            merged = copy.deepcopy(result.get(key) or [])
            for index, container in enumerate(value or []):
                if index < len(merged):
                    merged[index] = merge_container(merged[index], container)
                else:
                    merged.append(copy.deepcopy(container))
            result[key] = merged
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_template(result[key], value)
        elif value not in (None, "", [], {}):
            result[key] = copy.deepcopy(value)
    return result


def merge_container(base: dict, own: dict) -> dict:
    merged = merge_template({k: v for k, v in base.items() if k not in ("env", "volumeMounts", "ports")},
                            {k: v for k, v in own.items() if k not in ("env", "volumeMounts", "ports")})
    for key in ("env", "volumeMounts", "ports"):
        items = [*(base.get(key) or []), *(own.get(key) or [])]
        if items:
            merged[key] = copy.deepcopy(items)
    return merged


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def prepare_script(spec: dict, runtime: Runtime) -> str:
    """Shell for the `prepare` init container: fetch or decode the code, verify its checksum, unpack it."""
    kind = content_type(spec)
    name = source_file_name(spec, runtime)
    steps = ["set -e"]
    origin = f"{api.SOURCE_VOLUME}/{name}"
    if "base64" in kind:
        steps.append(f"base64 -d < {origin} > /tmp/func.decoded")
        origin = "/tmp/func.decoded"
    elif "url" in kind:
        url = spec.get("function", "")
        steps.append(f"curl --fail --silent --show-error --location --retry 2 --output /tmp/func.fromurl "
                     f"{shlex.quote(url)}")
        origin = "/tmp/func.fromurl"
    checksum = spec.get("checksum") or ""
    if checksum:
        algorithm, _, digest = checksum.partition(":")
        if algorithm != "sha256" or len(digest) != 64:
            raise RenderError(f"checksum {checksum!r} must be sha256:<64 hex digits>")
        steps.append(f"echo '{digest}  {origin}' | sha256sum -c - >/dev/null || "
                     f"{{ echo 'checksum mismatch: the code does not hash to {checksum}' >&2; exit 1; }}")
    if "+zip" in kind:
        steps.append(f"unzip -q -o {origin} -d {api.INSTALL_VOLUME}")
    elif "+compressedtar" in kind:
        steps.append(f"tar -xf {origin} -C {api.INSTALL_VOLUME}")
    else:
        steps.append(f"cp {origin} {api.INSTALL_VOLUME}/{name}")
    # An empty dependency file is no file: an empty package.json, for one, breaks Node's module loading.
    if runtime.dep_name and spec.get("deps") and "deps" not in kind.split("+")[1:]:
        steps.append(f"cp {api.SOURCE_VOLUME}/{runtime.dep_name} {api.INSTALL_VOLUME}/{runtime.dep_name}")
    return " && ".join(steps[:1]) + "\n" + "\n".join(steps[1:])


def env_list(values: dict[str, str]) -> list[dict]:
    return [{"name": key, "value": value} for key, value in values.items()]


def hardened(container: dict) -> dict:
    container.setdefault("securityContext", {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": False})
    # A failing init container's last log lines become its termination message, which status shows the user.
    container.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    return container


def deps_cache_key(runtime: Runtime, install: dict, deps: str) -> str:
    """Dependencies are built once per runtime, installer and dependency file, then shared (Kubeless #158)."""
    return f"{runtime.id}-{sha256_hex(json.dumps([install['image'], install['command'], deps]))}"


PREPARED_LIST = ".kubeless-prepared"
CACHED_MARK = ".kubeless-deps-cached"

# Before `install`: take the dependencies from the cache, or claim the right to build them, or wait for the pod that
# claimed it. Any failure to reach the cache means: build here, as if there were no cache.
DEPS_FETCH_SCRIPT = f"""cd {api.INSTALL_VOLUME}
ls -A > {PREPARED_LIST}
artifact="$DEPS_CACHE_URL/v1/$DEPS_KEY.tar.gz"
fetch() {{ curl -fsS --max-time 120 -o /tmp/deps.tar.gz "$artifact" 2>/dev/null && tar -xzf /tmp/deps.tar.gz && \
  touch {CACHED_MARK} && echo "dependencies $DEPS_KEY come from the cache"; }}
fetch && exit 0
claim=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 -X POST "$DEPS_CACHE_URL/v1/$DEPS_KEY/claim")
if [ "$claim" = 409 ]; then
  echo "another pod is building dependencies $DEPS_KEY; waiting for it"
  i=0; while [ $i -lt 150 ]; do sleep 2; fetch && exit 0; i=$((i+1)); done
fi
echo "building dependencies $DEPS_KEY in this pod"
"""

# After `install`: share what it added to the volume (everything but the code and the files prepare put there).
DEPS_STORE_SCRIPT = f"""cd {api.INSTALL_VOLUME}
[ -f {CACHED_MARK} ] && exit 0
added=$(ls -A | grep -vxF -f {PREPARED_LIST} | grep -v '^\\.kubeless-')
[ -n "$added" ] || exit 0
tar -czf /tmp/deps.tar.gz $added && \
  curl -fsS --max-time 300 -X PUT --data-binary @/tmp/deps.tar.gz "$DEPS_CACHE_URL/v1/$DEPS_KEY.tar.gz" >/dev/null && \
  echo "stored dependencies $DEPS_KEY in the cache" || echo "warning: could not store dependencies $DEPS_KEY"
"""


def init_containers(function: dict, runtime: Runtime, base_env: list[dict], resources: dict,
                    config: dict) -> list[dict]:
    spec = function["spec"]
    name = function["metadata"]["name"]
    volume = {"name": name, "mountPath": api.INSTALL_VOLUME}
    provision_image = config["provision-image"]
    # package index locations (pip, npm, Go proxy) first, so the function's own --env can override them
    step_env = [*env_list(config.get("install-env") or {}), *base_env]
    provision = {"name": "prepare", "image": provision_image, "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", prepare_script(spec, runtime)],
                 "volumeMounts": [volume, {"name": f"{name}-deps", "mountPath": api.SOURCE_VOLUME}]}
    containers = [provision]
    install = runtime.phases.get("installation")
    deps = spec.get("deps") or ""
    if install and (deps or "deps" in content_type(spec)):
        check = ""
        if deps and runtime.dep_name:
            check = (f"echo '{sha256_hex(deps)}  {api.INSTALL_VOLUME}/{runtime.dep_name}' "
                     f"| sha256sum -c - >/dev/null && ")
        cache_url = config.get("deps-cache-url") or ""
        # archives bring their own deps file (+deps), whose content the spec does not know: no cache key for them
        cached = bool(cache_url and deps and "deps" not in content_type(spec))
        cache_env = env_list({"DEPS_CACHE_URL": cache_url, "DEPS_KEY": deps_cache_key(runtime, install, deps)})
        skip = f"if [ -f {api.INSTALL_VOLUME}/{CACHED_MARK} ]; then exit 0; fi; " if cached else ""
        if cached:
            containers.append({"name": "deps-fetch", "image": provision_image, "imagePullPolicy": "IfNotPresent",
                               "command": ["sh", "-c", DEPS_FETCH_SCRIPT], "env": cache_env,
                               "volumeMounts": [volume]})
        containers.append({
            "name": "install", "image": install["image"], "imagePullPolicy": "IfNotPresent",
            "workingDir": api.INSTALL_VOLUME, "command": ["sh", "-c", skip + check + install["command"]],
            "env": [*step_env, *env_list({"KUBELESS_INSTALL_VOLUME": api.INSTALL_VOLUME,
                                         "KUBELESS_DEPS_FILE": f"{api.INSTALL_VOLUME}/{runtime.dep_name}",
                                         "HOME": "/tmp", **install.get("env", {})})],
            "volumeMounts": [volume]})
        if cached:
            containers.append({"name": "deps-store", "image": provision_image, "imagePullPolicy": "IfNotPresent",
                               "command": ["sh", "-c", DEPS_STORE_SCRIPT], "env": cache_env,
                               "volumeMounts": [volume]})
    elif deps and not install and not runtime.phases.get("compilation"):
        # (a compiled runtime, like Go, takes its dependency file in the compile step)
        raise RenderError(f"runtime {runtime.id} cannot install dependencies")
    compile_ = runtime.phases.get("compilation")
    if compile_:
        _, handler = split_handler(spec["handler"])
        containers.append({
            "name": "compile", "image": compile_["image"], "imagePullPolicy": "IfNotPresent",
            "workingDir": api.INSTALL_VOLUME, "command": ["sh", "-c", compile_["command"]],
            "env": [*step_env, *env_list({"KUBELESS_INSTALL_VOLUME": api.INSTALL_VOLUME,
                                         "KUBELESS_FUNC_NAME": handler, "HOME": "/tmp",
                                         **compile_.get("env", {})})],
            "volumeMounts": [volume]})
    for container in containers:
        if resources:
            container["resources"] = copy.deepcopy(resources)
        hardened(container)
    return containers


def deployment(function: dict, runtime: Runtime | None, config: dict) -> dict:
    """The Deployment running the function. `config` holds the controller's settings from kubeless-config:
    `deployment` (a default Deployment, already parsed), `provision-image`, and optionally `install-env` (env of
    the install and compile steps) and `deps-cache-url` (the dependency cache; empty: no cache)."""
    meta, spec = function["metadata"], function["spec"]
    name = meta["name"]
    own = copy.deepcopy(spec.get("deployment") or {})
    template_default = copy.deepcopy(config.get("deployment") or {})
    merged = merge_template(template_default, own)
    dep_spec = merged.get("spec") or {}
    template = dep_spec.get("template") or {}
    pod = template.get("spec") or {}
    containers = pod.get("containers") or [{}]
    main = containers[0]
    port = target_port(spec)
    custom_image = bool(main.get("image"))
    if not custom_image and runtime is None:
        raise RenderError("a function needs a runtime or a custom image")
    if not custom_image and not spec.get("handler"):
        raise RenderError(f"a function of runtime {runtime.id} needs a handler, e.g. hello.handler")

    env = list(main.get("env") or [])
    if spec.get("handler"):  # a custom image needs to know its handler too, with or without code in the spec
        module, handler = split_handler(spec["handler"])
        limits = (main.get("resources") or {}).get("limits") or {}
        env += env_list({"FUNC_HANDLER": handler, "MOD_NAME": module,
                         "FUNC_TIMEOUT": str(spec.get("timeout") or api.DEFAULT_TIMEOUT),
                         "FUNC_RUNTIME": spec.get("runtime", ""),
                         "FUNC_MEMORY_LIMIT": str(limits.get("memory", "0"))})
    env += env_list({"FUNC_PORT": str(port)})
    user_env = list(env)
    if runtime is not None and not custom_image:
        env += env_list({"KUBELESS_INSTALL_VOLUME": api.INSTALL_VOLUME, **runtime.phases["runtime"].get("env", {})})

    main = {**main, "name": name, "env": env, "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}]}
    main.setdefault("imagePullPolicy", "IfNotPresent")
    probe = {"httpGet": {"path": "/healthz", "port": port}}
    main.setdefault("livenessProbe", {**probe, "initialDelaySeconds": 3, "periodSeconds": 30,
                                      **((runtime.liveness_probe or {}) if runtime else {})})
    main.setdefault("readinessProbe", {**probe, "periodSeconds": 1, "failureThreshold": 3})
    hardened(main)

    volumes = list(pod.get("volumes") or [])
    init = list(pod.get("initContainers") or [])
    annotations = {**(template.get("metadata") or {}).get("annotations", {}),
                   "prometheus.io/scrape": "true", "prometheus.io/path": "/metrics", "prometheus.io/port": str(port)}
    if not custom_image:
        main["image"] = runtime.phases["runtime"]["image"]
        main["volumeMounts"] = [*(main.get("volumeMounts") or []), {"name": name, "mountPath": api.INSTALL_VOLUME}]
        volumes += [{"name": name, "emptyDir": {}}, {"name": f"{name}-deps", "configMap": {"name": name}}]
        resources = ((init[0] if init else {}).get("resources")) or {}
        init = init_containers(function, runtime, user_env, resources, config)
        # Code changes must roll the pods even when the user gave no checksum (Kubeless #952).
        annotations[api.CONTENT_HASH_ANNOTATION] = sha256_hex(json.dumps(
            [spec.get("function"), spec.get("deps"), content_type(spec), spec.get("handler")]))

    pod_labels = {**(template.get("metadata") or {}).get("labels", {}), **meta.get("labels", {}),
                  **api.function_labels(name)}
    pod = {**pod, "containers": [main, *containers[1:]], "volumes": volumes,
           "automountServiceAccountToken": pod.get("automountServiceAccountToken", False)}
    if init:
        pod["initContainers"] = init
    pod.setdefault("securityContext", {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                       "runAsNonRoot": True})
    pod.setdefault("affinity", {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
        "weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": api.function_labels(name)},
                                           "topologyKey": "kubernetes.io/hostname"}}]}})
    body_spec = {k: v for k, v in dep_spec.items() if k not in ("template", "selector")}
    body_spec.update({
        "selector": {"matchLabels": api.function_labels(name)},
        "strategy": dep_spec.get("strategy") or {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
        "template": {"metadata": {"labels": pod_labels, "annotations": annotations}, "spec": pod},
    })
    metadata = child_metadata(function, (merged.get("metadata") or {}).get("labels"))
    if (merged.get("metadata") or {}).get("annotations"):
        metadata["annotations"] = merged["metadata"]["annotations"]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": body_spec}


# --- HorizontalPodAutoscaler -----------------------------------------------------------------------------------

def autoscaler(function: dict) -> dict | None:
    """autoscaling/v2 from the function's spec; Kubeless' v2beta1 metric shapes are translated."""
    wanted = function["spec"].get("horizontalPodAutoscaler") or {}
    hpa_spec = wanted.get("spec") or {}
    if not hpa_spec:
        return None
    name = function["metadata"]["name"]
    if not isinstance(hpa_spec.get("maxReplicas"), int):
        raise RenderError("horizontalPodAutoscaler.spec.maxReplicas must be a number")
    try:
        metrics = [v2_metric(metric) for metric in hpa_spec.get("metrics") or []]
    except (KeyError, TypeError, AttributeError) as error:
        raise RenderError(f"horizontalPodAutoscaler.spec.metrics: incomplete metric (missing {error})") from None
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": hpa_spec.get("minReplicas", 1), "maxReplicas": hpa_spec["maxReplicas"]}
    if metrics:
        spec["metrics"] = metrics
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": child_metadata(function), "spec": spec}


def v2_metric(metric: dict) -> dict:
    metric = copy.deepcopy(metric)
    resource = metric.get("resource")
    if resource and "targetAverageUtilization" in resource:
        metric["resource"] = {"name": resource["name"], "target": {
            "type": "Utilization", "averageUtilization": resource["targetAverageUtilization"]}}
    obj = metric.get("object")
    if obj and "metricName" in obj:
        metric["object"] = {"metric": {"name": obj["metricName"]},
                            "describedObject": {"apiVersion": "v1", "kind": obj["target"]["kind"],
                                                "name": obj["target"]["name"]},
                            "target": {"type": "Value", "value": obj["targetValue"]}}
    return metric


def children(function: dict, catalogue: list[dict], config: dict) -> list[dict]:
    """Everything a Function owns, in the order it is applied."""
    if not function.get("spec"):
        raise RenderError("the function has no spec")
    spec = function["spec"]
    runtime = None if uses_custom_image(spec) and not spec.get("runtime") else find_runtime(catalogue,
                                                                                            spec.get("runtime", ""))
    objects = [config_map(function, runtime), service(function), deployment(function, runtime, config)]
    hpa = autoscaler(function)
    if hpa:
        objects.append(hpa)
    return objects
