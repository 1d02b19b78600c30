"""Anomaly-detection algorithms: one module each, registered by name (see :mod:`.base`)."""

from __future__ import annotations

import functools

from dqmflow.algorithms.base import (
    REGISTRY,
    Algorithm,
    AlgorithmConfig,
    ConfigError,
    get_algorithm,
    load_config,
    load_configs,
)


@functools.cache
def trains_network(config_file: str) -> bool:
    """Does the algorithm of this config file train a neural network? For batch profiles, which
    size such jobs apart (``profiles/lxplus``, which asks up to four times per job: read once per
    file and process); reads the YAML, never imports TensorFlow."""
    return bool(load_config(config_file).cls.trains_network)


__all__ = [
    "REGISTRY",
    "Algorithm",
    "AlgorithmConfig",
    "ConfigError",
    "get_algorithm",
    "load_config",
    "load_configs",
    "trains_network",
]
