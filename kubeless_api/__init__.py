"""The Kubeless API as data: what the plugin, the controller and every other component agree on.

Standard library only and no I/O, so any process can import it without pulling in its neighbours' dependencies:
the plugin, the controller and future components (trigger consumers, the activator) import this package and never
each other. A unit test imports each of them in a clean interpreter to hold that line.

    meta        group, version, kinds, labels, names, defaults, the project version
    resources   the (apiVersion, kind) -> plural table and the REST path builder
    schema      the CRD schemas, printer columns and spec field names
    conditions  condition types and reasons, which reasons are failures, the lookup and the rollout rule
    catalogue   the runtime catalogue: its one parse rule, runtime ids, lookup
    config      kubeless-config as one frozen dataclass: keys, defaults, parsing
    contract    the runtime contract: FUNC_* variables, event-* headers, metric names
    brokers     the event brokers' Service names, ports and default addresses
"""
