#!/usr/bin/env python3
"""A real single-node Kubernetes cluster made of upstream binaries, run as plain host processes.

kind needs Docker Hub and minikube downloads an ISO; neither is reachable here, so this module plays the part of
Kubernetes' own hack/local-up-cluster.sh: it starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
containerd, kubelet, kube-proxy, CoreDNS and Traefik (the ingress controller), each by PID, with every log in one
folder.

This machine shapes several choices, each named where it is made:
- cgroup v1 only, so kubelet runs with failCgroupV1: false and the cgroupfs driver;
- no CAP_SYS_RESOURCE, so no component may ask for a negative OOM score;
- kubelet sets kernel.panic_on_oops=1, which would turn an oops into a reboot, so the values are put back;
- pod traffic must never leave the machine: a FORWARD DROP fence goes in before any pod starts, the bridge has no
  masquerade, and CoreDNS has no upstream.

One module, although long: it is one start-up sequence and its mirror-image teardown, and a reader checks that
`down` undoes exactly what `up` did by reading the two side by side.

    cluster.py up | down | status | kubeconfig | bins | images
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))  # the shared API package: image names and the version (stdlib only)
from kubeless_api import meta  # noqa: E402
STATE = Path(os.environ.get("KUBELESS_CLUSTER_STATE", REPO / ".cluster"))
LOGS = STATE / "logs"
PKI = STATE / "pki"
KUBECONFIG = STATE / "kubeconfig"
CONTAINERD_SOCKET = STATE / "containerd" / "containerd.sock"

POD_CIDR = "10.88.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
API_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
DNS_HOST_PORT = 1053  # CoreDNS runs on the host; a selector-less kube-dns Service points at it
BRIDGE = "kubeless0"
CNI_NETWORK = "kubeless"
FENCE_COMMENT = "kubectl-kubeless pod fence"
# Traefik, the ingress controller, listens on the node's address only: entry point "web" on HTTP_PORT and "websecure"
# (TLS) on HTTPS_PORT. Its own entry point, with /ping, is on loopback.
HTTP_PORT = 80
HTTPS_PORT = 443
TRAEFIK_PING_PORT = 8082
TRAEFIK_USER = "traefik-ingress-controller"  # its client certificate's CN, bound to the ClusterRole of traefik_rbac()
# The Gateway that HTTPRoutes attach to when a trigger names none (kubeless_api.schema.DEFAULT_GATEWAY_REF)
GATEWAY_NAMESPACE, GATEWAY_NAME = "default", "kubeless"
GATEWAY_CLASS = "traefik"
KERNEL_SETTINGS = ("kernel/panic_on_oops", "kernel/panic", "vm/overcommit_memory", "net/ipv4/ip_forward")


def log(message: str) -> None:
    print(f"[localcluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class ClusterError(Exception):
    pass


def run(*args: str | Path, check: bool = True, quiet: bool = False, **kwargs) -> subprocess.CompletedProcess:
    stream = subprocess.DEVNULL if quiet else None
    kwargs.setdefault("stdout", stream)
    kwargs.setdefault("stderr", stream)
    return subprocess.run([str(a) for a in args], check=check, text=True, **kwargs)


def node_ip() -> str:
    """The host's primary non-loopback address: the hostname resolves to 127.0.0.1, which kubelet refuses."""
    route = run("ip", "-4", "route", "get", "1", stdout=subprocess.PIPE).stdout.split()
    return route[route.index("src") + 1]


def node_name() -> str:
    return socket.gethostname().lower()


@functools.cache
def component_files() -> dict[str, Path]:
    """Every file of the upstream components by name, from the version-keyed build cache (building on first use):
    the binaries, and the CRD manifests that Traefik's providers watch.

    Computed once per process: build.sh takes a while even when everything is cached, and kubectl() asks on every
    call. Callers must not change the dict they get.
    """
    out = run("bash", HERE / "build.sh", stdout=subprocess.PIPE).stdout
    files: dict[str, Path] = {}
    for folder in out.split():
        for file in Path(folder).iterdir():
            files.setdefault(file.name, file)
    return files


def component_bins() -> dict[str, Path]:
    return {name: path for name, path in component_files().items() if path.is_file() and os.access(path, os.X_OK)}


# --- processes -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None

    @property
    def pidfile(self) -> Path:
        return STATE / "pids" / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return LOGS / f"{self.name}.log"


COMPONENT_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet",
                   "kube-proxy", "coredns", "traefik")


