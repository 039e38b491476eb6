"""Replicated engines for a cluster mode's partition log, leader leases and schema registry.

Starts a three-server cluster of each engine on loopback and measures, at replication
factor 3 (every figure is for a write acknowledged by a quorum):

a. sequential append: one append awaited at a time (200 B payload): p50/p99, appends/s
b. 64 appends in flight (64 tasks, one subject/key prefix per partition): appends/s, p50/p99
c. fenced append, as the partition log would use it: JetStream publish with
   ``Nats-Expected-Last-Subject-Sequence``, etcd txn comparing the log head's
   mod_revision; a stale expectation must be rejected (checked and printed)
d. compare-and-set of a lease/ownership key: JetStream KV ``update(last=revision)``,
   etcd txn on a key attached to a lease; a stale revision must be rejected
e. failover: sequential appends (short timeouts, retried idempotently) while the stream
   / raft leader is SIGKILLed; time from the kill until an append issued after the kill
   is acknowledged, and whether every append acknowledged before the kill is readable
f. appends with one server down (2 of 3 alive: the killed leader, before it is restarted)

JetStream: three ``nats-server -js`` with a cluster block (routes to each other), a
file-storage stream ``PARTITIONS`` (subjects ``p.*``, one per partition, 3 replicas) and a
KV bucket with 3 replicas. etcd: three members with a static initial cluster, used
through its HTTP/JSON gateway (``/v3/kv/put``, ``/v3/kv/txn``, ``/v3/lease/grant``...).
Both run with their default durability: etcd fsyncs its WAL before acknowledging (counted
from its /metrics); nats-server 2.9 writes to the page cache and syncs its file store in
the background every 60 s, and has no option to sync every write (2.10 added
``sync_interval: always``).

Processes, ports (picked at run time) and data (a temp dir, removed at the end) are the
run's own; every process started is stopped by its PID at the end, also on error/Ctrl-C.
Results are printed and written to ``benchmarks/results/cluster_engine.json``
(``--out`` names another file).

    apt-get install -y nats-server etcd-server
    .venv/bin/pip install nats-py
    .venv/bin/python -m benchmarks.cluster_engine                       # both, 5 s each
    .venv/bin/python -m benchmarks.cluster_engine --engines etcd --seconds 10
    .venv/bin/python -m benchmarks.cluster_engine --quick               # 1 s each
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import base64
import contextlib
import functools
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.results_file import results_path
from tests.support.ports import free_ports
from tests.support.procs import ManagedProcess

PAYLOAD = os.urandom(200)
INFLIGHT = 64
HOST = "127.0.0.1"
READY_TIMEOUT = 30.0  # a cluster that is not up by then is reported as an error
FAILOVER_CAP = 30.0  # longest we wait for appends to resume after the kill


class Rejected(Exception):
    """The engine refused a conditional write because its expectation was stale."""


def now() -> float:
    return time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(latencies: list[float], elapsed: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    if not ordered:
        return {"n": 0, "ops_per_s": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan")}

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "n": len(ordered),
        "ops_per_s": round(len(ordered) / elapsed, 1),
        "p50_ms": round(pct(0.50), 3),
        "p99_ms": round(pct(0.99), 3),
    }


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


class Processes:
    """Every server process this run starts (each a ``ManagedProcess``: its own process
    group, signalled by its PID), so that all of them are stopped at the end."""

    def __init__(self) -> None:
        self.members: list[ManagedProcess] = []

    def add(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.members.append(ManagedProcess(name, argv, log_dir=log_dir, stop_grace=10))

    def start(self, index: int) -> None:
        self.members[index].start()

    def pid(self, index: int) -> int:
        pid = self.members[index].pid
        assert pid is not None
        return pid

    def kill(self, index: int) -> None:
        self.members[index].kill9()

    def alive(self, index: int) -> bool:
        return self.members[index].is_running()

    def stop_all(self) -> None:
        for member in self.members:
            member.stop()


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = READY_TIMEOUT
) -> float:
    """Poll ``check`` until it holds; returns the seconds it took."""
    began = now()
    while now() - began < timeout:
        with contextlib.suppress(Exception):
            if await check():
                return now() - began
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{what} not reached within {timeout:.0f} s")


class Engine(abc.ABC):
    name: str

    def __init__(self, procs: Processes, root: Path) -> None:
        self.procs = procs
        self.root = root

    @abc.abstractmethod
    async def start(self) -> None:
        """Start three servers, wait until the cluster takes writes, connect a client."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def append(
        self, partition: str, payload: bytes, timeout: float = 5.0, entry_id: str | None = None
    ) -> int:
        """Append to a partition's log; returns its position. ``entry_id`` makes a retry
        of the same entry idempotent."""

    @abc.abstractmethod
    async def fence_init(self, partition: str) -> int: ...

    @abc.abstractmethod
    async def fenced_append(self, partition: str, payload: bytes, expected: int) -> int:
        """Append only if the partition's last position is ``expected``; else Rejected."""

    @abc.abstractmethod
    async def cas_init(self, key: str) -> int: ...

    @abc.abstractmethod
    async def cas(self, key: str, value: bytes, expected: int) -> int:
        """Set an ownership key only at revision ``expected``; else Rejected."""

    @abc.abstractmethod
    async def leader(self) -> int:
        """Index of the member leading the partition log."""

    @abc.abstractmethod
    async def readable(self, partition: str, acked: dict[str, int]) -> int:
        """How many of the acknowledged entries (id -> position) can be read back."""

    @abc.abstractmethod
    async def restart(self, index: int) -> float:
        """Start a killed member again and wait until it has caught up; seconds taken."""

    async def counters(self) -> dict[str, float]:
        """Engine counters (e.g. fsyncs) summed over live members."""
        return {}

    def info(self) -> dict[str, Any]:
        return {}


