"""Server configuration, read the way the real restate-server reads its own.

Sources, lowest precedence first: defaults, the TOML file (``--config-file`` /
``RESTATE_CONFIG``), ``RESTATE_*`` environment variables (``__`` nests, ``_`` is
``-``: ``RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT`` is
``worker.invoker.inactivity-timeout``), ``RUST_LOG`` for ``log-filter``, and finally
command-line flags. Keys shared with the real server keep its names and nesting.
"""

from restate_server.config.dump import dump_config
from restate_server.config.errors import ConfigError
from restate_server.config.loader import load_config
from restate_server.config.model import (
    AdminOptions,
    Config,
    IngressOptions,
    InvokerOptions,
    LogServerOptions,
    NetworkingOptions,
    RetryPolicyOptions,
    StorageSettings,
    WorkerOptions,
)
from restate_server.config.values import parse_bind_address

__all__ = [
    "AdminOptions",
    "Config",
    "ConfigError",
    "IngressOptions",
    "InvokerOptions",
    "LogServerOptions",
    "NetworkingOptions",
    "RetryPolicyOptions",
    "StorageSettings",
    "WorkerOptions",
    "dump_config",
    "load_config",
    "parse_bind_address",
]
