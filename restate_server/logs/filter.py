"""``log-filter`` (``RESTATE_LOG_FILTER``, ``RUST_LOG``): the real server's directives.

A filter is a comma-separated list of ``level`` (the default for everything) and
``target=level`` directives, e.g. ``warn,restate=info`` or
``info,restate_server::invoker=debug``. As in the real server a target matches by
prefix, so ``restate`` covers our ``restate_server`` and ``restate_sdk`` loggers; ``::``
and ``.`` both separate path segments, and the real server's crate names stand for the
package of ours that does the same work (``restate_invoker_impl=debug`` turns on our
invoker's debug lines). Span filters (``target[span]=level``) have no counterpart here
and are reported as not understood. Everything is applied as Python logger levels, so a
line below its level costs one integer comparison.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}
OUR_PACKAGES = ("restate_server", "restate_sdk")
# Libraries whose debug lines print protocol bytes and header values: quiet unless a
# directive names them, so a plain ``debug`` filter cannot leak user data through them.
CHATTY_LIBRARIES = ("hpack", "h2")
# the real server's crates -> our package doing that work
CRATE_ALIASES = {
    "restate_invoker_impl": "restate_server.invoker",
    "restate_invoker_api": "restate_server.invoker",
    "restate_ingress_http": "restate_server.ingress",
    "restate_admin": "restate_server.admin",
    "restate_worker": "restate_server.partition",
    "restate_partition_store": "restate_server.storage",
    "restate_rocksdb": "restate_server.storage",
    "restate_service_protocol": "restate_server.protocol",
    "restate_service_client": "restate_server.http2",
    "restate_types": "restate_server.config",
    "restate_server": "restate_server",
}


@dataclass
class LogFilter:
    default: int = logging.WARNING
    # logger name -> level, from the directives with a target
    levels: dict[str, int] = field(default_factory=dict)
    not_understood: list[str] = field(default_factory=list)

    def apply(self) -> None:
        logging.getLogger().setLevel(self.default)
        for name in CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(max(self.default, logging.WARNING))
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


def _loggers_for(target: str) -> list[str]:
    name = target.replace("::", ".")
    if name in CRATE_ALIASES:
        return [CRATE_ALIASES[name]]
    ours = [p for p in OUR_PACKAGES if p.startswith(name)]
    if ours:  # a prefix of our package names ("restate", "restate_s")
        return ours
    return [name]


def parse_log_filter(text: str) -> LogFilter:
    result = LogFilter()
    for directive in (d.strip() for d in text.split(",")):
        if not directive:
            continue
        target, sep, level_text = directive.rpartition("=")
        level = LEVELS.get(level_text.strip().lower())
        if level is None or "[" in target or "{" in target:
            result.not_understood.append(directive)
            continue
        if not sep:
            result.default = level
            continue
        for name in _loggers_for(target.strip()):
            result.levels[name] = level
    # a directive naming only its target ("restate_server") means "trace" in the real
    # server; here it was not a level, so it is in not_understood
    return result
