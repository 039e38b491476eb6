"""Snapshots of metrics as plain data: what a source reports at scrape time.

A :class:`Family` is one metric name with its samples, labelled by tuples of
``(name, value)`` pairs. Sources (the ingress, each partition, the invoker of each
partition, the committer) build families from their counters; :func:`merge` adds up
families of the same name from any number of sources, so partitions that live in other
processes can send theirs (msgspec structs encode as they are) and the node still
answers one scrape.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from restate_server.metrics.histogram import HistogramData, merge_histograms
from restate_server.metrics.names import Spec

Labels = tuple[tuple[str, str], ...]


class Family(msgspec.Struct):
    name: str  # as exposed, without the _total suffix of counters
    kind: str  # "counter", "gauge" or "summary"
    help: str
    # counters and gauges
    values: list[tuple[Labels, float]] = msgspec.field(default_factory=list)
    # summaries (durations in nanoseconds are scaled to seconds when rendered)
    histograms: list[tuple[Labels, HistogramData]] = msgspec.field(default_factory=list)
    scale: float = 1.0


def family(spec: Spec, values: Iterable[tuple[Labels, float]] = ()) -> Family:
    return Family(spec.name, spec.kind, spec.help, values=list(values), scale=spec.scale)


def summary(spec: Spec, histograms: Iterable[tuple[Labels, HistogramData]]) -> Family:
    return Family(spec.name, spec.kind, spec.help, histograms=list(histograms), scale=spec.scale)


def merge(sources: Iterable[Iterable[Family]]) -> list[Family]:
    """One family per name, samples with equal labels added up (gauges too: each
    source reports its own share, e.g. the partitions it runs)."""
    merged: dict[str, Family] = {}
    values: dict[str, dict[Labels, float]] = {}
    histograms: dict[str, dict[Labels, list[HistogramData]]] = {}
    for source in sources:
        for fam in source:
            if fam.name not in merged:
                merged[fam.name] = Family(fam.name, fam.kind, fam.help, scale=fam.scale)
                values[fam.name] = {}
                histograms[fam.name] = {}
            by_labels = values[fam.name]
            for labels, value in fam.values:
                by_labels[labels] = by_labels.get(labels, 0.0) + value
            parts = histograms[fam.name]
            for labels, data in fam.histograms:
                parts.setdefault(labels, []).append(data)
    out = []
    for name, fam in merged.items():
        fam.values = list(values[name].items())
        fam.histograms = [
            (labels, data[0] if len(data) == 1 else merge_histograms(data))
            for labels, data in histograms[name].items()
        ]
        out.append(fam)
    return out
