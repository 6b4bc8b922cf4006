"""The runtime contract: what a function's pod is told, what a call carries, and what a runtime reports.

Every runtime image (runtimes/README.md states the contract for people) and every caller (`function call`, `top`,
cron and event triggers) speaks it from here. The runtimes themselves are other languages; a unit test checks that
each one uses these names.
"""
from __future__ import annotations

# --- the environment of the runtime container ------------------------------------------------------------------
ENV_HANDLER = "FUNC_HANDLER"            # the function's name in its module
ENV_MODULE = "MOD_NAME"                 # the module (file name without suffix)
ENV_TIMEOUT = "FUNC_TIMEOUT"            # seconds a call may take
ENV_RUNTIME = "FUNC_RUNTIME"            # the runtime id, e.g. python3.11
ENV_MEMORY_LIMIT = "FUNC_MEMORY_LIMIT"  # the container's memory limit, a Kubernetes quantity
ENV_PORT = "FUNC_PORT"                  # the port to serve on
ENV_BODY_LIMIT = "FUNC_MEMFILE_MAX"     # the largest request body in bytes, Kubeless's name
ENV_INSTALL_VOLUME = "KUBELESS_INSTALL_VOLUME"  # where the code and its dependencies are
# Slow clients: seconds for a request's head (line and headers), and for a kept-alive connection's wait for its next
# request; seconds for a body once its head is in; how many connections are served at once.
ENV_HEADER_TIMEOUT = "FUNC_HEADER_TIMEOUT"
ENV_READ_TIMEOUT = "FUNC_READ_TIMEOUT"
ENV_MAX_CONNECTIONS = "FUNC_MAX_CONNECTIONS"
# The pod's terminationGracePeriodSeconds: on SIGTERM a runtime lets running calls finish for up to this, less
# GRACE_MARGIN, then exits 0.
ENV_GRACE_PERIOD = "FUNC_GRACE_PERIOD"

DEFAULT_BODY_LIMIT = 100 * 1024 * 1024
# Without FUNC_MEMFILE_MAX, the body limit is at most FUNC_MEMORY_LIMIT / BODY_LIMIT_MEMORY_SHARE.
BODY_LIMIT_MEMORY_SHARE = 4
DEFAULT_HEADER_TIMEOUT = 10
DEFAULT_READ_TIMEOUT = 60
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_GRACE_PERIOD = 30  # as Kubernetes' terminationGracePeriodSeconds
# The runtime exits this long before the grace period ends (a tenth of a period shorter than 10 s), so that it
# exits 0, its access log flushed, before the kubelet's SIGKILL.
GRACE_MARGIN = 1.0
# Beyond FUNC_MAX_CONNECTIONS, this many more connections are accepted, each for one request read within
# RESERVE_HEADER_TIMEOUT (or FUNC_HEADER_TIMEOUT when shorter): GET /healthz and GET /metrics are answered, anything
# else gets 503 `too many connections`; so the kubelet's probes reach a busy pod. Beyond both: closed at once.
RESERVE_CONNECTIONS = 32
RESERVE_HEADER_TIMEOUT = 1.0

# --- a call ----------------------------------------------------------------------------------------------------
HEADER_EVENT_ID = "event-id"
HEADER_EVENT_TYPE = "event-type"
HEADER_EVENT_TIME = "event-time"
HEADER_EVENT_NAMESPACE = "event-namespace"
EVENT_HEADERS = (HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_EVENT_TIME, HEADER_EVENT_NAMESPACE)
# event-namespace values: who sent the event, as in Kubeless
EVENT_NAMESPACE_CLI = "cli.kubeless.io"
EVENT_NAMESPACE_CRON = "cronjobtrigger.kubeless.io"
EVENT_NAMESPACE_KAFKA = "kafkatriggers.kubeless.io"
EVENT_NAMESPACE_NATS = "natstriggers.kubeless.io"
EVENT_NAMESPACE_KINESIS = "kinesistriggers.kubeless.io"

PATH_HEALTH = "/healthz"
PATH_METRICS = "/metrics"
STATUS_TIMEOUT = 408
STATUS_BODY_TOO_LARGE = 413

# --- what a runtime reports on /metrics (Prometheus text format, label `method`) -------------------------------
METRIC_CALLS = "function_calls_total"
METRIC_FAILURES = "function_failures_total"
METRIC_DURATION = "function_duration_seconds"  # a histogram with DURATION_BUCKETS
METRIC_STUCK = "function_stuck_calls"          # timed-out calls still running
METRIC_LABEL_METHOD = "method"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# the `le` labels of the histogram's buckets, exactly as every runtime writes them
DURATION_BUCKET_LABELS = (*map(repr, DURATION_BUCKETS), "+Inf")
