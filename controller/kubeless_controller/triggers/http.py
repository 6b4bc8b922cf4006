"""HTTPTrigger → a networking.k8s.io/v1 Ingress for an ingress controller's class, or a Gateway API HTTPRoute.

The Ingress is Kubeless's, with its defects fixed: the backend is the Service's port (Kubeless used the target
port), the trigger's annotations are applied on every change (Kubeless set them only on create), and the class is
`ingressClassName` (the annotation it used is deprecated). The annotations for CORS, basic auth and TLS-acme are
the ones Kubeless wrote for each gateway, which ingress-nginx and Traefik's nginx provider read. Traefik v2 and v3
ignore the `ingress.kubernetes.io/` ones Kubeless wrote for Traefik v1, so a traefik trigger with basic auth or CORS
also gets `traefik.io` Middlewares (`<trigger>-cors`, `<trigger>-basic-auth`), which the Ingress names in
`router.middlewares`.

Ready
  True   RouteReady             the ingress controller (or the Gateway) serves the route; status.address says where
  False  FunctionNotFound       the function the trigger names does not exist
  False  ServiceNotFound        the function has no Service yet
  False  IngressClassNotFound   no IngressClass of the gateway's name: no ingress controller serves it here
  False  GatewayNotFound        gateway-api: the Gateway the trigger names does not exist
  False  AddressPending         applied; the ingress controller has not published an address yet
  False  RouteNotAccepted       gateway-api: the Gateway refused the HTTPRoute (its message says why)
  False  InvalidSpec            a combination the gateway cannot serve (kong with basic auth, TLS on an HTTPRoute),
                                or a traefik trigger's Middleware where the API server has no Traefik CRDs
"""
from __future__ import annotations

from kubeless_api import conditions, meta, resources, schema
from kubeless_controller.runner import Pending, Prunable, Runner, Unready, Watch
from kubeless_controller.triggers.base import (TriggerReconciler, child_metadata, function_watches, get_or_none,
                                               named_function_key, service_port, trigger_status)

INGRESS = ("networking.k8s.io/v1", "Ingress")
INGRESS_CLASS = ("networking.k8s.io/v1", "IngressClass")
HTTP_ROUTE = ("gateway.networking.k8s.io/v1", "HTTPRoute")
GATEWAY = ("gateway.networking.k8s.io/v1", "Gateway")
MIDDLEWARE = ("traefik.io/v1alpha1", "Middleware")
TRAEFIK_MIDDLEWARES = "traefik.ingress.kubernetes.io/router.middlewares"
CORS_SUFFIX, AUTH_SUFFIX = "-cors", "-basic-auth"
# ingress-nginx's enable-cors defaults, so both classes answer a preflight alike
CORS_METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]
CORS_HEADERS = ["DNT", "Keep-Alive", "User-Agent", "X-Requested-With", "If-Modified-Since", "Cache-Control",
                "Content-Type", "Range", "Authorization"]
CORS_MAX_AGE = 1728000
# Annotations Kubeless put on every Ingress of a gateway, and those a flag adds (http-trigger's k8sutil.go).
GATEWAY_ANNOTATIONS = {"nginx": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}}
CORS_ANNOTATIONS = {"nginx": {"nginx.ingress.kubernetes.io/enable-cors": "true"}}
CORS_OTHERS = {"ingress.kubernetes.io/enable-cors": "true"}
BASIC_AUTH_PREFIX = {"nginx": "nginx.ingress.kubernetes.io/", "traefik": "ingress.kubernetes.io/"}
TLS_ACME_ANNOTATIONS = {"kubernetes.io/tls-acme": "true", "nginx.ingress.kubernetes.io/ssl-redirect": "true"}
KUBECTL_ANNOTATIONS = ("kubectl.kubernetes.io/",)


def gateway(spec: dict) -> str:
    return spec.get(schema.GATEWAY) or schema.DEFAULT_GATEWAY


def route_path(spec: dict) -> str:
    return "/" + (spec.get("path") or "").lstrip("/")


def gateway_ref(trigger: dict) -> tuple[str, str]:
    """The Gateway an HTTPRoute attaches to: (namespace, name); a bare name is in the trigger's namespace."""
    ref = trigger["spec"].get(schema.GATEWAY_REF) or schema.DEFAULT_GATEWAY_REF
    namespace, _, name = ref.rpartition("/")
    return namespace or trigger["metadata"]["namespace"], name


