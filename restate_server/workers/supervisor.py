"""The supervisor: N worker processes sharing the partitions, one admin API.

At start it places the partitions into the workers' stores (moving whole partitions
when the worker count changed since the last run), binds the ingress socket that
every worker accepts on, starts the workers and waits until each leads its share.
It serves the admin API and the node address itself: the registry is its own (in the
node's metadata store) and reaches every worker before a change is answered;
invocation operations go to the owning partition over the fabric. A worker that dies
is started again; SIGTERM stops the workers first, each draining as a single server
does, then the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from restate_server.http_server import Request, Response, serve
from restate_server.invoker.transport import Transport
from restate_server.partition.operations import InvocationOperations
from restate_server.partition.router import Partitions
from restate_server.partition.table import PartitionTable
from restate_server.partition.waiters import Waiters
from restate_server.process_run import HURRY_SIGNAL
from restate_server.storage.metadata_store import NodeMetadataStore
from restate_server.storage.stores import place_partitions, worker_of
from restate_server.workers.link import PeerLink, RemotePartition
from restate_server.workers.spec import SPEC_ENV, WorkerSpec, encode_spec

if TYPE_CHECKING:
    from restate_server.admin_role import LazyQuery

log = logging.getLogger("restate_server")

# a worker must lead its partitions within this, or the start fails
WORKER_START_TIMEOUT_S = 60.0
# a worker that dies this soon after it started is restarted after a growing pause
RESTART_QUICK_DEATH_S = 10.0
RESTART_MAX_PAUSE_S = 5.0


class WorkerProcess:
    """One worker: its process (restarted when it dies) and the supervisor's link to it."""

    def __init__(self, index: int, link: PeerLink) -> None:
        self.index = index
        self.link = link
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.pause_s = 0.0


