"""The ingress's counters: requests by outcome, their latency, HTTP connections.

As in the real server, every request that reaches the ingress router is ``admitted``
(CORS preflights are answered before); requests addressed to a service handler are
also counted once answered, labelled with the service and ``call``/``send``:
``completed``, ``invocation_error`` (the invocation's own answer is an error status),
``request_error`` (rejected with a 4xx before anything was invoked) or
``ingress_error`` (any other rejection). Requests that cannot be parsed into a
service/handler (unknown service, malformed path) and the other routes (attach,
awakeables, health) are only ``admitted``.

A call or send looks its :class:`TargetCounters` up once, when it is parsed; its answer
then appends the latency and bumps ``statuses[http_status >= 400]`` (``COMPLETED`` or
``INVOCATION_ERROR``): a few bytecodes, no function call.
"""

from __future__ import annotations

from restate_server.metrics import names
from restate_server.metrics.families import Family, Labels, family, summary
from restate_server.metrics.histogram import LogHistogram, clock_ns
from restate_server.metrics.upkeep import HistogramSet, new_histogram

# indexes into TargetCounters.statuses, and their label values
COMPLETED, INVOCATION_ERROR, REQUEST_ERROR, INGRESS_ERROR = range(4)
STATUS_NAMES = ("completed", "invocation_error", "request_error", "ingress_error")


class TargetCounters:
    """One service and call/send: latency (ns) and outcomes by status index."""

    __slots__ = ("durations", "statuses", "values")

    def __init__(self, durations: LogHistogram) -> None:
        self.durations = durations
        self.values = durations.values  # where the latencies go
        self.statuses = [0, 0, 0, 0]

    def rejected(self, http_status: int, started_ns: int) -> None:
        """Rejected before anything was invoked."""
        self.values.append(clock_ns() - started_ns)
        self.statuses[REQUEST_ERROR if 400 <= http_status < 500 else INGRESS_ERROR] += 1


class IngressMetrics:
    __slots__ = (
        "_histograms",
        "admitted",
        "connections_created",
        "connections_dropped",
        "targets",
    )

    def __init__(self, histograms: HistogramSet | None = None) -> None:
        self._histograms = histograms
        self.admitted = 0
        # (service, is a send) -> counters
        self.targets: dict[tuple[str, bool], TargetCounters] = {}
        self.connections_created = 0
        # status ("success", "parse", "io") -> count
        self.connections_dropped: dict[str, int] = {}

    def target(self, service: str, send: bool) -> TargetCounters:
        counters = self.targets.get((service, send))
        if counters is None:
            counters = TargetCounters(new_histogram(self._histograms))
            self.targets[(service, send)] = counters
        return counters

    def connection_made(self) -> None:
        self.connections_created += 1

    def connection_dropped(self, status: str) -> None:
        dropped = self.connections_dropped
        dropped[status] = dropped.get(status, 0) + 1

    def families(self, now: float) -> list[Family]:
        requests: list[tuple[Labels, float]] = [((("status", "admitted"),), self.admitted)]
        durations = []
        for (service, send), counters in self.targets.items():
            target = (("rpc_service", service), ("rpc_type", "send" if send else "call"))
            requests.extend(
                ((("status", STATUS_NAMES[index]), *target), count)
                for index, count in enumerate(counters.statuses)
                if count
            )
            durations.append((target, counters.durations.snapshot(now)))
        return [
            family(names.INGRESS_REQUESTS, requests),
            summary(names.INGRESS_REQUEST_DURATION, durations),
            family(names.INGRESS_CONNECTION_CREATED, [((), self.connections_created)]),
            family(
                names.INGRESS_CONNECTION_DROPPED,
                [((("status", status),), n) for status, n in self.connections_dropped.items()],
            ),
        ]
