"""Cluster mode: partition logs, leases and the registry in a replicated engine.

Design: ``docs/cluster.md``. The engine is NATS JetStream (three servers, R=3). Nothing
here is used by the single-node server, which keeps its embedded store and no
dependency on an engine.
"""
