"""Pure functions from a Function (plus the controller's configuration) to the objects that run it.

The reconcile loop applies what these return with server-side apply and nothing else: every decision about what a
function's ConfigMap, Service, Deployment and HorizontalPodAutoscaler look like lives here, where unit tests read it.
"""
from __future__ import annotations

import copy
import hashlib
import json
import shlex

from kubeless_api import catalogue, contract, meta, schema, shapes
from kubeless_api.catalogue import Runtime
from kubeless_api.config import KubelessConfig
from kubeless_api.meta import dig
from kubeless_controller.functions import policy
from kubeless_depcache import protocol as depcache


class RenderError(ValueError):
    """The Function cannot be turned into workloads; the message goes into its Ready condition as is."""


def find_runtime(runtimes: list[dict], runtime_id: str) -> Runtime:
    try:
        return catalogue.find(runtimes, runtime_id)
    except catalogue.CatalogueError as error:
        raise RenderError(str(error)) from None


def split_handler(handler: str) -> tuple[str, str]:
    module, _, function = handler.partition(".")
    if not module or not function or "." in function:
        raise RenderError(f"handler {handler!r} must be <module>.<function>, e.g. hello.handler")
    return module, function


def content_type(spec: dict) -> str:
    return spec.get(schema.CONTENT_TYPE) or "text"


def is_archive(kind: str) -> bool:
    return "+zip" in kind or "+compressedtar" in kind


def source_file_name(spec: dict, runtime: Runtime) -> str:
    """The key of the code in the ConfigMap and its name in /kubeless: an archive keeps the bare module name."""
    module, _ = split_handler(spec["handler"])
    return module if is_archive(content_type(spec)) else module + runtime.file_suffix


