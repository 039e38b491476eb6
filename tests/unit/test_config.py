"""Configuration: keys, nesting, precedence and value formats of the real restate-server."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest

from restate_server.config import Config, ConfigError, dump_config, load_config
from restate_server.config.sources import env_key_path
from restate_server.config.values import (
    format_byte_size,
    normalize_advertised_address,
    parse_bind_address,
    parse_byte_size,
)

MIB = 1024 * 1024

# Keys the real restate-server 1.7.12 reads (from its --dump-config output and, for the
# optional ones it leaves out of the dump, from crates/types/src/config/*.rs).
REAL_KEYS = {
    "base-dir", "node-name", "cluster-name", "default-num-partitions", "log-filter",
    "log-format", "bind-ip", "use-random-ports", "advertised-host",
    "default-journal-retention", "default-idempotency-retention",
    "default-workflow-completion-retention", "experimental-enable-protocol-v7",
    "default-retry-policy.initial-interval", "default-retry-policy.exponentiation-factor",
    "default-retry-policy.max-attempts", "default-retry-policy.on-max-attempts",
    "default-retry-policy.max-interval", "worker.cleanup-interval",
    "worker.invoker.inactivity-timeout", "worker.invoker.abort-timeout",
    "worker.invoker.message-size-warning", "worker.invoker.message-size-limit",
    "worker.invoker.concurrent-invocations-limit", "networking.message-size-limit",
    "log-server.rocksdb-disable-wal-fsync", "bind-address", "disable-prometheus",
    "shutdown-timeout", "tracing-endpoint", "tracing-services-endpoint", "tracing-filter",
    "log-disable-ansi-codes",
    "worker.invoker.request-identity-private-key-pem-file",
    "worker.invoker.request-identity-expiration",
    *(
        f"{section}.{key}"
        for section in ("ingress", "admin")
        for key in (
            "bind-address", "bind-ip", "bind-port", "use-random-ports", "advertised-host",
            "advertised-address",
        )
    ),
    "ingress.advertised-ingress-endpoint", "admin.advertised-admin-endpoint",
}  # fmt: skip


def load(env: dict[str, str] | None = None, **overrides: object) -> Config:
    return load_config(None, env or {}, overrides)


def write_toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "restate.toml"
    path.write_text(text)
    return str(path)


def flat_keys(table: dict[str, object], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in table.items():
        if isinstance(value, dict):
            keys |= flat_keys(value, f"{prefix}{key}.")
        else:
            keys.add(prefix + key)
    return keys


# -- defaults ------------------------------------------------------------------------


def test_defaults_match_the_real_server() -> None:
    config = load()
    assert config.base_dir == "./restate-data"
    assert config.node_name is None
    assert config.cluster_name == "localcluster"
    assert config.log_filter == "warn,restate=info"
    assert config.log_format == "pretty"
    assert config.default_num_partitions == config.bootstrap_num_partitions == 24
    policy = config.default_retry_policy
    assert (policy.initial_interval_ms, policy.exponentiation_factor) == (500, 2.0)
    assert (policy.max_attempts, policy.max_interval_ms, policy.on_max_attempts) == (
        70,
        60_000,
        "pause",
    )
    day = 86_400_000
    assert config.default_journal_retention_ms == day
    assert config.default_idempotency_retention_ms == day
    assert config.default_workflow_completion_retention_ms == day
    assert config.worker.cleanup_interval_ms == 3_600_000
    invoker = config.worker.invoker
    assert (invoker.inactivity_timeout_ms, invoker.abort_timeout_ms) == (60_000, 600_000)
    assert (invoker.message_size_warning, invoker.message_size_limit) == (10 * MIB, 32 * MIB)
    assert invoker.concurrent_invocations_limit == 1000
    assert config.ingress.bind_address == "0.0.0.0:8080"
    assert config.ingress.bind_host_port() == ("0.0.0.0", 8080)
    assert config.admin.bind_address == "0.0.0.0:9070"
    assert config.ingress.advertised_ingress_endpoint is None
    assert config.admin.advertised_admin_endpoint is None
    assert config.experimental_enable_protocol_v7 is False
    assert config.storage.sync_writes is True


def test_node_address_metrics_shutdown_and_tracing_defaults() -> None:
    config = load()
    assert config.bind_address == "0.0.0.0:5122"
    assert config.node_bind_host_port() == ("0.0.0.0", 5122)
    assert config.disable_prometheus is False
    assert config.shutdown_timeout_ms == 60_000
    assert config.tracing_endpoint is None
    assert config.worker.invoker.request_identity_private_key_pem_file is None
    assert config.worker.invoker.request_identity_expiration_ms == 60_000


def test_node_address_follows_bind_ip_and_random_ports() -> None:
    assert load({"RESTATE_BIND_ADDRESS": "127.0.0.1:15122"}).bind_address == "127.0.0.1:15122"
    assert load({"RESTATE_BIND_IP": "127.0.0.1"}).bind_address == "127.0.0.1:5122"
    assert load({"RESTATE_USE_RANDOM_PORTS": "true"}).node_bind_host_port()[1] == 0


def test_request_identity_key_at_the_deprecated_top_level_moves_to_the_invoker() -> None:
    top = load({"RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": "/keys/a.pem"})
    assert top.worker.invoker.request_identity_private_key_pem_file == "/keys/a.pem"
    assert top.request_identity_private_key_pem_file is None
    both = load(
        {
            "RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": "/keys/a.pem",
            "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": "/keys/b.pem",
        }
    )
    assert both.worker.invoker.request_identity_private_key_pem_file == "/keys/b.pem"


def test_request_identity_expiration_is_at_least_a_second() -> None:
    config = load({"RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_EXPIRATION": "10ms"})
    assert config.worker.invoker.request_identity_expiration_ms == 1000


def test_loaded_defaults_equal_a_directly_built_config() -> None:
    assert load() == Config()


# -- sources ---------------------------------------------------------------------------


def test_toml_file(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        """
        node-name = "n1"
        default-num-partitions = 4
        default-journal-retention = "0s"
        experimental-enable-protocol-v7 = true

        [default-retry-policy]
        initial-interval = "100ms"
        exponentiation-factor = 3
        max-attempts = "unlimited"
        on-max-attempts = "kill"

        [worker]
        cleanup-interval = "10m"

        [worker.invoker]
        inactivity-timeout = "PT5S"
        abort-timeout = "1m 30s"

        [ingress]
        bind-address = "127.0.0.1:18080"

        [admin]
        bind-address = "[::1]:19070"
        """,
    )
    config = load_config(path, {}, {})
    assert config.node_name == "n1"
    assert config.default_num_partitions == 4
    assert config.default_journal_retention_ms == 0
    assert config.experimental_enable_protocol_v7 is True
    policy = config.default_retry_policy
    assert policy.initial_interval_ms == 100
    assert policy.exponentiation_factor == 3.0
    assert policy.max_attempts is None
    assert policy.on_max_attempts == "kill"
    assert config.worker.cleanup_interval_ms == 600_000
    assert config.worker.invoker.inactivity_timeout_ms == 5_000
    assert config.worker.invoker.abort_timeout_ms == 90_000
    assert config.ingress.bind_host_port() == ("127.0.0.1", 18080)
    assert config.admin.bind_address == "[::1]:19070"
    assert config.admin.bind_host_port() == ("::1", 19070)


def test_config_file_from_restate_config_env(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'cluster-name = "from-file"\n')
    assert load({"RESTATE_CONFIG": path}).cluster_name == "from-file"


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("RESTATE_BASE_DIR", ("base-dir",)),
        ("RESTATE_WORKER__INVOKER__ABORT_TIMEOUT", ("worker", "invoker", "abort-timeout")),
        ("RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS", ("default-retry-policy", "max-attempts")),
        ("restate_node_name", ("node-name",)),
        ("RESTATE_", None),
        ("RESTATE_WORKER____X", None),
        ("OTHER_NODE_NAME", None),
    ],
)
def test_env_key_mapping(name: str, path: tuple[str, ...] | None) -> None:
    assert env_key_path(name) == path


def test_environment_variables() -> None:
    config = load(
        {
            "RESTATE_BASE_DIR": "/data",
            "RESTATE_NODE_NAME": "123",  # text, so a number is fine for a string key
            "RESTATE_DEFAULT_NUM_PARTITIONS": "8",
            "RESTATE_INGRESS__BIND_ADDRESS": "127.0.0.1:18080",
            "RESTATE_ADMIN__BIND_ADDRESS": "127.0.0.1:19070",
            "RESTATE_DEFAULT_RETRY_POLICY__EXPONENTIATION_FACTOR": "1.5",
            "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS": "3",
            "RESTATE_DEFAULT_IDEMPOTENCY_RETENTION": "2h",
            "RESTATE_WORKER__INVOKER__ABORT_TIMEOUT": "30s",
            "RESTATE_WORKER__INVOKER__CONCURRENT_INVOCATIONS_LIMIT": "50",
            "RESTATE_EXPERIMENTAL_ENABLE_PROTOCOL_V7": "true",
            "RESTATE_LOG_FILTER": "info",
            "RESTATE_LOG_FORMAT": "json",
        }
    )
    assert config.base_dir == "/data"
    assert config.node_name == "123"
    assert config.default_num_partitions == 8
    assert config.ingress.bind_address == "127.0.0.1:18080"
    assert config.admin.bind_address == "127.0.0.1:19070"
    assert config.default_retry_policy.exponentiation_factor == 1.5
    assert config.default_retry_policy.max_attempts == 3
    assert config.default_idempotency_retention_ms == 7_200_000
    assert config.worker.invoker.abort_timeout_ms == 30_000
    assert config.worker.invoker.concurrent_invocations_limit == 50
    assert config.experimental_enable_protocol_v7 is True
    assert (config.log_filter, config.log_format) == ("info", "json")


def test_inactivity_timeout_zero_from_env() -> None:
    config = load({"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "0s"})
    assert config.worker.invoker.inactivity_timeout_ms == 0


def test_precedence_defaults_file_env_cli(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        'node-name = "file"\ncluster-name = "file"\nbase-dir = "file"\n'
        '[worker.invoker]\ninactivity-timeout = "5s"\nabort-timeout = "5s"\n',
    )
    env = {
        "RESTATE_CLUSTER_NAME": "env",
        "RESTATE_BASE_DIR": "env",
        "RESTATE_WORKER__INVOKER__ABORT_TIMEOUT": "7s",
    }
    config = load_config(path, env, {"base-dir": "cli"})
    assert config.node_name == "file"
    assert config.cluster_name == "env"
    assert config.base_dir == "cli"
    # Merging is per key: the env value does not drop the file's sibling key.
    assert config.worker.invoker.inactivity_timeout_ms == 5_000
    assert config.worker.invoker.abort_timeout_ms == 7_000


def test_rust_log_overrides_log_filter_env_but_not_the_flag() -> None:
    env = {"RESTATE_LOG_FILTER": "info", "RUST_LOG": "debug"}
    assert load(env).log_filter == "debug"
    assert load(env, **{"log-filter": "trace"}).log_filter == "trace"


def test_overrides_accept_dotted_and_nested_keys_and_skip_none() -> None:
    config = load_config(
        None,
        {"RESTATE_NODE_NAME": "env"},
        {
            "worker.invoker.inactivity-timeout": "3s",
            "default-retry-policy": {"max-attempts": 2},
            "node-name": None,
        },
    )
    assert config.worker.invoker.inactivity_timeout_ms == 3_000
    assert config.default_retry_policy.max_attempts == 2
    assert config.node_name == "env"


def test_unknown_keys_are_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_toml(tmp_path, 'roles = ["worker"]\n[worker.invoker]\nfoo-bar = 1\n')
    with caplog.at_level(logging.WARNING, logger="restate_server.config"):
        config = load_config(path, {"RESTATE_ADMIN_URL": "http://x", "RESTATE_CONFIG": path}, {})
    assert config == Config()
    message = caplog.text
    assert "roles" in message
    assert "worker.invoker.foo-bar" in message
    assert "RESTATE_ADMIN_URL" in message
    assert "RESTATE_CONFIG" not in message  # names the file, not a key


def test_bootstrap_num_partitions_is_not_a_config_key(caplog: pytest.LogCaptureFixture) -> None:
    # The real server accepts it only as a CLI flag alias; as a key it is ignored.
    with caplog.at_level(logging.WARNING, logger="restate_server.config"):
        assert load({"RESTATE_BOOTSTRAP_NUM_PARTITIONS": "4"}).default_num_partitions == 24
    assert "bootstrap-num-partitions" in caplog.text


# -- value formats --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [("0s", 0), ("1m", 60_000), ("PT10S", 10_000), ("1m 30s", 90_000), ("1d", 86_400_000),
     ("500ms", 500), ("P1DT2H", 93_600_000), ("1h30m", 5_400_000), (" 5s ", 5_000)],
)  # fmt: skip
def test_durations(text: str, ms: int) -> None:
    config = load({"RESTATE_WORKER__INVOKER__ABORT_TIMEOUT": text})
    assert config.worker.invoker.abort_timeout_ms == ms


def test_durations_from_toml(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[worker.invoker]\ninactivity-timeout = "PT10S"\n')
    assert load_config(path, {}, {}).worker.invoker.inactivity_timeout_ms == 10_000


@pytest.mark.parametrize(
    ("text", "size"),
    [("10 MiB", 10 * MIB), ("10MB", 10_000_000), ("10 kb", 10_000), ("10Ki", 10_240),
     ("1.5 GiB", 1536 * MIB), ("2048", 2048), ("7 B", 7)],
)  # fmt: skip
def test_byte_sizes(text: str, size: int) -> None:
    assert parse_byte_size(text) == size
    config = load({"RESTATE_WORKER__INVOKER__MESSAGE_SIZE_WARNING": text})
    assert config.worker.invoker.message_size_warning == size


def test_byte_size_formatting() -> None:
    assert format_byte_size(32 * MIB) == "32.0 MiB"
    assert format_byte_size(1000) == "1000 B"
    assert format_byte_size(10_000_000) == "9.5 MiB"
    assert format_byte_size(1536 * MIB) == "1.5 GiB"


def test_byte_size_integer_in_toml(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[worker.invoker]\nmessage-size-warning = 2048\n")
    assert load_config(path, {}, {}).worker.invoker.message_size_warning == 2048


def test_invoker_message_size_limit_follows_and_is_clamped_by_networking() -> None:
    follows = load({"RESTATE_NETWORKING__MESSAGE_SIZE_LIMIT": "1 MiB"})
    assert follows.worker.invoker.message_size_limit == MIB
    clamped = load(
        {
            "RESTATE_NETWORKING__MESSAGE_SIZE_LIMIT": "1 MiB",
            "RESTATE_WORKER__INVOKER__MESSAGE_SIZE_LIMIT": "4 MiB",
        }
    )
    assert clamped.worker.invoker.message_size_limit == MIB
    smaller = load({"RESTATE_WORKER__INVOKER__MESSAGE_SIZE_LIMIT": "4 MiB"})
    assert smaller.worker.invoker.message_size_limit == 4 * MIB


@pytest.mark.parametrize("text", ["unlimited", "infinite"])
def test_max_attempts_unlimited(text: str) -> None:
    config = load({"RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS": text})
    assert config.default_retry_policy.max_attempts is None
    assert 'max-attempts = "unlimited"' in dump_config(config)


def test_fsync_switch_reuses_the_real_log_server_key() -> None:
    config = load({"RESTATE_LOG_SERVER__ROCKSDB_DISABLE_WAL_FSYNC": "true"})
    assert config.storage.sync_writes is False


# -- addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.0.0.0:8080", ("0.0.0.0", 8080)), ("127.0.0.1", ("127.0.0.1", 8080)),
     ("[::]:9000", ("::", 9000)), ("::1", ("::1", 8080)), ("10.0.0.1:0", ("10.0.0.1", 0))],
)  # fmt: skip
def test_parse_bind_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_bind_address(text, 8080) == expected


@pytest.mark.parametrize("text", ["localhost:8080", "1.2.3.4:99999", "1.2.3.4:", "[::1]", ""])
def test_parse_bind_address_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bind_address(text, 8080)


def test_bind_ip_port_and_random_ports() -> None:
    config = load({"RESTATE_INGRESS__BIND_IP": "127.0.0.1", "RESTATE_ADMIN__BIND_PORT": "9999"})
    assert config.ingress.bind_address == "127.0.0.1:8080"
    assert config.admin.bind_address == "0.0.0.0:9999"
    # Top-level bind-ip and use-random-ports are inherited by both listeners.
    inherited = load({"RESTATE_BIND_IP": "127.0.0.1", "RESTATE_USE_RANDOM_PORTS": "true"})
    assert inherited.ingress.bind_address == "127.0.0.1:0"
    assert inherited.admin.bind_address == "127.0.0.1:0"
    # bind-address wins over the parts.
    explicit = load(
        {"RESTATE_BIND_IP": "127.0.0.1", "RESTATE_INGRESS__BIND_ADDRESS": "0.0.0.0:18080"}
    )
    assert explicit.ingress.bind_address == "0.0.0.0:18080"


@pytest.mark.parametrize(
    ("text", "url"),
    [("myhost", "http://myhost:8080/"), ("http://myhost", "http://myhost/"),
     ("https://h:8443/base/", "https://h:8443/base/"), (":9000", "http://127.0.0.1:9000/"),
     ("unix:/data/ingress.sock", "unix:/data/ingress.sock")],
)  # fmt: skip
def test_advertised_address(text: str, url: str) -> None:
    assert normalize_advertised_address(text, 8080) == url


def test_advertised_endpoints() -> None:
    config = load(
        {
            "RESTATE_INGRESS__ADVERTISED_ADDRESS": "http://public:8080",
            "RESTATE_ADMIN__ADVERTISED_ADMIN_ENDPOINT": "admin.example",
        }
    )
    assert config.ingress.advertised_ingress_endpoint == "http://public:8080/"
    assert config.admin.advertised_admin_endpoint == "http://admin.example:9070/"
    by_host = load({"RESTATE_ADVERTISED_HOST": "node1", "RESTATE_INGRESS__BIND_PORT": "18080"})
    assert by_host.ingress.advertised_ingress_endpoint == "http://node1:18080/"
    assert by_host.admin.advertised_admin_endpoint == "http://node1:9070/"


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORKER__INVOKER__INACTIVITY_TIMEOUT", "xyz"),
        ("WORKER__INVOKER__INACTIVITY_TIMEOUT", "1000"),  # no unit
        ("DEFAULT_NUM_PARTITIONS", "abc"),
        ("DEFAULT_NUM_PARTITIONS", "0"),
        ("DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS", "stop"),
        ("DEFAULT_RETRY_POLICY__MAX_ATTEMPTS", "0"),
        ("DEFAULT_RETRY_POLICY__INITIAL_INTERVAL", "0s"),
        ("DEFAULT_RETRY_POLICY__EXPONENTIATION_FACTOR", "x"),
        ("WORKER__CLEANUP_INTERVAL", "0s"),
        ("WORKER__INVOKER__CONCURRENT_INVOCATIONS_LIMIT", "0"),
        ("WORKER__INVOKER__MESSAGE_SIZE_WARNING", "lots"),
        ("EXPERIMENTAL_ENABLE_PROTOCOL_V7", "yes"),
        ("INGRESS__BIND_ADDRESS", "localhost:8080"),
        ("ADMIN__BIND_IP", "nope"),
        ("INGRESS__ADVERTISED_ADDRESS", "ftp://x"),
        ("LOG_FORMAT", "xml"),
        ("WORKER", "5"),  # a table
    ],
)
def test_bad_values_name_the_key_and_the_variable(name: str, value: str) -> None:
    variable = f"RESTATE_{name}"
    key = ".".join(env_key_path(variable) or ())
    with pytest.raises(ConfigError) as error:
        load({variable: value})
    message = str(error.value)
    assert f"'{key}'" in message
    assert variable in message


def test_toml_values_are_typed(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "node-name = 123\n")
    with pytest.raises(ConfigError, match=r"'node-name'.*expected a string.*restate\.toml"):
        load_config(path, {}, {})
    path = write_toml(tmp_path, "[worker.invoker]\ninactivity-timeout = 1000\n")
    with pytest.raises(ConfigError, match=r"worker\.invoker\.inactivity-timeout"):
        load_config(path, {}, {})
    path = write_toml(tmp_path, '[default-retry-policy]\nmax-attempts = "5"\n')
    with pytest.raises(ConfigError, match=r"default-retry-policy\.max-attempts"):
        load_config(path, {}, {})


def test_bad_override_names_the_command_line() -> None:
    with pytest.raises(ConfigError, match=r"default-num-partitions.*command line"):
        load(**{"default-num-partitions": "many"})


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.toml"), {}, {})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write_toml(tmp_path, "x = \n"), {}, {})


# -- dump -----------------------------------------------------------------------------


def test_dump_is_toml_with_real_keys_and_formats() -> None:
    text = dump_config(load())
    data = tomllib.loads(text)
    # every key is the real server's, except this server's own ones under [py]
    assert {key for key in flat_keys(data) if not key.startswith("py.")} <= REAL_KEYS
    assert data["py"]["query"]["memory-limit"] == "128.0 MiB"
    assert data["worker"]["invoker"]["inactivity-timeout"] == "1m"
    assert data["worker"]["invoker"]["abort-timeout"] == "10m"
    assert data["worker"]["invoker"]["message-size-limit"] == "32.0 MiB"
    assert data["default-retry-policy"]["initial-interval"] == "500ms"
    assert data["default-journal-retention"] == "1d"
    assert data["ingress"]["bind-address"] == "0.0.0.0:8080"
    assert "node-name" not in data  # unset, left out as by the real server


def test_dump_round_trips(tmp_path: Path) -> None:
    config = load(
        {
            "RESTATE_NODE_NAME": 'n"ode\\1',
            "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "0s",
            "RESTATE_WORKER__INVOKER__ABORT_TIMEOUT": "1m 30s",
            "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS": "unlimited",
            "RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS": "kill",
            "RESTATE_ADMIN__BIND_ADDRESS": "[::1]:0",
            "RESTATE_ADVERTISED_HOST": "node1",
            "RESTATE_LOG_SERVER__ROCKSDB_DISABLE_WAL_FSYNC": "true",
        }
    )
    path = write_toml(tmp_path, dump_config(config))
    assert load_config(path, {}, {}) == config
