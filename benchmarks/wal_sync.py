"""Synced write-ahead-log commits on this disk: one store, or several processes with a
store each (as worker processes have), with RocksDB's WAL recycling off and on.

Each process writes a small batch and syncs the WAL (``flush_wal(True)``, as the
committer does) in a loop for ``--seconds``; the table gives commits/s and sync latency
per process. Recycling reuses old WAL files in place, so a sync overwrites blocks of a
file whose size does not change and the file system has less metadata to commit with
it. Findings (benchmarks/README.md, 23): recycling halves a sync here; two stores'
syncs do not queue on each other on this disk; the server does not recycle.

    .venv/bin/python -m benchmarks.wal_sync --processes 1,2 --seconds 5
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import statistics
import tempfile
import time

import click
import rocksdict

from restate_server.storage.db import store_options


def _commit_loop(path: str, recycle: int, seconds: float, start_at: float, out) -> None:
    options = store_options()
    if recycle:
        options.set_recycle_log_file_num(recycle)
    db = rocksdict.Rdict(path, options)
    write_options = rocksdict.WriteOptions()
    value = os.urandom(300)
    # a server's WAL files are a memtable long (8 MiB) before they are recycled: fill
    # and retire a few so that the measured writes go to a full-sized recycled file
    filler = os.urandom(64 * 1024)
    for round_ in range(3):
        for i in range(160):
            db.put(b"fill-%d-%d" % (round_, i), filler, write_options)
        db.flush()
    latencies: list[float] = []
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        batch = rocksdict.WriteBatch(raw_mode=True)
        for i in range(5):
            batch.put(b"k%d-%d" % (n, i), value)
        began = time.perf_counter()
        db.write(batch, write_options)
        db.flush_wal(True)
        latencies.append(time.perf_counter() - began)
        n += 1
    db.close()
    out.send(latencies)


def _run(processes: int, recycle: int, seconds: float, work: str) -> list[list[float]]:
    start_at = time.time() + 3  # after every warm-up
    pipes, procs = [], []
    for k in range(processes):
        receiver, sender = multiprocessing.Pipe(duplex=False)
        path = os.path.join(work, f"p{processes}-r{recycle}-{k}")
        proc = multiprocessing.Process(
            target=_commit_loop, args=(path, recycle, seconds, start_at, sender)
        )
        proc.start()
        pipes.append(receiver)
        procs.append(proc)
    results = [pipe.recv() for pipe in pipes]
    for proc in procs:
        proc.join()
    return results


@click.command()
@click.option("--processes", default="1,2", help="comma-separated process counts")
@click.option("--recycle", default="0,4", help="comma-separated recycle_log_file_num values")
@click.option("--seconds", default=5.0)
@click.option("--rounds", default=2, help="alternating rounds per combination")
def main(processes: str, recycle: str, seconds: float, rounds: int) -> None:
    work = tempfile.mkdtemp(prefix="restate-wal-sync-")
    try:
        print(f"{'processes':>9} {'recycle':>7} {'commits/s':>10} {'p50 ms':>7} {'p99 ms':>7}")
        for count in [int(p) for p in processes.split(",")]:
            for _ in range(rounds):
                for recycled in [int(r) for r in recycle.split(",")]:
                    results = _run(count, recycled, seconds, work)
                    every = sorted(x for one in results for x in one)
                    rate = len(every) / seconds
                    p50 = statistics.median(every) * 1000
                    p99 = every[int(len(every) * 0.99)] * 1000
                    print(f"{count:>9} {recycled:>7} {rate:>10.0f} {p50:>7.2f} {p99:>7.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