class Supervisor:
    def __init__(self, config: Any, workers: int) -> None:
        self.config = config
        self.worker_count = workers
        self.waiters = Waiters()
        self.metadata: NodeMetadataStore | None = None
        self.registry: Any = None
        self.workers: list[WorkerProcess] = []
        self.table: PartitionTable | None = None
        self.query: LazyQuery | None = None
        self._ingress_socket: socket.socket | None = None
        self._admin_server: asyncio.AbstractServer | None = None
        self._node_server: asyncio.AbstractServer | None = None
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._fabric_addresses: tuple[str, ...] = ()
        self.ingress_address: tuple[str, int] | None = None
        self.admin_address: tuple[str, int] | None = None
        self.node_address: tuple[str, int] | None = None

    # ---- start

    async def start(self) -> None:
        from restate_server.schema.registry import SchemaRegistry
        from restate_server.server import schema_defaults_of

        config = self.config
        self.metadata = metadata = NodeMetadataStore(
            config.base_dir, sync_writes=config.storage.sync_writes
        )
        self.table = table = PartitionTable(metadata.partition_count(config.default_num_partitions))
        # off the loop: moving partitions reads and writes whole key ranges
        report = await asyncio.to_thread(
            place_partitions,
            config.base_dir,
            table,
            self.worker_count,
            sync_writes=config.storage.sync_writes,
        )
        if report.moves:
            log.info("partitions placed for %d workers: %s", self.worker_count, report.summary())
        self.registry = SchemaRegistry(metadata, schema_defaults_of(config))
        self._bind_ingress()
        token = secrets.token_hex(4)
        self._fabric_addresses = tuple(
            fabric_address(os.getpid(), token, index) for index in range(self.worker_count)
        )
        for index, address in enumerate(self._fabric_addresses):
            link = PeerLink(f"worker-{index}", address, self.waiters, self._push_schema)
            self.workers.append(WorkerProcess(index, link))
        for worker in self.workers:
            await self._spawn(worker)
            worker.link.start()
        await asyncio.wait_for(self._all_ready(), WORKER_START_TIMEOUT_S)
        for worker in self.workers:
            self._watchers.append(asyncio.create_task(self._watch(worker)))
        await self._start_admin()
        log.info(
            "restate-server ready: ingress on %s:%s, admin on %s:%s, node on %s:%s, "
            "%d partitions over %d worker processes, data in %s",
            *self.ingress_address,
            *self.admin_address,
            *self.node_address,
            table.count,
            self.worker_count,
            config.base_dir,
        )

    def _bind_ingress(self) -> None:
        from restate_server.server import split_address

        host, port = split_address(self.config.ingress.bind_address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.set_inheritable(True)
        self._ingress_socket = sock
        self.ingress_address = sock.getsockname()[:2]

    async def _spawn(self, worker: WorkerProcess) -> None:
        assert self._ingress_socket is not None and self.table is not None
        fd = self._ingress_socket.fileno()
        spec = WorkerSpec(
            index=worker.index,
            count=self.worker_count,
            partition_count=self.table.count,
            fabric_addresses=self._fabric_addresses,
            ingress_fd=fd,
            config=self.config,
            supervisor_pid=os.getpid(),
        )
        env = {**os.environ, SPEC_ENV: encode_spec(spec)}
        worker.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "restate_server.workers.worker",
            env=env,
            pass_fds=(fd,),
        )
        worker.started_at = time.monotonic()
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)

    async def _all_ready(self) -> None:
        for worker in self.workers:
            await self._ready(worker)

    async def _ready(self, worker: WorkerProcess) -> None:
        """Until the worker leads its partitions and accepts ingress connections."""
        while True:
            process = worker.process
            if process is not None and process.returncode is not None:
                raise RuntimeError(f"worker {worker.index} exited with {process.returncode}")
            await worker.link.wait_connected()
            try:
                await worker.link.call("ready")
                return
            except ConnectionError:
                await asyncio.sleep(0.05)

    async def _push_schema(self, link: PeerLink) -> None:
        """A (re)connected worker gets the registry before anything else."""
        await asyncio.wait_for(link.call("schema", self.registry.encoded()), 30)

    async def publish_schema(self) -> None:
        """Every connected worker routes with the current registry when this returns; a
        worker not connected now gets it when it connects, before it serves."""
        raw = self.registry.encoded()
        calls = [w.link.call("schema", raw) for w in self.workers if w.link.connected]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, ConnectionError):
                log.warning("a worker did not take the schema: %s", result)

    # ---- restarts

    async def _watch(self, worker: WorkerProcess) -> None:
        while True:
            process = worker.process
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            lived = time.monotonic() - worker.started_at
            worker.pause_s = (
                min(max(worker.pause_s * 2, 0.1), RESTART_MAX_PAUSE_S)
                if lived < RESTART_QUICK_DEATH_S
                else 0.0
            )
            log.error(
                "worker %d (pid %d) exited with %s after %.1f s; starting it again%s",
                worker.index,
                process.pid,
                code,
                lived,
                f" in {worker.pause_s:.1f} s" if worker.pause_s else "",
            )
            if worker.pause_s:
                await asyncio.sleep(worker.pause_s)
            if self._stopping:
                return
            worker.restarts += 1
            await self._spawn(worker)

    # ---- admin API and node address

    async def _start_admin(self) -> None:
        """The admin API: invocation operations go to the owning worker's partition; a
        registry change is answered once every worker routes with it."""
        from restate_server.admin.app import create_admin_handler
        from restate_server.admin.routing import is_write
        from restate_server.admin_role import admin_state, serve_node_address
        from restate_server.metrics.workers import WorkerMetrics
        from restate_server.server import http_limits_of, request_signer_of, split_address
        from restate_server.workers.storage_status import WorkerStorage

        config = self.config
        registry = self.registry
        table = self.table
        assert table is not None and self.ingress_address is not None
        remote = [
            RemotePartition(self.workers[worker_of(p, self.worker_count)].link, p)
            for p in range(table.count)
        ]
        partitions = Partitions(table, remote)  # type: ignore[arg-type]
        storage = WorkerStorage(self._links)
        state = admin_state(
            config,
            registry=registry,
            transport=Transport(),
            request_signer=request_signer_of(config),
            ingress_address=self.ingress_address,
            invocations=InvocationOperations(partitions, self.waiters),
            query=self._query_handler(),
            storage=storage,
        )
        handler = create_admin_handler(state)

        async def admin(request: Request) -> Response:
            if is_write(request):
                await storage.refresh()  # a write is refused while a worker's disk is full
            before = registry.version
            response = await handler(request)
            if registry.version != before:
                await self.publish_schema()
            return response

        host, port = split_address(config.admin.bind_address)
        self._admin_server = await serve(admin, host, port, limits=http_limits_of(config))
        self.admin_address = self._admin_server.sockets[0].getsockname()[:2]
        metrics = None if config.disable_prometheus else WorkerMetrics(self._links)
        self._node_server = await serve_node_address(
            config, registry, metrics, self.ingress_address, self.admin_address
        )
        self.node_address = self._node_server.sockets[0].getsockname()[:2]

    def _links(self) -> list[PeerLink]:
        return [worker.link for worker in self.workers]

    def _link_of(self, partition_id: int) -> PeerLink:
        return self.workers[worker_of(partition_id, self.worker_count)].link

    def _query_handler(self) -> LazyQuery:
        """POST /query: planned and executed here, each partition read from its worker."""
        from restate_server.admin_role import LazyQuery
        from restate_server.server import SERVER_VERSION

        table = self.table
        assert table is not None

        def make(service: Any) -> Any:
            from restate_server.query.remote_view import WorkerViews

            views = WorkerViews(table, self._link_of, self.registry, SERVER_VERSION)
            return service.QueryService(
                open_view=views, partitions=table, memory_limit=self.config.py.query.memory_limit
            )

        self.query = LazyQuery(make, "restate_server.query.remote_view")
        return self.query

    # ---- stop

    async def stop(self, hurry: asyncio.Event | None = None) -> None:
        """Stop the admin API, then every worker (SIGTERM; each drains as a single server
        does, and a second signal, ``hurry``, is passed on as ``HURRY_SIGNAL``), then the
        supervisor."""
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        if self._admin_server is not None:
            self._admin_server.close()
        if self.query is not None:
            await self.query.close()
        running = [w for w in self.workers if w.process and w.process.returncode is None]
        for worker in running:
            _signal(worker, signal.SIGTERM)
        waits = [asyncio.ensure_future(w.process.wait()) for w in running if w.process]
        if hurry is not None and waits:
            hurried = asyncio.ensure_future(hurry.wait())
            done, _ = await asyncio.wait({*waits, hurried}, return_when=asyncio.FIRST_COMPLETED)
            if hurried in done:
                for worker in running:
                    _signal(worker, HURRY_SIGNAL)
            hurried.cancel()
        if waits:
            await asyncio.wait(waits)
        for worker in self.workers:
            await worker.link.close()
        if self._node_server is not None:
            self._node_server.close()
        if self._ingress_socket is not None:
            self._ingress_socket.close()
        if self.metadata is not None:
            self.metadata.close()


def _signal(worker: WorkerProcess, signum: int) -> None:
    process = worker.process
    if process is not None and process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)


def fabric_address(supervisor_pid: int, token: str, index: int) -> str:
    """Worker ``index``'s fabric endpoint: an abstract Unix socket on Linux (no file to
    clean up, no path length limit); a socket file in the temp dir elsewhere."""
    name = f"restate-{supervisor_pid}-{token}-w{index}"
    if sys.platform.startswith("linux"):
        return "\0" + name
    import tempfile

    return os.path.join(tempfile.gettempdir(), name + ".sock")
