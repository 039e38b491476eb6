"""The Prometheus text format, through ``prometheus_client``: a collector over snapshots.

Imported at the first scrape, not at startup (``prometheus_client`` takes ~50 ms to
import). The collector turns merged :class:`Family` snapshots into
``prometheus_client`` metric families, adding the node's global labels
(``cluster_name``, ``node_name``) to every sample as the real server does, and
summaries' quantiles (``0.5``, ``0.9``, ``0.99``, ``1``), ``_sum`` and ``_count``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric

from restate_server.metrics.families import Family, Labels
from restate_server.metrics.histogram import QUANTILES

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class FamilyCollector:
    """A ``prometheus_client`` collector: reads the snapshots only when collected."""

    def __init__(self, families: Callable[[], list[Family]], labels: Mapping[str, str]) -> None:
        self._families = families
        self._labels = dict(labels)

    def collect(self) -> Iterator[Metric]:
        for fam in self._families():
            yield to_metric(fam, self._labels)


def to_metric(fam: Family, base: Mapping[str, str]) -> Metric:
    metric = Metric(fam.name, fam.help, fam.kind)
    if fam.kind == "summary":
        for labels, data in fam.histograms:
            if data.total_count == 0:
                continue
            common = _labels(base, labels)
            for label, q in QUANTILES:
                value = data.quantile(q) * fam.scale
                metric.add_sample(fam.name, {**common, "quantile": label}, value)
            metric.add_sample(f"{fam.name}_sum", common, data.total_sum * fam.scale)
            metric.add_sample(f"{fam.name}_count", common, data.total_count)
        return metric
    sample_name = f"{fam.name}_total" if fam.kind == "counter" else fam.name
    for labels, value in fam.values:
        metric.add_sample(sample_name, _labels(base, labels), value * fam.scale)
    return metric


def _labels(base: Mapping[str, str], labels: Labels) -> dict[str, str]:
    out = dict(base)
    out.update(labels)
    return out


def render(families: Callable[[], list[Family]], labels: Mapping[str, str]) -> bytes:
    return generate_latest(FamilyCollector(families, labels))