def owner_reference(function: dict) -> dict:
    return {"apiVersion": meta.API_VERSION, "kind": "Function", "name": function["metadata"]["name"],
            "uid": function["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def child_metadata(function: dict, extra_labels: dict | None = None) -> dict:
    metadata = function["metadata"]
    labels = {**(extra_labels or {}), **metadata.get("labels", {}), **meta.function_labels(metadata["name"])}
    return {"name": metadata["name"], "namespace": metadata["namespace"], "labels": labels,
            "ownerReferences": [owner_reference(function)]}


def target_port(spec: dict) -> int:
    ports = (spec.get("service") or {}).get("ports") or []
    if ports:
        port = ports[0].get("targetPort") or ports[0].get("port")
        if isinstance(port, int):
            return port
    return meta.FUNCTION_PORT


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
    if size > meta.CONFIGMAP_LIMIT:
        raise RenderError(f"the code and dependencies take {size} bytes, over the ConfigMap limit of "
                          f"{meta.CONFIGMAP_LIMIT}; serve the code from a URL (function-content-type url)")
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": child_metadata(function), "data": data}


def service(function: dict) -> dict:
    spec = copy.deepcopy(function["spec"].get("service") or {})
    name = function["metadata"]["name"]
    if not spec.get("ports"):
        spec["ports"] = [{"name": meta.FUNCTION_PORT_NAME, "port": meta.FUNCTION_PORT,
                          "targetPort": meta.FUNCTION_PORT, "protocol": "TCP"}]
    for port in spec["ports"]:
        port.setdefault("protocol", "TCP")
        if not port.get("nodePort"):
            port.pop("nodePort", None)
    spec["selector"] = spec.get("selector") or meta.function_labels(name)
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
    origin = f"{meta.SOURCE_VOLUME}/{name}"
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
        steps.append(f"unzip -q -o {origin} -d {meta.INSTALL_VOLUME}")
    elif "+compressedtar" in kind:
        steps.append(f"tar -xf {origin} -C {meta.INSTALL_VOLUME}")
    else:
        steps.append(f"cp {origin} {meta.INSTALL_VOLUME}/{name}")
    # An empty dependency file is no file: an empty package.json, for one, breaks Node's module loading.
    if runtime.dep_name and spec.get("deps") and "deps" not in kind.split("+")[1:]:
        steps.append(f"cp {meta.SOURCE_VOLUME}/{runtime.dep_name} {meta.INSTALL_VOLUME}/{runtime.dep_name}")
    return " && ".join(steps[:1]) + "\n" + "\n".join(steps[1:])


def env_list(values: dict[str, str]) -> list[dict]:
    return [{"name": key, "value": value} for key, value in values.items()]


def merged_env(*lists: list[dict]) -> list[dict]:
    """One entry per name, the last given winning: server-side apply refuses a container whose env names a variable
    twice, though the kubelet would take the last."""
    by_name: dict[str, dict] = {}
    for entry in (entry for env in lists for entry in env):
        by_name.pop(entry.get("name"), None)
        by_name[entry.get("name")] = entry
    return list(by_name.values())


# Pod Security "restricted" (https://kubernetes.io/docs/concepts/security/pod-security-standards/), for every
# container and the pod; a user's own securityContext is merged over these field by field.
RESTRICTED_CONTAINER = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                        "readOnlyRootFilesystem": False, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
FUNCTION_USER = {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}


def restricted(defaults: dict, own: dict | None) -> dict:
    """`own` over `defaults`, field by field; capabilities to drop add up."""
    merged = merge_template(defaults, own or {})
    drop = [*dig(defaults, "capabilities", "drop", default=[]), *dig(own, "capabilities", "drop", default=[])]
    if drop:
        merged["capabilities"]["drop"] = list(dict.fromkeys(drop))
    return merged


def pod_security(own: dict | None) -> dict:
    """The pod's securityContext. An explicitly empty one keeps the platform's choice of user (OpenShift assigns
    one per namespace) and gets only the restricted fields."""
    defaults = RESTRICTED_POD if own == {} else {**FUNCTION_USER, **RESTRICTED_POD}
    return restricted(defaults, own)


def hardened(container: dict) -> dict:
    container["securityContext"] = restricted(RESTRICTED_CONTAINER, container.get("securityContext"))
    # A failing init container's last log lines become its termination message, which status shows the user.
    container.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    return container


# --- the dependency cache (depcache/kubeless_depcache/protocol.py) ----------------------------------------------

# The variables main_container derives from the spec's handler, timeout, runtime, limits and port: no installer reads
# them, so the cache key leaves them out and functions with the same dependencies share a build whatever their
# handler (a unit test keeps this set equal to what main_container adds).
SPEC_VARIABLES = frozenset({contract.ENV_HANDLER, contract.ENV_MODULE, contract.ENV_TIMEOUT, contract.ENV_RUNTIME,
                            contract.ENV_MEMORY_LIMIT, contract.ENV_PORT})
# The pod's fields that change where the install step's host names resolve, so what it downloads.
RESOLUTION_FIELDS = ("hostAliases", "dnsPolicy", "dnsConfig", "hostNetwork")
DEPS_CACHE_TOKEN_VOLUME = "deps-cache-token"


def deps_cache_key(function: dict, runtime: Runtime, install: dict, install_env: list[dict], pod: dict,
                   settings: KubelessConfig) -> str:
    """The key of what this function's install step produces (protocol.key says what it covers)."""
    env = [item for item in install_env if item["name"] not in SPEC_VARIABLES]
    # a value the controller cannot see (from a ConfigMap, a Secret, the pod) may differ from one namespace to another
    shared = settings.deps_cache_shared and not any("valueFrom" in item for item in env)
    return depcache.key(runtime.id, installer_image=install["image"], installer_command=install["command"],
                        deps=function["spec"].get("deps") or "", env=env,
                        resolution={name: pod[name] for name in RESOLUTION_FIELDS
                                    if pod.get(name) not in (None, "", False, [], {})},
                        namespace="" if shared else function["metadata"]["namespace"])


def deps_cache_volumes(init: list[dict]) -> list[dict]:
    """The token that proves the pod's namespace to the cache (protocol.AUDIENCE), for pods whose init containers use
    the cache: projected by the kubelet for the pod's service account, whatever automountServiceAccountToken says,
    and good for the cache only (its audience is no API server's)."""
    if not any(container["name"] == "deps-fetch" for container in init):
        return []
    return [{"name": DEPS_CACHE_TOKEN_VOLUME, "projected": {"sources": [{"serviceAccountToken": {
        "audience": depcache.AUDIENCE, "expirationSeconds": depcache.TOKEN_SECONDS, "path": depcache.TOKEN_FILE}}]}}]


def init_containers(function: dict, runtime: Runtime, base_env: list[dict], resources: dict,
                    settings: KubelessConfig, pod: dict) -> list[dict]:
    spec = function["spec"]
    name = function["metadata"]["name"]
    volume = {"name": name, "mountPath": meta.INSTALL_VOLUME}
    provision_image = settings.provision_image
    # package index locations (pip, npm, Go proxy) first, so the function's own --env can override them
    step_env = merged_env(env_list(settings.install_env), base_env)
    provision = {"name": "prepare", "image": provision_image, "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", prepare_script(spec, runtime)],
                 "volumeMounts": [volume, {"name": f"{name}-deps", "mountPath": meta.SOURCE_VOLUME}]}
    containers = [provision]
    install = runtime.phases.get("installation")
    deps = spec.get("deps") or ""
    if install and (deps or "deps" in content_type(spec)):
        check = ""
        if deps and runtime.dep_name:
            check = (f"echo '{sha256_hex(deps)}  {meta.INSTALL_VOLUME}/{runtime.dep_name}' "
                     f"| sha256sum -c - >/dev/null && ")
        cache_url = settings.deps_cache_url
        install_env = merged_env(step_env, env_list({"KUBELESS_INSTALL_VOLUME": meta.INSTALL_VOLUME,
                                                     "KUBELESS_DEPS_FILE": f"{meta.INSTALL_VOLUME}/{runtime.dep_name}",
                                                     "HOME": "/tmp", **install.get("env", {})}))
        # archives bring their own deps file (+deps), whose content the spec does not know: no cache key for them
        cached = bool(cache_url and deps and "deps" not in content_type(spec))
        skip = f"if [ -f {meta.INSTALL_VOLUME}/{depcache.CACHED_MARK} ]; then exit 0; fi; " if cached else ""
        if cached:
            cache_env = env_list({"DEPS_CACHE_URL": cache_url,
                                  "DEPS_KEY": deps_cache_key(function, runtime, install, install_env, pod, settings)})
            # the token only here: the install step runs the dependencies' own code (setup.py, npm scripts)
            cache_mounts = [volume, {"name": DEPS_CACHE_TOKEN_VOLUME, "mountPath": depcache.TOKEN_DIR,
                                     "readOnly": True}]
            containers.append({"name": "deps-fetch", "image": provision_image, "imagePullPolicy": "IfNotPresent",
                               "command": ["sh", "-c", depcache.FETCH_SCRIPT], "env": cache_env,
                               "volumeMounts": cache_mounts})
        containers.append({
            "name": "install", "image": install["image"], "imagePullPolicy": "IfNotPresent",
            "workingDir": meta.INSTALL_VOLUME, "command": ["sh", "-c", skip + check + install["command"]],
            "env": install_env, "volumeMounts": [volume]})
        if cached:
            containers.append({"name": "deps-store", "image": provision_image, "imagePullPolicy": "IfNotPresent",
                               "command": ["sh", "-c", depcache.STORE_SCRIPT], "env": cache_env,
                               "volumeMounts": cache_mounts})
    elif deps and not install and not runtime.phases.get("compilation"):
        # (a compiled runtime, like Go, takes its dependency file in the compile step)
        raise RenderError(f"runtime {runtime.id} cannot install dependencies")
    compile_ = runtime.phases.get("compilation")
    if compile_:
        _, handler = split_handler(spec["handler"])
        containers.append({
            "name": "compile", "image": compile_["image"], "imagePullPolicy": "IfNotPresent",
            "workingDir": meta.INSTALL_VOLUME, "command": ["sh", "-c", compile_["command"]],
            "env": merged_env(step_env, env_list({"KUBELESS_INSTALL_VOLUME": meta.INSTALL_VOLUME,
                                                  "KUBELESS_FUNC_NAME": handler, "HOME": "/tmp",
                                                  **compile_.get("env", {})})),
            "volumeMounts": [volume]})
    for container in containers:
        if resources:
            container["resources"] = copy.deepcopy(resources)
        hardened(container)
    return containers


def main_container(function: dict, runtime: Runtime | None, own: dict, custom_image: bool) -> tuple[dict, list]:
    """The function's own container, from the user's (merged) first container; also the env that the install and
    compile steps share with it (the user's, the handler's and the port, not the runtime image's own)."""
    spec = function["spec"]
    port = target_port(spec)
    env = list(own.get("env") or [])
    if spec.get("handler"):  # a custom image needs to know its handler too, with or without code in the spec
        module, handler = split_handler(spec["handler"])
        limits = (own.get("resources") or {}).get("limits") or {}
        env += env_list({contract.ENV_HANDLER: handler, contract.ENV_MODULE: module,
                         contract.ENV_TIMEOUT: str(spec.get("timeout") or meta.DEFAULT_TIMEOUT),
                         contract.ENV_RUNTIME: spec.get("runtime", ""),
                         contract.ENV_MEMORY_LIMIT: str(limits.get("memory", "0"))})
    env += env_list({contract.ENV_PORT: str(port)})
    shared_env = merged_env(env)
    if runtime is not None and not custom_image:
        env += env_list({contract.ENV_INSTALL_VOLUME: meta.INSTALL_VOLUME,
                         **runtime.phases["runtime"].get("env", {})})

    main = {**own, "name": function["metadata"]["name"], "env": merged_env(env),
            "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}]}
    main.setdefault("imagePullPolicy", "IfNotPresent")
    probe = {"httpGet": {"path": contract.PATH_HEALTH, "port": port}}
    main.setdefault("livenessProbe", {**probe, "initialDelaySeconds": 3, "periodSeconds": 30,
                                      **((runtime.liveness_probe or {}) if runtime else {})})
    main.setdefault("readinessProbe", {**probe, "periodSeconds": 1, "failureThreshold": 3})
    if not custom_image:
        main["image"] = runtime.phases["runtime"]["image"]
        main["volumeMounts"] = [*(main.get("volumeMounts") or []),
                                {"name": function["metadata"]["name"], "mountPath": meta.INSTALL_VOLUME}]
    return hardened(main), shared_env


def pod_template(function: dict, runtime: Runtime | None, template: dict, settings: KubelessConfig) -> dict:
    """The pod template: the main container, the init containers that prepare the code, volumes, labels."""
    spec, name = function["spec"], function["metadata"]["name"]
    pod = template.get("spec") or {}
    containers = pod.get("containers") or [{}]
    custom_image = bool(containers[0].get("image"))
    if not custom_image and runtime is None:
        raise RenderError("a function needs a runtime or a custom image")
    if not custom_image and not spec.get("handler"):
        raise RenderError(f"a function of runtime {runtime.id} needs a handler, e.g. hello.handler")
    main, shared_env = main_container(function, runtime, containers[0], custom_image)
    # running calls may finish for as long as the kubelet waits before it kills the pod
    grace = pod.get("terminationGracePeriodSeconds", contract.DEFAULT_GRACE_PERIOD)
    main["env"] = merged_env(main["env"], env_list({contract.ENV_GRACE_PERIOD: str(grace)}))

    volumes = list(pod.get("volumes") or [])
    init = list(pod.get("initContainers") or [])
    port = str(target_port(spec))
    annotations = {**(template.get("metadata") or {}).get("annotations", {}), "prometheus.io/scrape": "true",
                   "prometheus.io/path": contract.PATH_METRICS, "prometheus.io/port": port}
    # the token only for a function that names a service account: the default one has nothing to grant
    pod = {**pod, "containers": [main, *(hardened(copy.deepcopy(side)) for side in containers[1:])],
           "automountServiceAccountToken": pod.get("automountServiceAccountToken",
                                                   bool(pod.get("serviceAccountName")))}
    if not custom_image:
        volumes += [{"name": name, "emptyDir": {}}, {"name": f"{name}-deps", "configMap": {"name": name}}]
        resources = ((init[0] if init else {}).get("resources")) or {}
        init = init_containers(function, runtime, shared_env, resources, settings, pod)
        volumes += deps_cache_volumes(init)
        if settings.provision_image_secret:
            pod["imagePullSecrets"] = [*(pod.get("imagePullSecrets") or []),
                                       {"name": settings.provision_image_secret}]
        # Code changes must roll the pods even when the user gave no checksum (Kubeless #952).
        annotations[meta.CONTENT_HASH_ANNOTATION] = sha256_hex(json.dumps(
            [spec.get("function"), spec.get("deps"), content_type(spec), spec.get("handler")]))
    pod["volumes"] = volumes
    if init:
        pod["initContainers"] = init
    pod["securityContext"] = pod_security(pod.get("securityContext"))
    pod.setdefault("affinity", {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
        "weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": meta.function_labels(name)},
                                           "topologyKey": "kubernetes.io/hostname"}}]}})
    labels = {**(template.get("metadata") or {}).get("labels", {}), **function["metadata"].get("labels", {}),
              **meta.function_labels(name)}
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod}


