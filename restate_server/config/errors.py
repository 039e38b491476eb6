"""The one error type configuration loading raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value, file or key is invalid; the message names the key path."""
