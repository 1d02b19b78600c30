"""Anomaly-detection algorithms: one module each, registered by name (see :mod:`.base`)."""

from __future__ import annotations

from dqmflow.algorithms.base import (
    REGISTRY,
    Algorithm,
    AlgorithmConfig,
    ConfigError,
    get_algorithm,
    load_config,
    load_configs,
)

__all__ = [
    "REGISTRY",
    "Algorithm",
    "AlgorithmConfig",
    "ConfigError",
    "get_algorithm",
    "load_config",
    "load_configs",
]
