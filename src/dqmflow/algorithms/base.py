"""The algorithm contract, the name -> class registry and validated hyper-parameters.

Every algorithm is a class with a frozen dataclass ``Params`` of hyper-parameters and the methods
``fit`` (learn from the runs of a :class:`~dqmflow.preprocess.HistogramSet` whose split is
``train``), ``score`` (one anomaly score per run, larger = more anomalous), ``reconstruct`` (what
the model expects the histogram to look like, unit area; ``None`` if it has no such notion),
``save`` and ``load``. Hyper-parameters come only from an algorithm config file
(``config/algorithms/*.yaml``)::

    algorithm: pca          # registry name
    tag: pca_2              # optional, defaults to the file name; names the outputs
    description: PCA with two components
    params:
      n_components: 2

:func:`load_config` checks names, types, choices and ranges against ``Params`` and fills
defaults, so a typo fails before any job runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import yaml

from dqmflow.preprocess import HistogramSet

__all__ = [
    "REGISTRY",
    "Algorithm",
    "AlgorithmConfig",
    "ConfigError",
    "ReconstructionAlgorithm",
    "get_algorithm",
    "load_config",
    "param",
    "register",
]

REGISTRY: dict[str, type[Algorithm]] = {}
TAG_PATTERN = r"[A-Za-z0-9_-]+"


class ConfigError(ValueError):
    """An algorithm config file is invalid."""


def param(default: Any, help: str, minimum: float | None = None, maximum: float | None = None) -> Any:
    """A documented hyper-parameter field with an optional allowed range."""
    return dataclasses.field(default=default, metadata={"help": help, "minimum": minimum, "maximum": maximum})


def register(name: str):
    """Class decorator: make an algorithm available under ``name`` in config files."""

    def wrap(cls: type[Algorithm]) -> type[Algorithm]:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise RuntimeError(f"algorithm name {name!r} registered twice")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap


def _discover() -> None:
    import dqmflow.algorithms as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_") and module.name != "base":
            importlib.import_module(f"{package.__name__}.{module.name}")


def get_algorithm(name: str) -> type[Algorithm]:
    """The class registered as ``name``."""
    if not REGISTRY:
        _discover()
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown algorithm {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


class Algorithm(ABC):
    """Base class of all algorithms (see the module docstring for the contract)."""

    name: ClassVar[str] = ""
    #: What :meth:`reconstruct` returns, in words (for plot legends).
    reconstruction_label: ClassVar[str] = "reconstruction"

    @dataclasses.dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: Any) -> None:
        if not isinstance(params, self.Params):
            raise TypeError(f"{type(self).__name__} needs {self.Params.__qualname__}, got {type(params).__name__}")
        self.params = params

    @abstractmethod
    def fit(self, data: HistogramSet) -> Self:
        """Learn from the runs of ``data`` whose split is ``train``."""

    @abstractmethod
    def score(self, data: HistogramSet) -> np.ndarray:
        """One score per run of ``data``; larger means more anomalous."""

    def reconstruct(self, data: HistogramSet) -> np.ndarray | None:
        """Expected histograms (unit area, same shape as ``data.counts``), or ``None``."""
        return None

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the fitted model into ``directory`` (which exists)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, params: Any) -> Self:
        """Read a model written by :meth:`save`."""


LOSSES = ("sse", "mse", "mse_top_n", "chi2")


def reconstruction_loss(
    x: np.ndarray, reco: np.ndarray, kind: str, top_n: int, counts: np.ndarray | None = None
) -> np.ndarray:
    """Per-run distance between unit-area histograms ``x`` and reconstructions (runs first).

    ``sse``: sum of squared residuals (AutoDQM_ML); ``mse``: their mean; ``mse_top_n``: mean of the
    ``top_n`` largest squared residuals (CMS ML4DQM), which a local defect cannot hide in;
    ``chi2``: mean Poisson pull squared, (d - N r)^2 / max(N r, 1) with d the raw ``counts`` and N
    their total, which does not grow for runs with fewer entries the way ``sse`` does.
    """
    if kind == "chi2":
        if counts is None:
            raise ValueError("the chi2 loss needs the raw counts")
        d = counts.reshape(len(counts), -1)
        expected = np.clip(reco.reshape(len(reco), -1), 0.0, None) * d.sum(axis=1, keepdims=True)
        return ((d - expected) ** 2 / np.maximum(expected, 1.0)).mean(axis=1)
    sq = ((x - reco) ** 2).reshape(len(x), -1)
    if kind == "sse":
        return sq.sum(axis=1)
    if kind == "mse":
        return sq.mean(axis=1)
    if kind == "mse_top_n":
        n = min(top_n, sq.shape[1])
        return np.sort(sq, axis=1)[:, -n:].mean(axis=1)
    raise ValueError(f"unknown loss {kind!r}; choose from {LOSSES}")


class ReconstructionAlgorithm(Algorithm):
    """An algorithm whose score is a loss between a histogram and its reconstruction."""

    def score(self, data: HistogramSet) -> np.ndarray:
        reco = self.reconstruct(data)
        assert reco is not None
        return reconstruction_loss(data.normalised, reco, self.params.loss, self.params.top_n, data.counts)


@dataclasses.dataclass(frozen=True)
class AlgorithmConfig:
    """A validated algorithm config file."""

    tag: str
    algorithm: str
    params: Any
    description: str = ""
    path: str = ""

    @property
    def cls(self) -> type[Algorithm]:
        return get_algorithm(self.algorithm)

    def build(self) -> Algorithm:
        return self.cls(self.params)

    def as_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "algorithm": self.algorithm, "params": dataclasses.asdict(self.params)}


def _check_value(name: str, value: Any, hint: Any, meta: Mapping[str, Any], where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{where}: {name} must be one of {list(typing.get_args(hint))}, not {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(o for o in options if o is not type(None))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be true or false, not {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {name} must be an integer, not {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: {name} must be a number, not {value!r}")
        value = float(value)
    elif hint is str and not isinstance(value, str):
        raise ConfigError(f"{where}: {name} must be a string, not {value!r}")
    lo, hi = meta.get("minimum"), meta.get("maximum")
    if lo is not None and value < lo:
        raise ConfigError(f"{where}: {name} must be >= {lo}, not {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{where}: {name} must be <= {hi}, not {value!r}")
    return value


def build_params(cls: type[Algorithm], raw: Mapping[str, Any] | None, where: str) -> Any:
    """Validate ``raw`` against ``cls.Params`` and return a ``Params`` instance."""
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {unknown} for {cls.name}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(cls.Params)
    checked = {
        name: _check_value(name, raw[name], hints[name], field.metadata, where)
        for name, field in fields.items()
        if name in raw
    }
    return cls.Params(**checked)


def load_config(path: str | Path) -> AlgorithmConfig:
    """Read and validate one algorithm config file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"algorithm config {path} does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"algorithm config {path} is not valid YAML: {err}") from None
    where = str(path)
    if not isinstance(raw, dict) or "algorithm" not in raw:
        raise ConfigError(f"{where}: needs an 'algorithm' key naming a registered algorithm")
    unknown = sorted(set(raw) - {"algorithm", "tag", "description", "params"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: algorithm, tag, description, params")
    tag = str(raw.get("tag") or path.stem)
    if not re.fullmatch(TAG_PATTERN, tag):
        raise ConfigError(f"{where}: tag {tag!r} may contain only letters, digits, '_' and '-'")
    cls = get_algorithm(str(raw["algorithm"]))
    if raw.get("params") is not None and not isinstance(raw["params"], dict):
        raise ConfigError(f"{where}: params must be a mapping")
    params = build_params(cls, raw.get("params"), where)
    return AlgorithmConfig(tag, cls.name, params, str(raw.get("description", "")), str(path))


def load_configs(paths: list[str]) -> dict[str, AlgorithmConfig]:
    """Load several config files; tags must be unique."""
    configs: dict[str, AlgorithmConfig] = {}
    for p in paths:
        cfg = load_config(p)
        if cfg.tag in configs:
            raise ConfigError(f"tag {cfg.tag!r} is used by both {configs[cfg.tag].path} and {p}")
        configs[cfg.tag] = cfg
    return configs