class JetStream(Engine):
    name = "jetstream"
    stream = "PARTITIONS"

    def __init__(self, procs: Processes, root: Path) -> None:
        super().__init__(procs, root)
        self.nc: Any = None
        self.js: Any = None
        self.kv: Any = None
        self.client_ports: list[int] = []
        self.http_ports: list[int] = []

    async def start(self) -> None:
        import nats

        ports = free_ports(9)
        self.client_ports, route_ports, self.http_ports = ports[0:3], ports[3:6], ports[6:9]
        routes = ", ".join(f'"nats-route://{HOST}:{p}"' for p in route_ports)
        for i in range(3):
            store = self.root / f"n{i}"
            store.mkdir()
            conf = self.root / f"n{i}.conf"
            conf.write_text(
                f'server_name: "n{i}"\n'
                f'listen: "{HOST}:{self.client_ports[i]}"\n'
                f'http: "{HOST}:{self.http_ports[i]}"\n'
                f'jetstream {{ store_dir: "{store}" }}\n'
                f'cluster {{ name: "bench", listen: "{HOST}:{route_ports[i]}",\n'
                f"  routes: [{routes}] }}\n"
            )
            argv = ["nats-server", "-js", "-c", str(conf)]
            self.procs.add(f"n{i}", argv, self.root)
            self.procs.start(i)
        async with aiohttp.ClientSession() as http:
            for i in range(3):
                await wait_until(functools.partial(self._healthy, http, i), f"n{i} healthz")
        self.nc = await nats.connect(
            servers=[f"nats://{HOST}:{p}" for p in self.client_ports],
            dont_randomize=True,  # the client sits on n0, as etcd's does on its member 0
            reconnect_time_wait=0.1,
            max_reconnect_attempts=-1,
            connect_timeout=2,
        )
        self.js = self.nc.jetstream(timeout=5)
        # the meta leader needs a moment after healthz: retry stream creation until it has one
        await wait_until(self._create_assets, "stream and KV bucket created")

    async def _healthy(self, http: aiohttp.ClientSession, index: int) -> bool:
        url = f"http://{HOST}:{self.http_ports[index]}/healthz"
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
            return resp.status == 200

    async def _create_assets(self) -> bool:
        from nats.js.api import StorageType

        await self.js.add_stream(
            name=self.stream, subjects=["p.*"], storage=StorageType.FILE, num_replicas=3
        )
        self.kv = await self.js.create_key_value(
            bucket="leases", replicas=3, history=1, storage=StorageType.FILE
        )
        return True

    async def close(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 5)

    async def append(
        self, partition: str, payload: bytes, timeout: float = 5.0, entry_id: str | None = None
    ) -> int:
        headers = {"Nats-Msg-Id": entry_id} if entry_id else None  # dedupes a retry
        ack = await self.js.publish(f"p.{partition}", payload, timeout=timeout, headers=headers)
        return int(ack.seq)

    async def fence_init(self, partition: str) -> int:
        return await self.append(partition, PAYLOAD)

    async def fenced_append(self, partition: str, payload: bytes, expected: int) -> int:
        from nats.js.errors import APIError

        headers = {"Nats-Expected-Last-Subject-Sequence": str(expected)}
        try:
            ack = await self.js.publish(f"p.{partition}", payload, headers=headers)
        except APIError as err:
            if err.err_code == 10071:  # JSStreamWrongLastSequenceErrF
                raise Rejected(err.description) from err
            raise
        return int(ack.seq)

    async def cas_init(self, key: str) -> int:
        return int(await self.kv.create(key, b"owner-0"))

    async def cas(self, key: str, value: bytes, expected: int) -> int:
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            return int(await self.kv.update(key, value, last=expected))
        except KeyWrongLastSequenceError as err:
            raise Rejected(str(err)) from err

    async def leader(self) -> int:
        info = await self.js.stream_info(self.stream)
        return int(info.cluster.leader.removeprefix("n"))

    async def readable(self, partition: str, acked: dict[str, int]) -> int:
        gate = asyncio.Semaphore(32)

        async def check(entry_id: str, seq: int) -> bool:
            async with gate:
                msg = await self.js.get_msg(self.stream, seq=seq)
                return msg.subject == f"p.{partition}" and msg.data.startswith(entry_id.encode())

        found = await asyncio.gather(*(check(e, s) for e, s in acked.items()))
        return sum(found)

    async def restart(self, index: int) -> float:
        began = now()
        self.procs.start(index)
        async with aiohttp.ClientSession() as http:
            await wait_until(lambda: self._healthy(http, index), f"n{index} healthz")

        async def caught_up() -> bool:
            info = await self.js.stream_info(self.stream)
            peers = info.cluster.replicas or []
            return len(peers) == 2 and all(p.current and not p.offline for p in peers)

        await wait_until(caught_up, f"n{index} current in the stream")
        return now() - began

    def info(self) -> dict[str, Any]:
        return {
            "server": tool_version(["nats-server", "--version"]),
            "client": f"nats-py {importlib.metadata.version('nats-py')}",
            "storage": "file, 3 replicas; stream p.* and KV bucket",
            "sync": "page cache on ack; file store synced in the background every 60 s "
            "(2.9 default; sync_interval/always only exists from 2.10)",
        }


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def prefix_end(prefix: str) -> str:
    # etcd ranges are [key, range_end): the prefix with its last byte incremented
    raw = prefix.encode()
    return b64(raw[:-1] + bytes([raw[-1] + 1]))


