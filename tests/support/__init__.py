"""End-to-end test support: real processes (our server, the real restate-server, SDK endpoints).

Modules:
- ``ports``: free loopback ports.
- ``procs``: ``ManagedProcess``, a child process with a log file, readiness waits and
  start/stop/kill -9/restart that only ever signals its own process group.
- ``server``: ``RestateServerProcess`` (our server) and ``RealRestateServerProcess`` (the
  real restate-server binary), same interface.
- ``node``: locating Node 22 and the npm packages under ``.tools/node``.
- ``endpoints``: ``TsEndpoint`` (TypeScript SDK on Node 22) and ``PyEndpoint`` (official
  Python SDK on hypercorn), both h2c on loopback.
- ``http``: tiny HTTP helpers (register a deployment, call the ingress, h2c GET).
"""
