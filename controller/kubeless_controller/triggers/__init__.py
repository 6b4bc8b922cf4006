"""The trigger reconcilers: each trigger kind becomes what serves it (an Ingress or HTTPRoute, a CronJob)."""
