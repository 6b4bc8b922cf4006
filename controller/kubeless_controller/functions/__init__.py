"""Functions: a Function becomes a ConfigMap, a Service, a Deployment and (if asked) a HorizontalPodAutoscaler.

render.py turns a Function into those children, status.py turns what the cluster shows into its status, both pure;
reconciler.py is the four steps that join them: render, apply, status, events.
"""
