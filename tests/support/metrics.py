"""A server's ``/metrics`` (its node address), read with the Prometheus text parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.http import get


def scrape_samples(node_url: str) -> list[Sample]:
    """Every sample of one scrape (counters under their ``_total`` names)."""
    response = get(node_url + "/metrics")
    assert response.status == 200, response.text()
    return [s for fam in text_string_to_metric_families(response.text()) for s in fam.samples]
