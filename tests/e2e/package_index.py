"""A Python package index served inside the cluster, for tests whose functions have dependencies.

No pod may reach beyond this machine, so the tests bring their own index: a tiny wheel built here, published in a
ConfigMap and served by a pod of the project's own Python image (`python3 -m http.server`, PEP 503 layout).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile

from conftest import Cluster
from support import wait_until

PACKAGE, VERSION = "greeting", "1.0.0"
MODULE = 'def greet(name):\n    return f"hello, {name}"\n'


def wheel() -> tuple[str, bytes]:
    """A minimal pure-Python wheel, built with the standard library."""
    name = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
    dist_info = f"{PACKAGE}-{VERSION}.dist-info"
    files = {
        f"{PACKAGE}/__init__.py": MODULE.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {VERSION}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: kubectl-kubeless-tests\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n",
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for path, data in files.items()) + f"{dist_info}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in {**files, f"{dist_info}/RECORD": record.encode()}.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return name, buffer.getvalue()


def serve_pypi(cluster: Cluster, namespace: str, image: str) -> str:
    """Start the index in `namespace`; return its simple-index URL."""
    name, data = wheel()
    digest = hashlib.sha256(data).hexdigest()
    page = f'<html><body><a href="../../files/{name}#sha256={digest}">{name}</a></body></html>\n'
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pypi"},
                  "data": {"index": page, "root": f'<a href="{PACKAGE}/">{PACKAGE}</a>\n'},
                  "binaryData": {"wheel": base64.b64encode(data).decode()}}
    items = [{"key": "root", "path": "simple/index.html"}, {"key": "index", "path": f"simple/{PACKAGE}/index.html"},
             {"key": "wheel", "path": f"files/{name}"}]
    labels = {"app": "pypi"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pypi", "labels": labels}, "spec": {
        "automountServiceAccountToken": False,
        "containers": [{"name": "index", "image": image, "imagePullPolicy": "IfNotPresent",
                        "command": ["python3", "-m", "http.server", "8000", "-d", "/srv"],
                        "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1},
                        "volumeMounts": [{"name": "index", "mountPath": "/srv"}]}],
        "volumes": [{"name": "index", "configMap": {"name": "pypi", "items": items}}]}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "pypi"},
               "spec": {"selector": labels, "ports": [{"port": 8000}]}}
    cluster.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": [config_map, pod, service]}), namespace)
    wait_until("the package index to serve", lambda: cluster.get_json("pod", "pypi", "-n", namespace)["status"].get(
        "containerStatuses", [{}])[0].get("ready"), timeout=60)
    return f"http://pypi.{namespace}.svc.cluster.local:8000/simple/"
