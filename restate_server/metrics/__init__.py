"""Prometheus metrics: cheap in-process counters, read only when ``/metrics`` is scraped.

Components record into plain objects of this package (ints, dicts keyed by label
tuples, log-scale histograms) from the event loop, without locks. A scrape asks every
source for a snapshot (:class:`~restate_server.metrics.families.Family` lists, plain
msgspec data that a worker process could send as well), merges them and renders the
text format through ``prometheus_client`` (``exposition``, imported at the first
scrape). Names and labels follow the real restate-server; see ``docs/metrics.md``.
"""