def pid_of(name: str) -> int | None:
    """The live PID we recorded for a component, or None. A recycled PID is recognised by its command line."""
    pidfile = STATE / "pids" / f"{name}.pid"
    try:
        pid, binary = pidfile.read_text().split(maxsplit=1)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, ValueError, IndexError):
        return None
    # Right after exec this sandbox's kernel may still show an empty command line for a moment.
    alive = state != "Z" and cmdline in ("", binary.strip())
    return int(pid) if alive else None


def start(component: Component) -> int:
    component.pidfile.parent.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **(component.env or {}))
    with component.logfile.open("ab") as logfile:
        process = subprocess.Popen(component.argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True)
    component.pidfile.write_text(f"{process.pid} {component.argv[0]}\n")
    return process.pid


def stop(name: str, grace: float = 10.0) -> None:
    pid = pid_of(name)
    pidfile = STATE / "pids" / f"{name}.pid"
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while pid_of(name) == pid and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_of(name) == pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    pidfile.unlink(missing_ok=True)


def wait_for(what: str, ready, timeout: float, logfile: Path | None = None, name: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        if name and pid_of(name) is None:
            break
        time.sleep(0.25)
    tail = ""
    if logfile and logfile.exists():
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
    state = "exited" if name and pid_of(name) is None else f"not ready after {timeout:.0f} s"
    raise ClusterError(f"{what} {state}; see {logfile or LOGS}\n{tail}")


# --- PKI and kubeconfigs ---------------------------------------------------------------------------------------

def openssl(*args: str | Path) -> None:
    run("openssl", *args, quiet=True)


def issue_cert(name: str, subject: str, sans: list[str] | None = None) -> None:
    key, csr, crt = PKI / f"{name}.key", PKI / f"{name}.csr", PKI / f"{name}.crt"
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", subject)
    ext = PKI / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
    lines.append("extendedKeyUsage=serverAuth,clientAuth" if sans else "extendedKeyUsage=clientAuth")
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    ext.write_text("\n".join(lines) + "\n")
    openssl("x509", "-req", "-in", csr, "-CA", PKI / "ca.crt", "-CAkey", PKI / "ca.key", "-CAcreateserial",
            "-days", "3650", "-out", crt, "-extfile", ext)
    csr.unlink()
    ext.unlink()


CLIENT_IDENTITIES = {
    # file name: (user, group); system:masters is the built-in superuser group, the rest get RBAC's bootstrap roles
    "admin": ("kubernetes-admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", None),
    "kube-scheduler": ("system:kube-scheduler", None),
    "kube-proxy": ("system:kube-proxy", None),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
    "traefik": (TRAEFIK_USER, None),
}


def certificates(ip: str, node: str) -> dict[str, tuple[str, list[str] | None]]:
    """Every certificate the CA issues: file name -> (subject, subjectAltNames of a server certificate)."""
    dns = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
           "localhost", node]
    issued: dict[str, tuple[str, list[str] | None]] = {
        "apiserver": ("/CN=kube-apiserver",
                      [f"DNS:{d}" for d in dns] + [f"IP:{a}" for a in ("127.0.0.1", ip, API_SERVICE_IP)]),
        "kubelet": (f"/CN=system:node:{node}/O=system:nodes", None),
        # the Gateway's HTTPS listener, which clients reach at the node's address
        "gateway": ("/CN=kubeless-gateway", [f"IP:{ip}", f"DNS:{node}"]),
    }
    for name, (user, group) in CLIENT_IDENTITIES.items():
        issued[name] = (f"/CN={user}" + (f"/O={group}" if group else ""), None)
    return issued


def ensure_pki(ip: str, node: str) -> None:
    """A CA and one certificate per identity. The CA is kept across restarts unless the node's address or name
    changed; it issues any certificate it has not yet (an identity added since, or a run that crashed midway)."""
    stamp = PKI / "identity"
    wanted = f"{ip} {node}"
    if not (stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(PKI, ignore_errors=True)
        PKI.mkdir(parents=True)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
                "-keyout", PKI / "ca.key", "-out", PKI / "ca.crt", "-subj", "/CN=kubectl-kubeless-local-ca")
        openssl("genrsa", "-out", PKI / "sa.key", "2048")
        openssl("rsa", "-in", PKI / "sa.key", "-pubout", "-out", PKI / "sa.pub")
        stamp.write_text(wanted)
    for name, (subject, sans) in certificates(ip, node).items():
        if not (PKI / f"{name}.crt").exists():
            issue_cert(name, subject, sans)