def ingress_annotations(trigger: dict) -> dict[str, str]:
    spec, own = trigger["spec"], trigger["metadata"].get("annotations") or {}
    kind = gateway(spec)
    annotations = dict(GATEWAY_ANNOTATIONS.get(kind, {}))
    if spec.get(schema.CORS_ENABLE):
        annotations.update(CORS_ANNOTATIONS.get(kind, CORS_OTHERS))
    secret = spec.get(schema.BASIC_AUTH_SECRET)
    if secret:
        if kind not in BASIC_AUTH_PREFIX:
            raise Unready(conditions.REASON_INVALID_SPEC, f"spec.{schema.BASIC_AUTH_SECRET}: basic auth is not "
                          f"supported with the {kind} gateway; use nginx or traefik, or the gateway's own plugins")
        prefix = BASIC_AUTH_PREFIX[kind]
        annotations.update({prefix + "auth-type": "basic", prefix + "auth-secret": secret})
    if spec.get("tls"):
        annotations.update(TLS_ACME_ANNOTATIONS)
    middlewares = traefik_middlewares(trigger)
    if middlewares:
        namespace = trigger["metadata"]["namespace"]
        annotations[TRAEFIK_MIDDLEWARES] = ",".join(f"{namespace}-{middleware['metadata']['name']}@kubernetescrd"
                                                    for middleware in middlewares)
    annotations.update({key: value for key, value in own.items() if not key.startswith(KUBECTL_ANNOTATIONS)})
    return annotations


def traefik_middlewares(trigger: dict) -> list[dict]:
    """What the traefik class needs for CORS and basic auth: a Middleware each (Traefik allows one type per
    Middleware), CORS first so that a preflight, which carries no credentials, is answered before the check."""
    spec = trigger["spec"]
    if gateway(spec) != "traefik":
        return []
    wanted = []
    if spec.get(schema.CORS_ENABLE):
        wanted.append((CORS_SUFFIX, {"headers": {
            "accessControlAllowOriginList": ["*"], "accessControlAllowMethods": CORS_METHODS,
            "accessControlAllowHeaders": CORS_HEADERS, "accessControlAllowCredentials": True,
            "accessControlMaxAge": CORS_MAX_AGE}}))
    if spec.get(schema.BASIC_AUTH_SECRET):
        wanted.append((AUTH_SUFFIX, {"basicAuth": {"secret": spec[schema.BASIC_AUTH_SECRET]}}))
    name = trigger["metadata"]["name"]
    return [{"apiVersion": MIDDLEWARE[0], "kind": MIDDLEWARE[1],
             "metadata": child_metadata(trigger, name=name + suffix), "spec": body} for suffix, body in wanted]


def tls(trigger: dict) -> list[dict]:
    spec = trigger["spec"]
    hosts = [spec[schema.HOST_NAME]] if spec.get(schema.HOST_NAME) else []
    if spec.get(schema.TLS_SECRET) and spec.get("tls"):
        raise Unready(conditions.REASON_INVALID_SPEC, f"spec.tls and spec.{schema.TLS_SECRET} exclude each other: "
                      "ask for an ACME certificate or name a secret, not both")
    if spec.get(schema.TLS_SECRET):
        return [{"hosts": hosts, "secretName": spec[schema.TLS_SECRET]}]
    if spec.get("tls"):
        return [{"hosts": hosts, "secretName": f"{trigger['metadata']['name']}-tls"}]
    return []


def ingress(trigger: dict, function_name: str, port: int) -> dict:
    spec = trigger["spec"]
    rule = {"http": {"paths": [{"path": route_path(spec), "pathType": "Prefix", "backend": {
        "service": {"name": function_name, "port": {"number": port}}}}]}}
    if spec.get(schema.HOST_NAME):
        rule["host"] = spec[schema.HOST_NAME]
    body = {"ingressClassName": gateway(spec), "rules": [rule]}
    secrets = tls(trigger)
    if secrets:
        body["tls"] = secrets
    return {"apiVersion": INGRESS[0], "kind": INGRESS[1],
            "metadata": child_metadata(trigger, annotations=ingress_annotations(trigger)), "spec": body}


def http_route(trigger: dict, function_name: str, port: int) -> dict:
    spec = trigger["spec"]
    for field in (schema.BASIC_AUTH_SECRET, schema.TLS_SECRET, "tls", schema.CORS_ENABLE):
        if spec.get(field):
            raise Unready(conditions.REASON_INVALID_SPEC, f"spec.{field}: not supported with gateway-api; TLS "
                          "belongs to the Gateway's listener, basic auth and CORS to the gateway's own filters")
    namespace, name = gateway_ref(trigger)
    body = {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": namespace,
                            "name": name}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": route_path(spec)}}],
                       "backendRefs": [{"name": function_name, "port": port}]}]}
    if spec.get(schema.HOST_NAME):
        body["hostnames"] = [spec[schema.HOST_NAME]]
    return {"apiVersion": HTTP_ROUTE[0], "kind": HTTP_ROUTE[1], "metadata": child_metadata(trigger), "spec": body}


