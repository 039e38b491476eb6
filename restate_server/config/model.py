"""The configuration tree: keys and defaults as in the real restate-server 1.7.

Struct attributes are snake_case; the TOML/environment keys are the kebab-case names
the real server uses (``rename="kebab"``), except duration attributes, which carry an
``_ms`` suffix in Python and keep the real key (``inactivity_timeout_ms`` is
``inactivity-timeout``). Nesting follows the real server: retention and retry
defaults sit at the top level, invoker timeouts under ``[worker.invoker]``.
Values that depend on other values (bind addresses, the invoker's message size limit)
are settled by the loader, so a ``Config`` built directly carries plain defaults.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from restate_server.config.cores import usable_cores
from restate_server.config.values import (
    AdvertisedAddress,
    BindAddress,
    ByteSize,
    Choice,
    Duration,
    IntRange,
    IpAddress,
    MaxAttempts,
    PositiveFloat,
    parse_bind_address,
)

DAY_MS = 86_400_000
MIB = 1024 * 1024
INGRESS_PORT = 8080
ADMIN_PORT = 9070
NODE_PORT = 5122


class _Options(msgspec.Struct, frozen=True, kw_only=True, rename="kebab"):
    pass


class RetryPolicyOptions(_Options):
    """``[default-retry-policy]``: used when a service/handler configures no policy."""

    initial_interval_ms: Annotated[int, Duration(nonzero=True)] = msgspec.field(
        default=500, name="initial-interval"
    )
    exponentiation_factor: Annotated[float, PositiveFloat()] = 2.0
    # Including the first attempt; None is "unlimited".
    max_attempts: Annotated[int | None, MaxAttempts()] = 70
    on_max_attempts: Annotated[str, Choice("pause", "kill")] = "pause"
    max_interval_ms: Annotated[int, Duration(nonzero=True)] = msgspec.field(
        default=60_000, name="max-interval"
    )


class InvokerOptions(_Options):
    """``[worker.invoker]``."""

    inactivity_timeout_ms: Annotated[int, Duration()] = msgspec.field(
        default=60_000, name="inactivity-timeout"
    )
    abort_timeout_ms: Annotated[int, Duration()] = msgspec.field(
        default=600_000, name="abort-timeout"
    )
    message_size_warning: Annotated[int, ByteSize()] = 10 * MIB
    # Unless set, ``networking.message-size-limit``; when set, clamped to it.
    message_size_limit: Annotated[int, ByteSize()] = 32 * MIB
    concurrent_invocations_limit: Annotated[int | None, IntRange(1)] = 1000
    # Request identity: an ed25519 private key (PEM) that signs every request to
    # deployments. The real server also reads the key at the top level (deprecated
    # there); the loader moves it here.
    request_identity_private_key_pem_file: str | None = None
    # nbf = now - leeway, exp = now + leeway; the real server clamps it to at least 1s.
    request_identity_expiration_ms: Annotated[int, Duration(nonzero=True)] = msgspec.field(
        default=60_000, name="request-identity-expiration"
    )


class WorkerOptions(_Options):
    """``[worker]``."""

    cleanup_interval_ms: Annotated[int, Duration(nonzero=True)] = msgspec.field(
        default=3_600_000, name="cleanup-interval"
    )
    invoker: InvokerOptions = msgspec.field(default_factory=InvokerOptions)


class IngressOptions(_Options):
    """``[ingress]``. ``bind-address`` wins over ``bind-ip``/``bind-port``."""

    bind_address: Annotated[str, BindAddress(INGRESS_PORT)] = f"0.0.0.0:{INGRESS_PORT}"
    bind_ip: Annotated[str | None, IpAddress()] = None
    bind_port: Annotated[int | None, IntRange(0, 65535)] = None
    use_random_ports: bool | None = None
    advertised_host: str | None = None
    advertised_address: Annotated[str | None, AdvertisedAddress(INGRESS_PORT)] = None
    # Deprecated in the real server in favour of advertised-address; the loader fills it
    # with the effective advertised URL, which the admin API reports.
    advertised_ingress_endpoint: Annotated[str | None, AdvertisedAddress(INGRESS_PORT)] = None

    def bind_host_port(self) -> tuple[str, int]:
        return parse_bind_address(self.bind_address, INGRESS_PORT)


class AdminOptions(_Options):
    """``[admin]``. ``bind-address`` wins over ``bind-ip``/``bind-port``."""

    bind_address: Annotated[str, BindAddress(ADMIN_PORT)] = f"0.0.0.0:{ADMIN_PORT}"
    bind_ip: Annotated[str | None, IpAddress()] = None
    bind_port: Annotated[int | None, IntRange(0, 65535)] = None
    use_random_ports: bool | None = None
    advertised_host: str | None = None
    advertised_address: Annotated[str | None, AdvertisedAddress(ADMIN_PORT)] = None
    advertised_admin_endpoint: Annotated[str | None, AdvertisedAddress(ADMIN_PORT)] = None

    def bind_host_port(self) -> tuple[str, int]:
        return parse_bind_address(self.bind_address, ADMIN_PORT)


class NetworkingOptions(_Options):
    """``[networking]``: the cap every message size limit is clamped to."""

    message_size_limit: Annotated[int, ByteSize()] = 32 * MIB


class LogServerOptions(_Options):
    """``[log-server]``. The real server's durable log lives here; ours is the single
    RocksDB store, so ``rocksdb-disable-wal-fsync`` turns off fsync of every write."""

    rocksdb_disable_wal_fsync: bool = False


class QueryOptions(_Options):
    """``[py.query]`` (this server's own key; the real server has other query settings):
    ``POST /query``."""

    # DataFusion's memory pool for one query (sorts, joins, aggregations); the encoded
    # answer may not grow past it either. Scans stream their rows in small batches.
    memory_limit: Annotated[int, ByteSize()] = 128 * MIB


class HttpOptions(_Options):
    """``[py.http]``: limits of the ingress and admin HTTP servers (the real server has
    fixed ones). A request past a size limit is refused before it is buffered."""

    max_body_size: Annotated[int, ByteSize()] = 32 * MIB  # 413
    # the request line and headers together (431); a longer URL alone gets 414
    max_header_size: Annotated[int, ByteSize()] = 64 * 1024
    max_headers: Annotated[int, IntRange(1)] = 100  # 431
    # a request's head must arrive within this (slowloris), 408 after
    header_read_timeout_ms: Annotated[int, Duration(nonzero=True)] = msgspec.field(
        default=10_000, name="header-read-timeout"
    )
    # a body that stops arriving for this long, 408
    body_read_timeout_ms: Annotated[int, Duration(nonzero=True)] = msgspec.field(
        default=30_000, name="body-read-timeout"
    )
    # a kept-alive connection with nothing in flight is closed after this
    idle_timeout_ms: Annotated[int, Duration(nonzero=True)] = msgspec.field(
        default=120_000, name="idle-timeout"
    )


class WorkerProcessOptions(_Options):
    """``[py.worker]``: how many processes share the partitions (docs/workers.md)."""

    # 1: the whole server in one process; N > 1: a supervisor and N worker processes;
    # 0 (the default): chosen from the cores this process may use (``auto_processes``)
    processes: Annotated[int, IntRange(0, 1024)] = 0

    def resolved_processes(self, partitions: int, cores: int | None = None) -> int:
        """The worker count to run: never more workers than partitions."""
        if cores is None:
            cores = usable_cores()
        count = self.processes or auto_processes(cores)
        return max(1, min(count, partitions))


# From this many usable cores on, the default runs one worker per core. Below, one
# process: measured on 2 cores (docs/workers.md), two workers answered endpoint-bound
# calls 5-9 % slower (the SDK endpoint and the clients share those cores) and took
# server-bound sends only 1.07x further, for 3x the memory.
AUTO_WORKERS_MIN_CORES = 4


def auto_processes(cores: int) -> int:
    return cores if cores >= AUTO_WORKERS_MIN_CORES else 1


class ClusterOptions(_Options):
    """``[py.cluster]``: cluster mode (docs/cluster.md); off while ``engine-address`` is
    empty (one node, embedded storage, no engine)."""

    # the engine's servers (NATS JetStream), comma-separated: nats://host:port,...
    engine_address: str = ""
    # copies the engine keeps of every log record, lease and registry entry
    replication_factor: Annotated[int, IntRange(1, 5)] = 3
    # a partition's leader must renew its lease within this; another node takes the
    # partition over once it has run out
    lease_duration_ms: Annotated[int, Duration(nonzero=True)] = msgspec.field(
        default=10_000, name="lease-duration"
    )
    # where this node takes commands for the partitions it leads from other nodes, and
    # the address they use for it (default: the bind address, with this host's name in
    # place of 0.0.0.0)
    fabric_bind_address: str = "0.0.0.0:5123"
    fabric_advertised_address: str | None = None
    # an append the engine has not taken within this (no quorum) fails the commit
    commit_timeout_ms: Annotated[int, Duration(nonzero=True)] = msgspec.field(
        default=10_000, name="commit-timeout"
    )
    # a partition's leader stores a snapshot in the engine every this many log records
    # and purges the log below it (the real server's worker.snapshots option); 0: never
    snapshot_interval_num_records: Annotated[int, IntRange(0, 2**31)] = 5_000

    @property
    def enabled(self) -> bool:
        return bool(self.engine_urls)

    @property
    def engine_urls(self) -> list[str]:
        return [part.strip() for part in self.engine_address.split(",") if part.strip()]


class PyOptions(_Options):
    """``[py]``: settings of this server that the real restate-server does not have."""

    cluster: ClusterOptions = msgspec.field(default_factory=ClusterOptions)

    query: QueryOptions = msgspec.field(default_factory=QueryOptions)
    http: HttpOptions = msgspec.field(default_factory=HttpOptions)
    worker: WorkerProcessOptions = msgspec.field(default_factory=WorkerProcessOptions)


class StorageSettings(msgspec.Struct, frozen=True):
    """What the store needs, derived from the real keys (not a TOML table)."""

    sync_writes: bool


class Config(_Options):
    """The whole configuration; see the module docstring for naming."""

    base_dir: str = "./restate-data"
    # None: the host name, as in the real server.
    node_name: str | None = None
    cluster_name: str = "localcluster"
    # Only read when a base dir is used for the first time (the real server: at
    # provisioning); the count is then fixed in storage. The real server's CLI also
    # accepts --bootstrap-num-partitions; its TOML/env key is default-num-partitions.
    default_num_partitions: Annotated[int, IntRange(1, 65535)] = 24
    log_filter: str = "warn,restate=info"
    log_format: Annotated[str, Choice("pretty", "compact", "json")] = "pretty"
    log_disable_ansi_codes: bool = False
    # The node address: GET /metrics (Prometheus) and /health.
    bind_address: Annotated[str, BindAddress(NODE_PORT)] = f"0.0.0.0:{NODE_PORT}"
    # How other nodes reach this one (the real server's URL form, e.g.
    # http://node-1:5122/); in cluster mode its host is the fabric's, unless
    # [py.cluster] fabric-advertised-address names the whole address.
    advertised_address: str | None = None
    disable_prometheus: bool = False
    # How long running attempts may take to finish or suspend after SIGTERM/SIGINT.
    shutdown_timeout_ms: Annotated[int, Duration()] = msgspec.field(
        default=60_000, name="shutdown-timeout"
    )
    # OTLP collector for traces, e.g. http://localhost:4317 (gRPC) or
    # otlp+http://localhost:4318/v1/traces; off when unset (see docs/tracing.md).
    tracing_endpoint: str | None = None
    # Overrides tracing-endpoint for services (invocation) traces, the only ones we make.
    tracing_services_endpoint: str | None = None
    # The real server's filter for its runtime traces; services traces ignore it.
    tracing_filter: str = "info"
    # Deprecated location of worker.invoker.request-identity-private-key-pem-file.
    request_identity_private_key_pem_file: str | None = None
    # Inherited by [ingress] and [admin] when they do not set their own.
    bind_ip: Annotated[str | None, IpAddress()] = None
    use_random_ports: bool | None = None
    advertised_host: str | None = None
    # 0 disables retention of completed journals.
    default_journal_retention_ms: Annotated[int, Duration()] = msgspec.field(
        default=DAY_MS, name="default-journal-retention"
    )
    default_idempotency_retention_ms: Annotated[int, Duration()] = msgspec.field(
        default=DAY_MS, name="default-idempotency-retention"
    )
    default_workflow_completion_retention_ms: Annotated[int, Duration()] = msgspec.field(
        default=DAY_MS, name="default-workflow-completion-retention"
    )
    experimental_enable_protocol_v7: bool = False
    default_retry_policy: RetryPolicyOptions = msgspec.field(default_factory=RetryPolicyOptions)
    worker: WorkerOptions = msgspec.field(default_factory=WorkerOptions)
    admin: AdminOptions = msgspec.field(default_factory=AdminOptions)
    ingress: IngressOptions = msgspec.field(default_factory=IngressOptions)
    networking: NetworkingOptions = msgspec.field(default_factory=NetworkingOptions)
    log_server: LogServerOptions = msgspec.field(default_factory=LogServerOptions)
    py: PyOptions = msgspec.field(default_factory=PyOptions)

    def node_bind_host_port(self) -> tuple[str, int]:
        return parse_bind_address(self.bind_address, NODE_PORT)

    @property
    def storage(self) -> StorageSettings:
        return StorageSettings(sync_writes=not self.log_server.rocksdb_disable_wal_fsync)

    @property
    def bootstrap_num_partitions(self) -> int:
        """The name older code and the real CLI flag use for ``default_num_partitions``."""
        return self.default_num_partitions