def write_kubeconfig(path: Path, identity: str, server: str) -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "kubeless-local",
        "clusters": [{"name": "kubeless-local",
                      "cluster": {"server": server, "certificate-authority": str(PKI / "ca.crt")}}],
        "users": [{"name": identity, "user": {"client-certificate": str(PKI / f"{identity}.crt"),
                                              "client-key": str(PKI / f"{identity}.key")}}],
        "contexts": [{"name": "kubeless-local", "context": {"cluster": "kubeless-local", "user": identity}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML, so kubectl and the clients read it as is
    return path


def api_get(path: str) -> bytes:
    """GET from the API server as admin, without kubectl (which would run build.sh first)."""
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    context.load_cert_chain(PKI / "admin.crt", PKI / "admin.key")
    with urllib.request.urlopen(f"https://127.0.0.1:6443{path}", context=context, timeout=2) as response:
        return response.read()


def api_ready() -> bool:
    return api_get("/readyz") == b"ok"


def kube_proxy_synced() -> bool:
    with urllib.request.urlopen("http://127.0.0.1:10249/metrics", timeout=2) as response:
        for line in response.read().decode().splitlines():
            # e.g. kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"} 1.79e+09
            if line.startswith("kubeproxy_sync_proxy_rules_last_timestamp_seconds") and "IPv6" not in line:
                return float(line.split()[-1]) > 0
    return False


def http_ok(url: str) -> bool:
    context = ssl._create_unverified_context()  # components' own self-signed health endpoints on loopback
    with urllib.request.urlopen(url, context=context, timeout=2) as response:
        return response.status == 200


# --- host networking and kernel settings -----------------------------------------------------------------------

def fence_rules() -> list[list[str]]:
    """Pod and service traffic may only go to pods: everything else that would be forwarded off the host is dropped."""
    return [["FORWARD", "-s", POD_CIDR, "!", "-d", POD_CIDR],
            ["FORWARD", "-s", SERVICE_CIDR, "!", "-d", SERVICE_CIDR],
            ["FORWARD", "-d", SERVICE_CIDR]]


def iptables(*args: str, check: bool = True) -> bool:
    return run("iptables", "-w", *args, check=check, quiet=True).returncode == 0


def install_fence() -> None:
    """Put the fence first in FORWARD (again after kube-proxy, which prepends its own chain)."""
    for rule in reversed(fence_rules()):
        spec = [*rule[1:], "-m", "comment", "--comment", FENCE_COMMENT, "-j", "DROP"]
        while iptables("-D", rule[0], *spec, check=False):
            pass
        iptables("-I", rule[0], "1", *spec)


def remove_fence() -> None:
    for rule in fence_rules():
        spec = [*rule[1:], "-m", "comment", "--comment", FENCE_COMMENT, "-j", "DROP"]
        while iptables("-D", rule[0], *spec, check=False):
            pass


def remove_kube_chains() -> None:
    """kubelet and kube-proxy leave KUBE-* chains (and jumps to them) in every table, for IPv4 and IPv6."""
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            rules = run(tool, "-w", "-t", table, "-S", stdout=subprocess.PIPE, check=False).stdout.splitlines()
            for rule in rules:
                words = shlex.split(rule)
                if words[0] == "-A" and not words[1].startswith("KUBE-") and any(w.startswith("KUBE-") for w in words):
                    run(tool, "-w", "-t", table, "-D", *words[1:], check=False, quiet=True)
            chains = [rule.split()[1] for rule in rules if rule.startswith("-N KUBE-")]
            for flag in ("-F", "-X"):
                for chain in chains:
                    run(tool, "-w", "-t", table, flag, chain, check=False, quiet=True)


def fence_in_place() -> bool:
    listing = run("iptables", "-w", "-S", "FORWARD", stdout=subprocess.PIPE, check=False).stdout.splitlines()
    rules = [line for line in listing if line.startswith("-A FORWARD")]
    return len(rules) >= 3 and all(FENCE_COMMENT in line for line in rules[:3])


def save_kernel_settings() -> None:
    """Remember the host's values once; a crashed run's saved file is the truth, not the values kubelet left."""
    saved = STATE / "kernel-settings.json"
    if not saved.exists():
        values = {key: Path("/proc/sys", key).read_text().strip() for key in KERNEL_SETTINGS}
        saved.write_text(json.dumps(values))


def restore_kernel_settings(*, keys: tuple[str, ...] = KERNEL_SETTINGS, forget: bool = False) -> None:
    saved = STATE / "kernel-settings.json"
    if not saved.exists():
        return
    for key, value in json.loads(saved.read_text()).items():
        if key in keys:
            Path("/proc/sys", key).write_text(value)
    if forget:
        saved.unlink()


# --- configuration files ---------------------------------------------------------------------------------------

def write_containerd_config(bins: dict[str, Path], pause_image: str) -> Path:
    root = STATE / "containerd"
    cni_conf = STATE / "cni" / "net.d"
    cni_conf.mkdir(parents=True, exist_ok=True)
    # containerd's own conf_dir: Debian's podman package drops a bridge config into /etc/cni/net.d
    (cni_conf / "10-kubeless.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": CNI_NETWORK, "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(STATE / "cni" / "ipam"),
                      "ranges": [[{"subnet": POD_CIDR}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "loopback"}]}, indent=2))
    config = f"""version = 3
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{root}/containerd.sock"
[ttrpc]
  address = "{root}/containerd.sock.ttrpc"
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{pause_image}"
[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  # CAP_SYS_RESOURCE is missing on this VM: nobody may lower oom_score_adj, so clamp to containerd's own score
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{shutil.which('runc') or '/usr/sbin/runc'}"
        Root = "{root}/runc"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{bins['bridge'].parent}"]
    conf_dir = "{cni_conf}"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""
    path = root / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config)
    return path


def write_kubelet_config(ip: str) -> Path:
    kubelet = STATE / "kubelet-config"
    kubelet.mkdir(parents=True, exist_ok=True)
    # Pods must never be handed the host's resolver (unreachable from a pod, and a way off the machine).
    (kubelet / "resolv.conf").write_text("")
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "failCgroupV1": False,  # this VM has only cgroup v1
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE: a negative score fails
        "resolvConf": str(kubelet / "resolv.conf"),
        "clusterDNS": [DNS_SERVICE_IP], "clusterDomain": "cluster.local",
        "address": ip, "port": 10250, "healthzBindAddress": "127.0.0.1", "healthzPort": 10248,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(PKI / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        # a nearly full disk must not taint the only node
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "podLogsDir": str(STATE / "pod-logs"),
        "failSwapOn": False,
        "serializeImagePulls": False,
        "rotateCertificates": False,
        "protectKernelDefaults": False,
        "localStorageCapacityIsolation": True,
    }
    path = kubelet / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def write_kube_proxy_config(node: str) -> Path:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(STATE / "kubeconfigs" / "kube-proxy")},
        "mode": "iptables", "hostnameOverride": node, "oomScoreAdj": 0,
        "healthzBindAddress": "127.0.0.1:10256", "metricsBindAddress": "127.0.0.1:10249",
        # leave the host's conntrack sysctls and route_localnet alone
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False},
    }
    path = STATE / "kube-proxy.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def write_corefile(ip: str) -> Path:
    """cluster.local only. The root zone answers NXDOMAIN at once: no upstream, so no lookup leaves the machine."""
    kubeconfig = STATE / "kubeconfigs" / "coredns"
    corefile = f"""cluster.local:{DNS_HOST_PORT} in-addr.arpa:{DNS_HOST_PORT} ip6.arpa:{DNS_HOST_PORT} {{
    bind {ip}
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} kubeless-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
}}
.:{DNS_HOST_PORT} {{
    bind {ip}
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""
    path = STATE / "Corefile"
    path.write_text(corefile)
    return path


def dns_service_manifest(ip: str) -> str:
    ports = [{"name": "dns", "port": 53, "targetPort": DNS_HOST_PORT, "protocol": "UDP"},
             {"name": "dns-tcp", "port": 53, "targetPort": DNS_HOST_PORT, "protocol": "TCP"}]
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
               "spec": {"clusterIP": DNS_SERVICE_IP, "ports": ports}}
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
              "metadata": {"name": "kube-dns-host", "namespace": "kube-system",
                           "labels": {"kubernetes.io/service-name": "kube-dns",
                                      "endpointslice.kubernetes.io/managed-by": "kubectl-kubeless"}},
              "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
              "ports": [{"name": p["name"], "port": DNS_HOST_PORT, "protocol": p["protocol"]} for p in ports]}
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [service, slice_]})