def url(trigger: dict, address: str) -> str:
    spec = trigger["spec"]
    scheme = "https" if spec.get(schema.TLS_SECRET) or spec.get("tls") else "http"
    return f"{scheme}://{spec.get(schema.HOST_NAME) or address}{route_path(spec)}"


def ingress_address(obj: dict) -> str:
    """The first address an Ingress's controller published (an IP, or a host name for a cloud load balancer)."""
    for entry in meta.dig(obj, "status", "loadBalancer", "ingress", default=[]) or []:
        if entry.get("ip") or entry.get("hostname"):
            return entry.get("ip") or entry["hostname"]
    return ""


def route_acceptance(route: dict) -> dict:
    """The HTTPRoute's Accepted condition from its Gateway, or {} before the Gateway has looked at it."""
    for parent in meta.dig(route, "status", "parents", default=[]) or []:
        accepted = conditions.get_condition(parent, "Accepted")
        if accepted:
            return accepted
    return {}


class HTTPTriggerReconciler(TriggerReconciler):
    kind = "HTTPTrigger"
    watches = (
        Watch("httptriggers", meta.API_VERSION, "HTTPTrigger", index=named_function_key),
        *function_watches("httptriggers"),
        Watch("ingresses", *INGRESS, label_selector=meta.CREATED_BY_SELECTOR),
    )
    prunable = (Prunable(*INGRESS), Prunable(*HTTP_ROUTE), Prunable(*MIDDLEWARE, CORS_SUFFIX),
                Prunable(*MIDDLEWARE, AUTH_SUFFIX))

    def children(self, trigger: dict, function: dict, service: dict | None, runner: Runner) -> list[dict]:
        spec, name = trigger["spec"], function["metadata"]["name"]
        if service is None:
            raise Unready(conditions.REASON_SERVICE_NOT_FOUND, f"function {name} has no Service yet")
        if gateway(spec) == schema.GATEWAY_API:
            find_gateway(trigger, runner)
            return [http_route(trigger, name, service_port(service))]
        if get_or_none(runner, resources.path(*INGRESS_CLASS, None, gateway(spec))) is None:
            raise Unready(conditions.REASON_INGRESS_CLASS_NOT_FOUND,
                          f"no IngressClass {gateway(spec)}: no ingress controller serves the {gateway(spec)} "
                          f"gateway in this cluster; install one, or choose another --gateway")
        return [*traefik_middlewares(trigger), ingress(trigger, name, service_port(service))]

    def status(self, trigger: dict, applied: list[dict], runner: Runner) -> dict:
        child = applied[-1]
        now = runner.now()
        if child["kind"] == INGRESS[1]:
            address = ingress_address(child)
            if not address:
                return trigger_status(trigger, False, conditions.REASON_ROUTE_PENDING,
                                      f"waiting for the {gateway(trigger['spec'])} ingress controller to publish "
                                      f"the Ingress's address", now)
            return trigger_status(trigger, True, conditions.REASON_ROUTE_READY, f"served at {url(trigger, address)}",
                                  now, address=address, url=url(trigger, address))
        # nothing watches HTTPRoutes (a cluster may have no Gateway API): a pending route is looked at again
        accepted = route_acceptance(child)
        if accepted.get("status") == "False":
            raise Unready(conditions.REASON_ROUTE_REFUSED, f"{accepted.get('reason')}: {accepted.get('message')}")
        address = gateway_address(find_gateway(trigger, runner))
        if accepted.get("status") != "True" or not address:
            raise Unready(conditions.REASON_ROUTE_PENDING, "waiting for the Gateway to accept the HTTPRoute",
                          retry=Pending("the Gateway has not accepted the HTTPRoute yet"))
        return trigger_status(trigger, True, conditions.REASON_ROUTE_READY, f"served at {url(trigger, address)}",
                              now, address=address, url=url(trigger, address))


def find_gateway(trigger: dict, runner: Runner) -> dict:
    namespace, name = gateway_ref(trigger)
    found = get_or_none(runner, resources.path(*GATEWAY, namespace, name))
    if found is None:
        raise Unready(conditions.REASON_GATEWAY_NOT_FOUND, f"Gateway {namespace}/{name} does not exist; create it, "
                      "or name another with --gateway-ref")
    return found


def gateway_address(gateway_object: dict) -> str:
    for entry in meta.dig(gateway_object, "status", "addresses", default=[]) or []:
        if entry.get("value"):
            return entry["value"]
    return ""
