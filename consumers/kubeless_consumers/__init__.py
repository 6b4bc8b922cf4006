"""The event-trigger consumers: one process per broker kind (Kafka, NATS, Kinesis) that reads the trigger's topic
for every function its trigger selects and calls the function with each message, at least once.

Layers, top to bottom: `reconciler` (the controller's Runner turns triggers and functions into wanted consumers),
`fleet` (starts and stops them, keeps their counts), `sources/` (one module per broker: read, commit, dead-letter),
`delivery` (the call, its headers and the retry rule, without any broker), `transport` (HTTP).
"""