# --- the ingress controller -----------------------------------------------------------------------------------

def traefik_rbac() -> list[dict]:
    """What Traefik's providers read, and the statuses they write (Ingress and Gateway API addresses), for its user."""
    read = ["get", "list", "watch"]
    rules = [
        # nodes: node-port backends; namespaces: a Gateway's allowedRoutes selectors; configmaps: backend CAs
        {"apiGroups": [""], "resources": ["services", "secrets", "configmaps", "nodes", "namespaces"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingressclasses"], "verbs": read},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update"]},
        # every kind of these two groups is routing configuration that the CRD and Gateway API providers read
        {"apiGroups": ["traefik.io", "gateway.networking.k8s.io"], "resources": ["*"], "verbs": read},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["*/status"], "verbs": ["update"]},
    ]
    name = {"name": TRAEFIK_USER}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": name, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": name,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TRAEFIK_USER},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TRAEFIK_USER}]},
    ]


def ingress_manifests() -> str:
    """The classes Traefik serves and the Gateway the product's HTTPRoutes attach to by default.

    The controller names are the ones Traefik's providers match: the nginx provider serves IngressClasses of
    ingress-nginx's controller, so Ingresses written for ingress-nginx work unchanged. Traefik maps a listener to the
    entry point whose address ends in the listener's port, so the listeners use the entry points' ports.
    """
    def ingress_class(name: str, controller: str) -> dict:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": name},
                "spec": {"controller": controller}}

    gateway_api = "gateway.networking.k8s.io/v1"
    all_namespaces = {"namespaces": {"from": "All"}}
    tls_secret = "kubeless-gateway-tls"
    listeners = [
        {"name": "http", "protocol": "HTTP", "port": HTTP_PORT, "allowedRoutes": all_namespaces},
        {"name": "https", "protocol": "HTTPS", "port": HTTPS_PORT, "allowedRoutes": all_namespaces,
         "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": tls_secret}]}},
    ]
    items = [
        *traefik_rbac(),
        ingress_class("nginx", "k8s.io/ingress-nginx"),
        ingress_class("traefik", "traefik.io/ingress-controller"),
        {"apiVersion": gateway_api, "kind": "GatewayClass", "metadata": {"name": GATEWAY_CLASS},
         "spec": {"controllerName": "traefik.io/gateway-controller"}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": tls_secret, "namespace": GATEWAY_NAMESPACE},
         "stringData": {"tls.crt": (PKI / "gateway.crt").read_text(), "tls.key": (PKI / "gateway.key").read_text()}},
        {"apiVersion": gateway_api, "kind": "Gateway", "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
         "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners}},
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def traefik_argv(traefik: str, ip: str) -> list[str]:
    """One Traefik serves the traefik and nginx IngressClasses and the Gateway API, reporting the node's address in
    every Ingress's and Gateway's status (nothing fronts it: clients connect to the node)."""
    return [
        traefik,
        f"--entrypoints.web.address={ip}:{HTTP_PORT}",
        f"--entrypoints.websecure.address={ip}:{HTTPS_PORT}", "--entrypoints.websecure.http.tls=true",
        f"--entrypoints.traefik.address=127.0.0.1:{TRAEFIK_PING_PORT}", "--ping=true",
        "--providers.kubernetesingress=true", f"--providers.kubernetesingress.ingressendpoint.ip={ip}",
        "--providers.kubernetesingressnginx=true", f"--providers.kubernetesingressnginx.publishstatusaddress={ip}",
        "--providers.kubernetesgateway=true", f"--providers.kubernetesgateway.statusaddress.ip={ip}",
        # Middlewares: basic auth and CORS for Ingresses of the traefik class (router.middlewares annotation)
        "--providers.kubernetescrd=true",
        # nothing may leave the machine: no update check, no usage report
        "--global.checknewversion=false", "--global.sendanonymoususage=false",
        "--log.level=INFO", "--log.nocolor=true",
    ]


def port_free(ip: str, port: int) -> bool:
    """Nothing listens there. SO_REUSEADDR as Traefik has it: connections in TIME_WAIT do not count."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def gateway_programmed(ip: str) -> bool:
    gateway = json.loads(api_get(f"/apis/gateway.networking.k8s.io/v1/namespaces/{GATEWAY_NAMESPACE}/gateways/"
                                 f"{GATEWAY_NAME}"))
    conditions = {c["type"]: c["status"] for c in gateway.get("status", {}).get("conditions", [])}
    addresses = [a["value"] for a in gateway.get("status", {}).get("addresses", [])]
    return conditions.get("Programmed") == "True" and ip in addresses


def start_ingress_controller(traefik: Component, ip: str) -> None:
    """The CRDs Traefik watches, its RBAC, the classes and the Gateway; then Traefik, ready once the Gateway is
    programmed with the node's address (its providers have synced and can write status)."""
    files = component_files()
    addresses = ((ip, HTTP_PORT), (ip, HTTPS_PORT), ("127.0.0.1", TRAEFIK_PING_PORT))
    busy = [f"{host}:{port}" for host, port in addresses if not port_free(host, port)]
    if busy:
        raise ClusterError(f"another process listens on {', '.join(busy)}, where Traefik would (ss -ltnp shows which)")
    crds = [files["gateway-api-crds.yaml"], files["traefik-crds.yaml"]]
    # server-side: the Gateway API CRDs are too large for the last-applied annotation
    kubectl("apply", "--server-side", *(f"--filename={crd}" for crd in crds), quiet=True)
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"--filename={crd}" for crd in crds),
            quiet=True)
    kubectl("apply", "-f", "-", input=ingress_manifests(), quiet=True)
    start(traefik)
    wait_for("traefik", lambda: http_ok(f"http://127.0.0.1:{TRAEFIK_PING_PORT}/ping"), 30, traefik.logfile, "traefik")
    wait_for(f"Gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME} to be programmed", lambda: gateway_programmed(ip), 30,
             traefik.logfile, "traefik")