class Etcd(Engine):
    name = "etcd"

    def __init__(self, procs: Processes, root: Path) -> None:
        super().__init__(procs, root)
        self.http: aiohttp.ClientSession | None = None
        self.client_ports: list[int] = []
        self.member_ids: dict[str, int] = {}
        self.current = 0  # endpoint the client uses; moves on when it fails
        self.lease_id = "0"
        self.counter = 0

    def url(self, index: int, path: str) -> str:
        return f"http://{HOST}:{self.client_ports[index]}{path}"

    async def start(self) -> None:
        ports = free_ports(6)
        self.client_ports, peer_ports = ports[0:3], ports[3:6]
        cluster = ",".join(f"m{i}=http://{HOST}:{peer_ports[i]}" for i in range(3))
        for i in range(3):
            client = f"http://{HOST}:{self.client_ports[i]}"
            peer = f"http://{HOST}:{peer_ports[i]}"
            argv = [
                "etcd",
                "--name", f"m{i}",
                "--data-dir", str(self.root / f"m{i}"),
                "--listen-client-urls", client,
                "--advertise-client-urls", client,
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", cluster,
                "--initial-cluster-state", "new",
                "--initial-cluster-token", "bench",
                "--logger", "zap",
                "--log-outputs", "stderr",
            ]  # fmt: skip
            self.procs.add(f"m{i}", argv, self.root)
            self.procs.start(i)
        # one pooled session: 64 keep-alive connections serve the 64 concurrent puts
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2 * INFLIGHT))
        for i in range(3):
            await wait_until(functools.partial(self._healthy, i), f"m{i} healthy")
        for i in range(3):
            status = await self.call("/v3/maintenance/status", {}, endpoint=i)
            self.member_ids[status["header"]["member_id"]] = i

    async def _healthy(self, index: int) -> bool:
        assert self.http is not None
        timeout = aiohttp.ClientTimeout(total=1)
        async with self.http.get(self.url(index, "/health"), timeout=timeout) as resp:
            body = await resp.json(content_type=None)
            return resp.status == 200 and body.get("health") == "true"

    async def call(
        self, path: str, body: dict[str, Any], timeout: float = 5.0, endpoint: int | None = None
    ) -> dict[str, Any]:
        assert self.http is not None
        index = self.current if endpoint is None else endpoint
        try:
            async with self.http.post(
                self.url(index, path), json=body, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                data = await resp.json(content_type=None)
                if resp.status != 200 or "error" in data:
                    raise RuntimeError(f"etcd {path}: {resp.status} {data}")
                return data
        except (TimeoutError, aiohttp.ClientError):
            if endpoint is None:  # as a client with several endpoints does: try the next
                self.current = (self.current + 1) % 3
            raise

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

    async def append(
        self, partition: str, payload: bytes, timeout: float = 5.0, entry_id: str | None = None
    ) -> int:
        if entry_id is None:
            self.counter += 1
            entry_id = f"{self.counter:010d}"
        # one key per entry: a retry of the same entry id rewrites the same key
        body = {"key": b64(f"log/{partition}/{entry_id}"), "value": b64(payload)}
        data = await self.call("/v3/kv/put", body, timeout)
        return int(data["header"]["revision"])

    async def fence_init(self, partition: str) -> int:
        data = await self.call("/v3/kv/put", {"key": b64(f"head/{partition}"), "value": b64("0")})
        return int(data["header"]["revision"])

    async def fenced_append(self, partition: str, payload: bytes, expected: int) -> int:
        self.counter += 1
        entry = f"log/{partition}/{self.counter:010d}"
        head = b64(f"head/{partition}")
        body = {
            "compare": [
                {"key": head, "target": "MOD", "result": "EQUAL", "mod_revision": str(expected)}
            ],
            "success": [
                {"request_put": {"key": b64(entry), "value": b64(payload)}},
                {"request_put": {"key": head, "value": b64(entry)}},
            ],
        }
        data = await self.call("/v3/kv/txn", body)
        if not data.get("succeeded", False):  # proto3 JSON leaves out a false field
            raise Rejected(f"head/{partition} mod_revision is not {expected}")
        return int(data["header"]["revision"])

    async def cas_init(self, key: str) -> int:
        grant = await self.call("/v3/lease/grant", {"TTL": 60})
        self.lease_id = grant["ID"]
        body = {"key": b64(key), "value": b64("owner-0"), "lease": self.lease_id}
        data = await self.call("/v3/kv/put", body)
        return int(data["header"]["revision"])

    async def cas(self, key: str, value: bytes, expected: int) -> int:
        body = {
            "compare": [
                {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(expected)}
            ],
            "success": [
                {"request_put": {"key": b64(key), "value": b64(value), "lease": self.lease_id}}
            ],
        }
        data = await self.call("/v3/kv/txn", body)
        if not data.get("succeeded", False):
            raise Rejected(f"{key} mod_revision is not {expected}")
        return int(data["header"]["revision"])

    async def leader(self) -> int:
        for i in range(3):
            if not self.procs.alive(i):
                continue
            with contextlib.suppress(Exception):
                status = await self.call("/v3/maintenance/status", {}, 2.0, endpoint=i)
                return self.member_ids[status["leader"]]
        raise RuntimeError("no etcd member reports a leader")

    async def readable(self, partition: str, acked: dict[str, int]) -> int:
        prefix = f"log/{partition}/"
        body = {"key": b64(prefix), "range_end": prefix_end(prefix), "keys_only": True}
        data = await self.call("/v3/kv/range", body, 30.0)
        keys = {base64.b64decode(kv["key"]).decode() for kv in data.get("kvs", [])}
        return sum(1 for entry_id in acked if f"{prefix}{entry_id}" in keys)

    async def restart(self, index: int) -> float:
        began = now()
        self.procs.start(index)  # the data dir exists: it rejoins, initial-cluster is ignored
        await wait_until(lambda: self._healthy(index), f"m{index} healthy")

        async def caught_up() -> bool:
            mine = await self.call("/v3/maintenance/status", {}, 2.0, endpoint=index)
            lead = await self.call(
                "/v3/maintenance/status", {}, 2.0, endpoint=self.member_ids[mine["leader"]]
            )
            return int(mine["raftIndex"]) >= int(lead["raftIndex"]) - 10

        await wait_until(caught_up, f"m{index} caught up")
        return now() - began

    async def counters(self) -> dict[str, float]:
        assert self.http is not None
        totals = {"wal_fsyncs": 0.0, "backend_commits": 0.0}
        names = {
            "etcd_disk_wal_fsync_duration_seconds_count": "wal_fsyncs",
            "etcd_disk_backend_commit_duration_seconds_count": "backend_commits",
        }
        for i in range(3):
            if not self.procs.alive(i):
                continue
            timeout = aiohttp.ClientTimeout(total=5)
            async with self.http.get(self.url(i, "/metrics"), timeout=timeout) as resp:
                for line in (await resp.text()).splitlines():
                    metric, _, value = line.partition(" ")
                    if metric in names:
                        totals[names[metric]] += float(value)
        return totals

    def info(self) -> dict[str, Any]:
        return {
            "server": tool_version(["etcd", "--version"]),
            "client": f"HTTP/JSON gateway via aiohttp {aiohttp.__version__}",
            "storage": "3 members, static initial cluster, defaults",
            "sync": "WAL fsynced before each raft ready batch is acknowledged "
            "(see fsyncs_per_append)",
        }


async def sequential(engine: Engine, partition: str, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    began = now()
    while now() - began < seconds:
        t0 = now()
        await engine.append(partition, PAYLOAD)
        latencies.append(now() - t0)
    return summary(latencies, now() - began)


async def concurrent(engine: Engine, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    began = now()

    async def worker(index: int) -> None:
        partition = f"c{index % 16}"  # 16 partitions, 4 writers each
        while now() - began < seconds:
            t0 = now()
            await engine.append(partition, PAYLOAD)
            latencies.append(now() - t0)

    await asyncio.gather(*(worker(i) for i in range(INFLIGHT)))
    result = summary(latencies, now() - began)
    result["in_flight"] = INFLIGHT
    return result


async def conditional(
    init: Callable[[], Awaitable[int]],
    write: Callable[[int], Awaitable[int]],
    seconds: float,
) -> dict[str, Any]:
    """Conditional writes chained on the last position, then one with a stale one."""
    expected = await init()
    history = [expected]
    latencies: list[float] = []
    began = now()
    while now() - began < seconds:
        t0 = now()
        expected = await write(expected)
        latencies.append(now() - t0)
        history.append(expected)
    result = summary(latencies, now() - began)
    stale = history[-2]  # what a deposed writer would still hold
    try:
        await write(stale)
        result["stale_rejected"] = False
        result["stale_detail"] = "ACCEPTED a stale expectation"
    except Rejected as err:
        result["stale_rejected"] = True
        result["stale_detail"] = str(err)[:120]
    # the current expectation must still work after the refused write
    await write(expected)
    return result


async def failover(engine: Engine, seconds: float) -> dict[str, Any]:
    partition = "failover"
    acked: dict[str, int] = {}
    acked_at: dict[str, float] = {}
    state: dict[str, float | None] = {"kill_at": None, "resumed_at": None}
    failures = 0
    before = max(1.0, seconds / 2)
    after = max(1.0, seconds / 2)

    async def writer() -> None:
        nonlocal failures
        n = 0
        hard_stop = now() + before + FAILOVER_CAP + after
        while now() < hard_stop:
            kill_at, resumed_at = state["kill_at"], state["resumed_at"]
            if resumed_at is not None and now() > resumed_at + after:
                return
            entry_id = f"f{n:08d}"
            t0 = now()
            try:
                position = await engine.append(
                    partition, entry_id.encode() + b":" + PAYLOAD, 0.5, entry_id
                )
            except Exception:
                failures += 1
                await asyncio.sleep(0.02)
                continue  # retry the same entry: the id makes it idempotent
            t1 = now()
            acked[entry_id], acked_at[entry_id] = position, t1
            if kill_at is not None and resumed_at is None and t0 >= kill_at:
                state["resumed_at"] = t1
            n += 1

    task = asyncio.create_task(writer())
    try:
        await asyncio.sleep(before)
        old_leader = await engine.leader()
        pid = engine.procs.pid(old_leader)
        state["kill_at"] = now()
        engine.procs.kill(old_leader)
        await task
    finally:
        task.cancel()
    kill_at, resumed_at = state["kill_at"], state["resumed_at"]
    assert kill_at is not None
    before_kill = {e: p for e, p in acked.items() if acked_at[e] < kill_at}
    result: dict[str, Any] = {
        "killed": f"member {old_leader} (pid {pid}, leader)",
        "resumed_after_s": None if resumed_at is None else round(resumed_at - kill_at, 3),
        "failed_attempts": failures,
        "acked_before_kill": len(before_kill),
        "readable_before_kill": await engine.readable(partition, before_kill),
        "acked_total": len(acked),
        "readable_total": await engine.readable(partition, acked),
    }
    with contextlib.suppress(Exception):
        result["new_leader"] = await engine.leader()
    result["killed_index"] = old_leader
    return result


async def guarded(step: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A failed measurement is reported as such; the following ones still run."""
    try:
        return await step
    except Exception as err:
        log(f"  failed: {err!r}")
        return {"error": repr(err)[:300]}


async def with_fsyncs(engine: Engine, step: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """Adds the engine's WAL fsyncs (all members) per acknowledged append, where it has them."""
    before = await engine.counters()
    result = await step
    after = await engine.counters()
    if before and result.get("n"):
        fsyncs = after["wal_fsyncs"] - before["wal_fsyncs"]
        result["fsyncs_per_append_all_members"] = round(fsyncs / result["n"], 3)
    return result


async def run_engine(engine: Engine, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"info": engine.info(), "client_on_member": 0}
    began = now()
    await engine.start()
    out["ready_s"] = round(now() - began, 2)
    out["leader_at_start"] = await engine.leader()
    # a short warm-up so that connections and the first file blocks exist
    await sequential(engine, "warmup", min(1.0, seconds))

    log(f"{engine.name}: a sequential appends")
    out["a_sequential"] = await guarded(with_fsyncs(engine, sequential(engine, "0", seconds)))
    log(f"{engine.name}: b {INFLIGHT} appends in flight")
    out["b_concurrent"] = await guarded(with_fsyncs(engine, concurrent(engine, seconds)))
    log(f"{engine.name}: c fenced appends")
    out["c_fenced"] = await guarded(
        conditional(
            lambda: engine.fence_init("fenced"),
            lambda expected: engine.fenced_append("fenced", PAYLOAD, expected),
            seconds,
        )
    )
    log(f"{engine.name}: d lease compare-and-set")
    key = "owner.p1" if engine.name == "jetstream" else "lease/p1"
    counter = iter(range(1, 10**9))
    out["d_cas"] = await guarded(
        conditional(
            lambda: engine.cas_init(key),
            lambda expected: engine.cas(key, f"owner-{next(counter)}".encode(), expected),
            seconds,
        )
    )
    log(f"{engine.name}: e failover (SIGKILL of the leader)")
    out["e_failover"] = await failover(engine, seconds)
    killed = out["e_failover"]["killed_index"]
    log(f"{engine.name}: f appends with 2 of 3 alive")
    out["f_two_of_three"] = await guarded(sequential(engine, "degraded", seconds))
    log(f"{engine.name}: restarting the killed member")
    out["restart_caught_up_s"] = round(await engine.restart(killed), 2)
    await engine.append("0", PAYLOAD)  # the healed cluster still takes writes
    out["wall_s"] = round(now() - began, 1)
    return out


def ms(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def print_table(name: str, res: dict[str, Any]) -> None:
    print(f"\n== {name}: {res['info']['server']}; {res['info']['client']} ==")
    print(
        f"{'measurement (R3, quorum-acked)':40} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'n':>7}"
    )
    rows = [
        ("a sequential append", res["a_sequential"]),
        (f"b {INFLIGHT} appends in flight", res["b_concurrent"]),
        ("c fenced append (expected position)", res["c_fenced"]),
        ("d lease/owner compare-and-set", res["d_cas"]),
        ("f sequential append, 2 of 3 alive", res["f_two_of_three"]),
    ]
    for label, r in rows:
        if "error" in r:
            print(f"{label:40} FAILED: {r['error']}")
            continue
        print(
            f"{label:40} {r['ops_per_s']:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['n']:>7}"
        )
    for label, r in (("c fenced", res["c_fenced"]), ("d CAS", res["d_cas"])):
        if "error" in r:
            continue
        verdict = "REJECTED (ok)" if r["stale_rejected"] else "ACCEPTED (BAD)"
        print(f"{label}: stale expectation {verdict}: {r['stale_detail']}")
    fo = res["e_failover"]
    print(
        f"e failover: killed {fo['killed']}; appends resumed {ms(fo['resumed_after_s'])} s "
        f"after the kill ({fo['failed_attempts']} failed attempts); new leader "
        f"{fo.get('new_leader')}; acked before kill {fo['acked_before_kill']}, readable "
        f"{fo['readable_before_kill']}; acked in all {fo['acked_total']}, readable "
        f"{fo['readable_total']}"
    )
    fsync = res["a_sequential"].get("fsyncs_per_append_all_members")
    if fsync is not None:
        conc = res["b_concurrent"].get("fsyncs_per_append_all_members")
        print(
            f"WAL fsyncs per append, all 3 members: sequential {fsync}, {INFLIGHT} in flight {conc}"
        )
    print(f"sync: {res['info']['sync']}")
    print(
        f"ready in {res['ready_s']} s; killed member caught up {res['restart_caught_up_s']} s "
        f"after restart; engine wall time {res['wall_s']} s"
    )


ENGINES: dict[str, type[Engine]] = {"jetstream": JetStream, "etcd": Etcd}


def run_one(name: str, seconds: float) -> dict[str, Any]:
    procs = Processes()
    root = Path(tempfile.mkdtemp(prefix=f"cluster-engine-{name}-"))
    engine = ENGINES[name](procs, root)

    async def body() -> dict[str, Any]:
        try:
            return await run_engine(engine, seconds)
        finally:
            await engine.close()

    try:
        return asyncio.run(body())
    except Exception as err:
        logs = {m.name: m.log_path.read_text(errors="replace")[-600:] for m in procs.members}
        log(f"{name} failed: {err!r}")
        return {"error": repr(err), "log_tails": logs}
    finally:
        # stop every process started, also on Ctrl-C, then drop the data
        procs.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default="jetstream,etcd", help="comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--quick", action="store_true", help="1 s per measurement")
    parser.add_argument(
        "--out",
        default=None,
        help="JSON file name (in benchmarks/results/ unless it has a directory); "
        "default cluster_engine.json, cluster_engine-quick.json with --quick",
    )
    args = parser.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    names = [n.strip() for n in args.engines.split(",") if n.strip()]
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(unknown)}; known: {', '.join(ENGINES)}")
    began = now()
    results: dict[str, Any] = {}
    for name in names:
        log(f"{name}: starting a three-server cluster")
        results[name] = run_one(name, seconds)
    for name, res in results.items():
        if "error" in res:
            print(f"\n== {name}: FAILED: {res['error']} ==")
        else:
            print_table(name, res)
    wall = round(now() - began, 1)
    print(f"\nrun wall time {wall} s ({seconds:g} s per measurement)")
    path = results_path(args.out, "cluster_engine", args.quick)
    document = {
        "seconds_per_measurement": seconds,
        "payload_bytes": len(PAYLOAD),
        "in_flight": INFLIGHT,
        "cpus": os.cpu_count(),
        "wall_s": wall,
        "engines": results,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {path}")
    return 1 if any("error" in res for res in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
