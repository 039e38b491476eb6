"""How the supervisor tells a worker process who it is (one environment variable)."""

from __future__ import annotations

import msgspec

from restate_server.config.model import Config

SPEC_ENV = "RESTATE_PY_WORKER_SPEC"


class WorkerSpec(msgspec.Struct, frozen=True):
    index: int
    count: int
    partition_count: int
    # worker j's fabric endpoint (a Unix socket address)
    fabric_addresses: tuple[str, ...]
    # the ingress socket, inherited listening
    ingress_fd: int
    # the supervisor's effective configuration, so every process runs with the same one
    config: Config
    supervisor_pid: int


def encode_spec(spec: WorkerSpec) -> str:
    return msgspec.json.encode(spec).decode()


def decode_spec(raw: str) -> WorkerSpec:
    return msgspec.json.decode(raw, type=WorkerSpec)
