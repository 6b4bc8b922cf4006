"""What a Function may ask of the controller: nothing its author could not do alone.

The controller applies `spec.deployment` and `spec.service` with its own identity, which may create pods and
Services in every namespace. A Function author who may not run a privileged pod, mount a host folder or open a
NodePort must not get one by writing it into a Function. So, by default, the render refuses (as InvalidSpec, naming
the field) host namespaces, hostPath volumes, privileged containers, added capabilities, and Services reachable from
outside the cluster (NodePort, LoadBalancer, externalIPs). A service account is allowed only when it exists in the
function's namespace (the reconciler checks that). A cluster whose Function authors are trusted sets
`allow-privileged-functions: "true"` in kubeless-config.
"""
from __future__ import annotations

from kubeless_api.meta import dig

POD = "spec.deployment.spec.template.spec"
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
OUTSIDE_SERVICE_TYPES = ("NodePort", "LoadBalancer")


class Refused(ValueError):
    """The spec asks for something only a trusted author may have; the message names the field."""


def check(spec: dict) -> None:
    pod = dig(spec, "deployment", "spec", "template", "spec", default={})
    for field in HOST_NAMESPACES:
        if pod.get(field):
            raise Refused(f"{POD}.{field}: the host's namespaces are not for functions")
    for index, volume in enumerate(pod.get("volumes") or []):
        if volume.get("hostPath") is not None:
            raise Refused(f"{POD}.volumes[{index}].hostPath: host folders are not for functions")
    for group in ("containers", "initContainers"):
        for index, container in enumerate(pod.get(group) or []):
            where = f"{POD}.{group}[{index}].securityContext"
            security = container.get("securityContext") or {}
            if security.get("privileged"):
                raise Refused(f"{where}.privileged: privileged containers are not for functions")
            if dig(security, "capabilities", "add"):
                raise Refused(f"{where}.capabilities.add: added capabilities are not for functions")
            for port_index, port in enumerate(container.get("ports") or []):
                if port.get("hostPort"):
                    raise Refused(f"{POD}.{group}[{index}].ports[{port_index}].hostPort: host ports are not for "
                                  "functions")
    service = spec.get("service") or {}
    if service.get("type") in OUTSIDE_SERVICE_TYPES:
        raise Refused(f"spec.service.type: {service['type']} Services reach outside the cluster; expose a "
                      "function with an HTTP trigger")
    if service.get("externalIPs"):
        raise Refused("spec.service.externalIPs: external IPs are not for functions")
    for index, port in enumerate(service.get("ports") or []):
        if port.get("nodePort"):
            raise Refused(f"spec.service.ports[{index}].nodePort: node ports reach outside the cluster")


def service_account(spec: dict) -> str:
    """The service account the function names (`--service-account`), or ''."""
    return dig(spec, "deployment", "spec", "template", "spec", "serviceAccountName", default="")