# --- up / down / status ----------------------------------------------------------------------------------------

def components(bins: dict[str, Path], ip: str, node: str) -> dict[str, Component]:
    kubeconfigs = STATE / "kubeconfigs"
    server = "https://127.0.0.1:6443"
    for identity in ("kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "traefik"):
        write_kubeconfig(kubeconfigs / identity, identity, server)
    write_kubeconfig(kubeconfigs / "coredns", "admin", server)
    b = {name: str(path) for name, path in bins.items()}
    delegated = lambda kc: [f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",  # noqa: E731
                            f"--authorization-kubeconfig={kc}"]
    path_env = {"PATH": f"{bins['containerd'].parent}:{os.environ['PATH']}"}
    return {c.name: c for c in [
        Component("etcd", [b["etcd"], "--name=local",
                           f"--data-dir={STATE}/etcd", "--listen-client-urls=http://127.0.0.1:2379",
                           "--advertise-client-urls=http://127.0.0.1:2379", "--listen-peer-urls=http://127.0.0.1:2380",
                           "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                           "--initial-cluster=local=http://127.0.0.1:2380", "--listen-metrics-urls=http://127.0.0.1:2381",
                           "--unsafe-no-fsync", "--log-level=warn"]),
        Component("kube-apiserver", [
            b["kube-apiserver"], "--etcd-servers=http://127.0.0.1:2379", "--secure-port=6443",
            f"--advertise-address={ip}", f"--tls-cert-file={PKI}/apiserver.crt",
            f"--tls-private-key-file={PKI}/apiserver.key", f"--client-ca-file={PKI}/ca.crt",
            f"--kubelet-client-certificate={PKI}/apiserver-kubelet-client.crt",
            f"--kubelet-client-key={PKI}/apiserver-kubelet-client.key",
            f"--service-account-key-file={PKI}/sa.pub", f"--service-account-signing-key-file={PKI}/sa.key",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction", "--allow-privileged=true", "--profiling=false",
            "--kubelet-preferred-address-types=InternalIP,Hostname"]),
        Component("kube-controller-manager", [
            b["kube-controller-manager"], *delegated(kubeconfigs / "kube-controller-manager"),
            "--bind-address=127.0.0.1", "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={PKI}/sa.key", f"--root-ca-file={PKI}/ca.crt",
            f"--cluster-signing-cert-file={PKI}/ca.crt", f"--cluster-signing-key-file={PKI}/ca.key",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--allocate-node-cidrs=false",
            "--horizontal-pod-autoscaler-sync-period=5s", "--profiling=false"]),
        Component("kube-scheduler", [b["kube-scheduler"], *delegated(kubeconfigs / "kube-scheduler"),
                                     "--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false"]),
        Component("containerd", [b["containerd"], f"--config={STATE}/containerd/config.toml"], env=path_env),
        Component("kubelet", [b["kubelet"], f"--config={STATE}/kubelet-config/config.json",
                              f"--kubeconfig={kubeconfigs}/kubelet", f"--root-dir={STATE}/kubelet",
                              f"--cert-dir={STATE}/kubelet-pki", f"--node-ip={ip}", f"--hostname-override={node}"],
                  env=path_env),
        Component("kube-proxy", [b["kube-proxy"], f"--config={STATE}/kube-proxy.json"]),
        Component("coredns", [b["coredns"], "-conf", str(STATE / "Corefile")]),
        # its own user, bound to traefik_rbac(); Traefik reads KUBECONFIG when it runs outside the cluster
        Component("traefik", traefik_argv(b["traefik"], ip), env={"KUBECONFIG": str(kubeconfigs / "traefik")}),
    ]}


def kubectl(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(component_bins()["kubectl"], f"--kubeconfig={KUBECONFIG}", *args, **kwargs)


def ctr_bin() -> Path:
    return component_bins()["ctr"]


def load_images(bins: dict[str, Path], sock: Path) -> None:
    """Build (content-keyed cache) and import every image of the repo into containerd's k8s.io namespace: the
    cluster's own (pause), the base images and the product's images; there is no registry here."""
    run(sys.executable, REPO / "hack" / "images" / "build.py", "--import", "--address", sock, "--ctr", bins["ctr"],
        "--all")


def up() -> None:
    t0 = time.monotonic()
    if all(pid_of(name) for name in COMPONENT_ORDER) and healthy():
        log(f"already up; KUBECONFIG={KUBECONFIG}")
        return
    if any(pid_of(name) for name in COMPONENT_ORDER) or (STATE / "pids").exists():
        log("found a partial or crashed cluster; cleaning it up first")
        down()
    bins = component_bins()
    ip, node = node_ip(), node_name()
    # Another checkout's crashed cluster may have left the bridge and stale KUBE-* rules behind.
    run("ip", "link", "delete", BRIDGE, check=False, quiet=True)
    remove_kube_chains()
    STATE.mkdir(parents=True, exist_ok=True)
    ensure_pki(ip, node)
    write_kubeconfig(KUBECONFIG, "admin", "https://127.0.0.1:6443")
    procs = components(bins, ip, node)

    start(procs["etcd"])
    wait_for("etcd", lambda: http_ok("http://127.0.0.1:2381/readyz"), 30, procs["etcd"].logfile, "etcd")
    start(procs["kube-apiserver"])
    # fence before any pod can exist
    install_fence()
    write_containerd_config(bins, meta.image("pause", meta.project_version()))
    start(procs["containerd"])
    wait_for("kube-apiserver", api_ready, 90, procs["kube-apiserver"].logfile, "kube-apiserver")
    start(procs["kube-controller-manager"])
    start(procs["kube-scheduler"])
    wait_for("containerd", lambda: run(bins["ctr"], "-a", CONTAINERD_SOCKET, "version", quiet=True,
                                       check=False).returncode == 0, 30, procs["containerd"].logfile, "containerd")
    load_images(bins, CONTAINERD_SOCKET)

    write_kubelet_config(ip)
    save_kernel_settings()
    kubelet_root = STATE / "kubelet"
    kubelet_root.mkdir(parents=True, exist_ok=True)
    start(procs["kubelet"])
    write_kube_proxy_config(node)
    start(procs["kube-proxy"])
    write_corefile(ip)
    start(procs["coredns"])
    wait_for(f"node {node}", lambda: kubectl("get", "node", node, "-o",
                                             "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout == "True",
             90, procs["kubelet"].logfile, "kubelet")
    # kubelet has set panic_on_oops=1 and panic=10 by now: an oops must not reboot this machine
    restore_kernel_settings(keys=("kernel/panic_on_oops", "kernel/panic", "vm/overcommit_memory"))
    kubectl("apply", "-f", "-", input=dns_service_manifest(ip), quiet=True)
    start_ingress_controller(procs["traefik"], ip)
    wait_for("kube-proxy", lambda: http_ok("http://127.0.0.1:10256/healthz"), 30, procs["kube-proxy"].logfile,
             "kube-proxy")
    wait_for("coredns", lambda: socket.create_connection((ip, DNS_HOST_PORT), timeout=1).close() is None, 30,
             procs["coredns"].logfile, "coredns")
    # kube-proxy prepends its own FORWARD jumps on its first sync: only after that can the fence stay first
    wait_for("kube-proxy's first rule sync", kube_proxy_synced, 30, procs["kube-proxy"].logfile, "kube-proxy")
    install_fence()
    wait_for("default service account", lambda: kubectl("get", "serviceaccount", "default", quiet=True,
                                                        check=False).returncode == 0, 30)
    seconds = time.monotonic() - t0
    (STATE / "up-seconds").write_text(f"{seconds:.1f}\n")  # for `make test`'s summary
    log(f"cluster up in {seconds:.1f} s; KUBECONFIG={KUBECONFIG}")


def healthy() -> bool:
    with contextlib.suppress(Exception):
        return api_ready() and fence_in_place()
    return False


def delete_workloads() -> None:
    """Let kubelet tear pods down (CNI DEL, unmounts) while it still runs; kcm is stopped so nothing is recreated."""
    if not (pid_of("kubelet") and pid_of("kube-apiserver")):
        return
    stop("kube-controller-manager")
    kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=0", "--force", "--wait=false",
            quiet=True, check=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = kubectl("get", "pods", "-A", "-o", "name", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                      check=False).stdout
        if not out.strip():
            break
        time.sleep(0.5)


def kill_tree(pid: int) -> None:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        for child in children.read_text().split():
            kill_tree(int(child))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_leftover_shims() -> None:
    """containerd's shims (and the containers under them) outlive containerd; ours name our socket."""
    marker = str(STATE / "containerd").encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in proc.joinpath("cmdline").read_bytes():
                kill_tree(int(proc.name))


def unmount_under(root: Path) -> None:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(root) or point.startswith(str(root) + "/"):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        run("umount", "-l", point, check=False, quiet=True)


def remove_cgroups() -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / "kubepods"
        if top.is_dir():
            for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    path.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()


def down() -> None:
    t0 = time.monotonic()
    delete_workloads()
    for name in reversed(COMPONENT_ORDER):
        stop(name)
    kill_leftover_shims()
    remove_kube_chains()
    remove_fence()
    run("ip", "link", "delete", BRIDGE, check=False, quiet=True)
    unmount_under(STATE)
    remove_cgroups()
    restore_kernel_settings(forget=True)
    for name in ("pids", "etcd", "containerd", "kubelet", "kubelet-pki", "cni", "pod-logs"):
        shutil.rmtree(STATE / name, ignore_errors=True)
    log(f"cluster down in {time.monotonic() - t0:.1f} s (logs kept in {LOGS})")


def status() -> int:
    rows = []
    for name in COMPONENT_ORDER:
        pid = pid_of(name)
        rows.append((name, f"running, pid {pid}" if pid else "stopped"))
    rows.append(("api /readyz", "ok" if healthy() else "not ready"))
    rows.append(("pod fence", "in place" if fence_in_place() else "missing"))
    if pid_of("traefik"):
        ip = node_ip()
        with contextlib.suppress(Exception):
            gateway = "programmed" if gateway_programmed(ip) else "not programmed"
            rows.append((f"gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME}", gateway))
        rows.append(("ingress", f"http://{ip}:{HTTP_PORT} https://{ip}:{HTTPS_PORT} (classes nginx, traefik)"))
    rows.append(("kernel.panic_on_oops", Path("/proc/sys/kernel/panic_on_oops").read_text().strip()))
    for name, state in rows:
        print(f"{name:24} {state}")
    print(f"{'kubeconfig':24} {KUBECONFIG}")
    print(f"{'logs':24} {LOGS}")
    return 0 if all(pid_of(n) for n in COMPONENT_ORDER) and healthy() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "kubeconfig", "bins", "images"])
    args = parser.parse_args(argv)
    if os.geteuid() != 0 and args.command in ("up", "down", "images"):
        print("the local cluster needs root (containerd, kubelet, iptables)", file=sys.stderr)
        return 1
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down()
        elif args.command == "status":
            return status()
        elif args.command == "kubeconfig":
            print(KUBECONFIG)
        elif args.command == "bins":
            print("\n".join(sorted({str(p.parent) for p in component_bins().values()})))
        elif args.command == "images":
            # what `up` does on a start, for a cluster that is already up: a recipe added or changed since
            if not pid_of("containerd"):
                raise ClusterError("containerd is not running: `make cluster-up` first")
            load_images(component_bins(), CONTAINERD_SOCKET)
    except ClusterError as error:
        log(f"ERROR: {error}")
        return 1
    except subprocess.CalledProcessError as error:
        log(f"ERROR: {' '.join(map(str, error.cmd))} exited {error.returncode}; logs in {LOGS}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