def deployment(function: dict, runtime: Runtime | None, settings: KubelessConfig) -> dict:
    """The Deployment running the function: kubeless-config's default Deployment under the function's own."""
    name = function["metadata"]["name"]
    merged = merge_template(settings.deployment, copy.deepcopy(function["spec"].get("deployment") or {}))
    dep_spec = merged.get("spec") or {}
    body_spec = {k: v for k, v in dep_spec.items() if k not in ("template", "selector")}
    body_spec.update({
        "selector": {"matchLabels": meta.function_labels(name)},
        "strategy": dep_spec.get("strategy") or {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
        "template": pod_template(function, runtime, dep_spec.get("template") or {}, settings),
    })
    metadata = child_metadata(function, (merged.get("metadata") or {}).get("labels"))
    if (merged.get("metadata") or {}).get("annotations"):
        metadata["annotations"] = merged["metadata"]["annotations"]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": body_spec}


# --- HorizontalPodAutoscaler -----------------------------------------------------------------------------------

def autoscaler(function: dict) -> dict | None:
    """autoscaling/v2 from the function's spec; Kubeless' v2beta1 metric shapes are translated."""
    wanted = function["spec"].get(schema.HORIZONTAL_POD_AUTOSCALER) or {}
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


def children(function: dict, settings: KubelessConfig) -> list[dict]:
    """Everything a Function owns, in the order it is applied."""
    if not function.get("spec"):
        raise RenderError("the function has no spec")
    spec = function["spec"]
    try:
        shapes.check_function_spec(spec)
        shapes.check(settings.deployment, shapes.DEPLOYMENT, "kubeless-config deployment")
        if not settings.allow_privileged_functions:
            policy.check(spec)
    except (shapes.ShapeError, policy.Refused) as error:
        raise RenderError(str(error)) from None
    custom = uses_custom_image(spec) and not spec.get("runtime")
    runtime = None if custom else find_runtime(settings.runtime_images, spec.get("runtime", ""))
    objects = [config_map(function, runtime), service(function), deployment(function, runtime, settings)]
    hpa = autoscaler(function)
    if hpa:
        objects.append(hpa)
    return objects
