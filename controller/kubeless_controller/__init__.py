"""The Kubeless function controller: Functions in, running workloads and a truthful status out.

Reading order: controller.py (the loop), then render.py and status.py (pure: what to apply, what to report), then
the plumbing it stands on: client.py (the API), informer.py (list and watch), workqueue.py (keys and backoff),
leader.py (one active replica), config.py (kubeless-config), server.py and metrics.py (/healthz, /metrics).
__main__.py wires them together.
"""
