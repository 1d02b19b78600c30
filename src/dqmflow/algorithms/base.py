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
    seeds: [0, 1, 2]        # optional, stochastic algorithms only: a seed ensemble

:func:`load_config` checks names, types, choices and ranges against ``Params`` and fills
defaults, so a typo fails before any job runs.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import inspect
import json
import pkgutil
import re
import textwrap
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import yaml

from dqmflow.algorithms.losses import reconstruction_loss
from dqmflow.preprocess import Batch, HistogramSet
from dqmflow.runtable import RunTable

__all__ = [
    "REGISTRY",
    "Algorithm",
    "AlgorithmConfig",
    "ConfigError",
    "MultiHistogramAlgorithm",
    "NotEnoughData",
    "PerHistogram",
    "ReconstructionAlgorithm",
    "ScoreBlock",
    "get_algorithm",
    "load_config",
    "param",
    "register",
]

REGISTRY: dict[str, type[Algorithm] | type[MultiHistogramAlgorithm]] = {}
TAG_PATTERN = r"[A-Za-z0-9_-]+"
_NOT_ALGORITHMS = {"base", "losses", "ensemble"}


class ConfigError(ValueError):
    """An algorithm config file is invalid."""


class NotEnoughData(ValueError):
    """A histogram has too few usable runs for the algorithm.

    The only error a model job turns into a "failed" model (recorded with this message, its runs
    scored NaN); any other exception stops the job, naming the histogram.
    """


def param(default: Any, help: str, minimum: float | None = None, maximum: float | None = None) -> Any:
    """A documented hyper-parameter field with an optional allowed range."""
    return dataclasses.field(default=default, metadata={"help": help, "minimum": minimum, "maximum": maximum})


AlgorithmClass = typing.TypeVar("AlgorithmClass", bound="type[Algorithm] | type[MultiHistogramAlgorithm]")


def register(name: str) -> typing.Callable[[AlgorithmClass], AlgorithmClass]:
    """Class decorator: make an algorithm available under ``name`` in config files."""

    def wrap(cls: AlgorithmClass) -> AlgorithmClass:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise RuntimeError(f"algorithm name {name!r} registered twice")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap


#: Algorithm modules that failed to import (module name -> error), named when a name is unknown.
_BROKEN: dict[str, str] = {}


def _discover(name: str) -> None:
    """Import the algorithm modules of this package until ``name`` is registered: first the
    modules whose source registers it (``@register("name")``), so that a job imports only the
    algorithm it runs (beta_binomial's scipy.special alone cost 0.15 s per job), then all others."""
    import dqmflow.algorithms as package

    modules = [m for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")]
    modules = [m for m in modules if m.name not in _NOT_ALGORITHMS]
    folder = Path(package.__path__[0])
    mark = f"@register({name!r})".replace("'", '"')

    def registers(module: pkgutil.ModuleInfo) -> bool:
        try:
            return mark in (folder / f"{module.name}.py").read_text(encoding="utf-8")
        except OSError:
            return False

    for module in sorted(modules, key=lambda m: not registers(m)):
        if module.name in _BROKEN:
            continue
        try:
            importlib.import_module(f"{package.__name__}.{module.name}")
        except Exception as err:  # a module being written must not hide every other algorithm
            if name and registers(module):
                err.add_note(f"while importing dqmflow.algorithms.{module.name}, which registers algorithm {name!r}")
                raise
            _BROKEN[module.name] = f"{type(err).__name__}: {err}"
        if name in REGISTRY:
            return


def get_algorithm(name: str) -> type[Algorithm] | type[MultiHistogramAlgorithm]:
    """The class registered as ``name``."""
    if name not in REGISTRY:  # importing one algorithm module registers only that one
        _discover(name)
    try:
        return REGISTRY[name]
    except KeyError:
        _discover("")  # every module, to name them all
        broken = "".join(f"; dqmflow.algorithms.{m} failed to import ({why})" for m, why in sorted(_BROKEN.items()))
        raise ConfigError(f"unknown algorithm {name!r}; known: {', '.join(sorted(REGISTRY))}{broken}") from None


class _Configured(ABC):
    """What both contracts share: a registry name, a plot label and validated ``Params``."""

    name: ClassVar[str] = ""
    #: What the reconstruction is, in words (for plot legends); a statistical test's is its reference.
    reconstruction_label: ClassVar[str] = "reconstruction"
    #: Trains a neural network (TensorFlow): batch profiles give its jobs more memory, time or a GPU.
    trains_network: ClassVar[bool] = False
    params: Any

    @dataclasses.dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: Any) -> None:
        expected = self._params_class()
        if not isinstance(params, expected):
            raise TypeError(f"{type(self).__name__} needs {expected.__qualname__}, got {type(params).__name__}")
        self.params = params

    def _params_class(self) -> type:
        return self.Params


class Algorithm(_Configured):
    """Base class of per-histogram algorithms (see the module docstring for the contract).

    The workflow trains them through :class:`PerHistogram`, which fits one independent model per
    histogram of a job's batch.
    """

    @abstractmethod
    def fit(self, data: HistogramSet) -> Self:
        """Learn from the runs of ``data`` whose split is ``train``."""

    @abstractmethod
    def score(self, data: HistogramSet) -> np.ndarray:
        """One score per run of ``data``; larger means more anomalous."""

    def reconstruct(self, data: HistogramSet) -> np.ndarray | None:
        """Expected histograms (unit area, same shape as ``data.counts``), or ``None``."""
        return None

    def latent(self, data: HistogramSet) -> np.ndarray | None:
        """Coordinates of every run in the model's latent space (runs x dimensions), or ``None``."""
        return None

    def bind(self, table: RunTable, column: str) -> str:
        """Called before scoring with the current run table; returns a digest of whatever else
        than a run's own data its score depends on (e.g. the reference runs), "" if nothing."""
        return ""

    def runs_needed(self, runs: np.ndarray, entries: np.ndarray) -> np.ndarray:
        """Other runs whose data scoring ``runs`` (with these entries) reads, e.g. references."""
        return np.zeros(0, dtype=np.int64)

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the fitted model into ``directory`` (which exists)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, params: Any) -> Self:
        """Read a model written by :meth:`save`."""


class ReconstructionAlgorithm(Algorithm):
    """An algorithm whose score is a loss between a histogram and its reconstruction."""

    def score(self, data: HistogramSet) -> np.ndarray:
        reco = self.reconstruct(data)
        if reco is None:
            raise RuntimeError(f"{type(self).__name__}.reconstruct returned nothing")
        return reconstruction_loss(data.normalised, reco, self.params.loss, self.params.top_n, data.counts)


@dataclasses.dataclass(frozen=True)
class ScoreBlock:
    """Scores of runs x histograms: ``score[i, j]`` is run ``i``'s score for ``columns[j]``.

    NaN where a run was not scored (histogram missing, model not trained). ``score_lo`` and
    ``score_hi``, when an algorithm gives them, bound the score (e.g. a band over seeds).
    """

    columns: list[str]
    score: np.ndarray
    score_lo: np.ndarray | None = None
    score_hi: np.ndarray | None = None
    seed_scores: np.ndarray | None = None
    """Scores per training seed (runs x columns x seeds) of a seed ensemble."""
    seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        """Refuse a block whose parts do not fit (an algorithm's bug, said where it happens)."""
        shape = np.shape(self.score)
        if len(shape) != 2 or shape[1] != len(self.columns):
            raise ValueError(f"ScoreBlock: score must be runs x {len(self.columns)} columns, got shape {shape}")
        if (self.score_lo is None) != (self.score_hi is None):
            raise ValueError("ScoreBlock: give both score_lo and score_hi (the band), or neither")
        for name in ("score_lo", "score_hi"):
            band = getattr(self, name)
            if band is not None and np.shape(band) != shape:
                raise ValueError(f"ScoreBlock: {name} must have the score's shape {shape}, got {np.shape(band)}")
        if (self.seed_scores is None) != (not self.seeds):
            raise ValueError("ScoreBlock: give seed_scores together with their seeds, or neither")
        if self.seed_scores is not None and np.shape(self.seed_scores) != (*shape, len(self.seeds)):
            raise ValueError(
                f"ScoreBlock: seed_scores must be runs x columns x seeds {(*shape, len(self.seeds))}, "
                f"got {np.shape(self.seed_scores)}"
            )


class MultiHistogramAlgorithm(_Configured):
    """The contract over runs x histograms that every model job uses.

    ``fit`` learns from a :class:`~dqmflow.preprocess.Batch` (the run table and several
    histograms of the same runs) and returns, per histogram it could not fit, the reason;
    ``score`` gives a :class:`ScoreBlock`; ``reconstruct`` gives the expected unit-area
    histograms of the requested runs only. A multi-histogram algorithm (e.g. one network over a
    group of histograms) implements this directly; per-histogram ones plug in via
    :class:`PerHistogram`.
    """

    @abstractmethod
    def fit(self, batch: Batch) -> dict[str, str]:
        """Learn from the ``train`` runs; returns {column: reason} for histograms not fitted."""

    @abstractmethod
    def score(self, batch: Batch) -> ScoreBlock:
        """Scores of every run and histogram of ``batch``."""

    def reconstruct(
        self, batch: Batch, runs: np.ndarray, columns: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Expected unit-area histograms of ``runs`` for ``columns`` (default: all; columns
        without a reconstruction are left out)."""
        return {}

    def latent(self, batch: Batch) -> dict[str, np.ndarray]:
        """Latent-space coordinates (runs x dimensions, NaN where not scored) per histogram that
        has a latent space (PCA, autoencoders); others are left out."""
        return {}

    def bind(self, table: RunTable) -> str:
        """Called before scoring with the whole current run table; returns a digest of what the
        scores depend on besides each run's own data and the model ("" if nothing): scores
        cached under another digest are recomputed."""
        return ""

    def runs_needed(self, table: RunTable, runs: np.ndarray) -> np.ndarray:
        """Runs (besides ``runs``) whose data scoring or reconstructing ``runs`` reads: a batch
        passed to :meth:`score` must hold them, else those runs score NaN."""
        return np.zeros(0, dtype=np.int64)

    @abstractmethod
    def save(self, directories: Mapping[str, Path]) -> None:
        """Write the fitted model; ``directories`` holds one existing folder per fitted column."""

    @classmethod
    @abstractmethod
    def load(cls, directories: Mapping[str, Path], params: Any) -> Self:
        """Read a model written by :meth:`save` for the given columns."""


class PerHistogram(MultiHistogramAlgorithm):
    """Adapter: one independent :class:`Algorithm` per histogram of the batch."""

    def __init__(self, algorithm: type[Algorithm], params: Any) -> None:
        self.algorithm = algorithm
        super().__init__(params)
        self.models: dict[str, Algorithm] = {}

    def _params_class(self) -> type:
        return self.algorithm.Params

    def fit(self, batch: Batch) -> dict[str, str]:
        failures: dict[str, str] = {}
        for column, data in batch.histograms.items():
            try:
                self.models[column] = self.algorithm(self.params).fit(data)
            except NotEnoughData as err:
                failures[column] = str(err)
            except Exception as err:
                err.add_note(f"while training {self.algorithm.name} on histogram {column!r}")
                raise
        return failures

    def _each(self, batch: Batch) -> typing.Iterator[tuple[int, str, Algorithm, HistogramSet]]:
        for j, column in enumerate(batch.columns):
            model = self.models.get(column)
            if model is not None:
                yield j, column, model, batch[column]

    def score(self, batch: Batch) -> ScoreBlock:
        scores = np.full((len(batch.runs), len(batch.columns)), np.nan)
        for j, column, model, data in self._each(batch):
            rows = np.flatnonzero(data.split != "missing")
            try:
                column_scores = np.asarray(model.score(data.subset(data.split != "missing")), dtype=np.float64)
                if column_scores.shape != rows.shape:
                    raise ValueError(
                        f"{self.algorithm.__name__}.score must return one score per run, shape {rows.shape}; "
                        f"got shape {column_scores.shape}"
                    )
                scores[rows, j] = column_scores
            except Exception as err:
                err.add_note(f"while scoring {self.algorithm.name} on histogram {column!r}")
                raise
        return ScoreBlock(batch.columns, scores)

    def reconstruct(
        self, batch: Batch, runs: np.ndarray, columns: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        wanted = np.isin(batch.runs, runs)
        out: dict[str, np.ndarray] = {}
        for _, column, model, data in self._each(batch):
            if columns is not None and column not in columns:
                continue
            references = np.isin(batch.runs, model.runs_needed(batch.runs[wanted], data.entries[wanted]))
            needed = wanted | (references & (data.split != "missing"))
            reco = model.reconstruct(data.subset(needed))
            if reco is not None:
                out[column] = reco[wanted[needed]]
        return out

    def bind(self, table: RunTable) -> str:
        digests = {column: model.bind(table, column) for column, model in self.models.items()}
        if not any(digests.values()):
            return ""
        return hashlib.sha1(json.dumps(digests, sort_keys=True).encode()).hexdigest()

    def runs_needed(self, table: RunTable, runs: np.ndarray) -> np.ndarray:
        rows = np.isin(table.runs, runs)
        needed = [
            model.runs_needed(table.runs[rows], np.nan_to_num(table.entries[column][rows], nan=0.0))
            for column, model in self.models.items()
        ]
        return np.unique(np.concatenate([np.zeros(0, dtype=np.int64), *needed])).astype(np.int64)

    def latent(self, batch: Batch) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for _, column, model, data in self._each(batch):
            present = data.split != "missing"
            coordinates = model.latent(data.subset(present))
            if coordinates is not None:
                full = np.full((len(data), coordinates.shape[1]), np.nan)
                full[present] = coordinates
                out[column] = full
        return out

    def save(self, directories: Mapping[str, Path]) -> None:
        for column, directory in directories.items():
            self.models[column].save(directory)

    @classmethod
    def load(cls, directories: Mapping[str, Path], params: Any) -> Self:
        raise TypeError("load a PerHistogram adapter with PerHistogram.load_for")

    @classmethod
    def load_for(cls, algorithm: type[Algorithm], directories: Mapping[str, Path], params: Any) -> PerHistogram:
        adapter = cls(algorithm, params)
        adapter.models = {column: algorithm.load(directory, params) for column, directory in directories.items()}
        return adapter


@dataclasses.dataclass(frozen=True)
class AlgorithmConfig:
    """A validated algorithm config file; ``seeds`` makes it a seed ensemble
    (:mod:`dqmflow.algorithms.ensemble`)."""

    tag: str
    algorithm: str
    params: Any
    description: str = ""
    path: str = ""
    seeds: tuple[int, ...] = ()

    @property
    def cls(self) -> type[Algorithm] | type[MultiHistogramAlgorithm]:
        return get_algorithm(self.algorithm)

    def _build_one(self, params: Any) -> MultiHistogramAlgorithm:
        cls = self.cls
        if issubclass(cls, Algorithm):
            return PerHistogram(cls, params)
        return cls(params)

    def _load_one(self, directories: Mapping[str, Path], params: Any) -> MultiHistogramAlgorithm:
        cls = self.cls
        if issubclass(cls, Algorithm):
            return PerHistogram.load_for(cls, directories, params)
        return cls.load(directories, params)

    def build(self) -> MultiHistogramAlgorithm:
        """A fresh model over runs x histograms (per-histogram algorithms through the adapter)."""
        if self.seeds:
            from dqmflow.algorithms.ensemble import Ensemble

            return Ensemble.build(self._build_one, self.params, self.seeds)
        return self._build_one(self.params)

    def load(self, directories: Mapping[str, Path]) -> MultiHistogramAlgorithm:
        """The model saved in ``directories`` ({column: folder}) by a model job."""
        if self.seeds:
            from dqmflow.algorithms.ensemble import Ensemble

            def load_member(folders: Mapping[str, Path], seed: int) -> MultiHistogramAlgorithm:
                return self._load_one(folders, dataclasses.replace(self.params, seed=seed))

            members = [load_member({c: Path(d) / f"seed_{s}" for c, d in directories.items()}, s) for s in self.seeds]
            return Ensemble(members, self.seeds)
        return self._load_one(directories, self.params)

    def code_digest(self) -> str:
        """Digest of the code its models come from (:func:`algorithm_code_digest`; with seeds, the
        ensemble's too): part of the training key, so editing an algorithm retrains its models."""
        digest = algorithm_code_digest(self.cls)
        if self.seeds:
            from dqmflow.algorithms import ensemble

            digest = hashlib.sha1(f"{digest}|{_file_digest(ensemble.__file__)}".encode()).hexdigest()
        return digest

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tag": self.tag, "algorithm": self.algorithm, "params": dataclasses.asdict(self.params)}
        if self.seeds:
            out["seeds"] = list(self.seeds)
        return out


def algorithm_code_digest(cls: type) -> str:
    """Digest of the code an algorithm's models come from, as Python code (its syntax tree without
    docstrings: editing a comment or a docstring retrains nothing):

    * the modules of the classes it derives from, and the ``dqmflow.algorithms`` helper modules
      whose functions or classes they use, transitively (e.g. a network builder);
    * of ``base`` (config parsing, messages: every algorithm imports it) only the classes it
      derives from and the ``PerHistogram`` adapter that trains a per-histogram algorithm;
    * the losses of a reconstruction algorithm, and ``dqmflow.preprocess`` (how histograms are
      normalised and split before they reach a model).
    """
    pending = [c.__module__ for c in cls.__mro__ if c.__module__.startswith("dqmflow.") and c.__module__ != __name__]
    pending.append("dqmflow.preprocess")
    if issubclass(cls, ReconstructionAlgorithm):
        pending.append("dqmflow.algorithms.losses")
    modules: set[str] = set()
    while pending:
        name = pending.pop()
        if name in modules or name == __name__:
            continue
        modules.add(name)
        if name.startswith("dqmflow.algorithms."):
            for value in vars(importlib.import_module(name)).values():
                owner = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
                if isinstance(owner, str) and owner.startswith("dqmflow.algorithms."):
                    pending.append(owner)
    files = [Path(str(importlib.import_module(name).__file__)) for name in sorted(modules)]
    sources = [path.read_text(encoding="utf-8") for path in files]
    own = [c for c in cls.__mro__ if c.__module__ == __name__]
    if issubclass(cls, Algorithm):
        own.append(PerHistogram)
    sources += [inspect.getsource(c) for c in own]
    return hashlib.sha1("|".join(_code_digest(source) for source in sources).encode()).hexdigest()


class _NoDocstrings(ast.NodeTransformer):
    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            first = body[0].value
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        return node


def _code_digest(source: str) -> str:
    """Digest of Python ``source`` as code: comments, docstrings and layout do not count."""
    tree = _NoDocstrings().visit(ast.parse(textwrap.dedent(source)))
    return hashlib.sha1(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _file_digest(path: str | Path) -> str:
    return _code_digest(Path(path).read_text(encoding="utf-8"))


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _hint_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is Literal:
        return f"one of {list(typing.get_args(hint))}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


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
        others = [o for o in options if o is not type(None)]
        if len(others) == 1:  # Optional[X]: X's checks
            return _check_value(name, value, others[0], meta, where)
        for option in others:  # the first alternative the value passes
            try:
                return _check_value(name, value, option, meta, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {name} must be {' or '.join(_hint_name(o) for o in options)}, not {value!r}")
    if origin in (tuple, list):
        item = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: {name} must be a list, not {value!r}")
        items = [_check_value(f"{name}[{i}]", v, item, meta, where) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be true or false, not {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {name} must be an integer, not {value!r}")
    elif hint is float:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
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


def build_params(
    cls: type[Algorithm] | type[MultiHistogramAlgorithm], raw: Mapping[str, Any] | None, where: str
) -> Any:
    """Validate ``raw`` against ``cls.Params`` and return a ``Params`` instance."""
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {unknown} for {cls.name}; allowed: {sorted(fields)}")
    required = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and name not in raw
    ]
    if required:
        raise ConfigError(f"{where}: missing parameter(s) {required} for {cls.name} (they have no default)")
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
    unknown = sorted(set(raw) - {"algorithm", "tag", "description", "params", "seeds"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: algorithm, tag, description, params, seeds")
    tag = str(raw.get("tag") or path.stem)
    if not re.fullmatch(TAG_PATTERN, tag):
        raise ConfigError(f"{where}: tag {tag!r} may contain only letters, digits, '_' and '-'")
    cls = get_algorithm(str(raw["algorithm"]))
    if raw.get("params") is not None and not isinstance(raw["params"], dict):
        raise ConfigError(f"{where}: params must be a mapping")
    if isinstance(cls, type) and issubclass(cls, ReconstructionAlgorithm):
        lacking = sorted({"loss", "top_n"} - {f.name for f in dataclasses.fields(cls.Params)})
        if lacking:
            raise ConfigError(
                f"{where}: algorithm {cls.name!r} is a ReconstructionAlgorithm, whose score is a loss: its "
                f"Params need the field(s) {lacking} (see LossName and the losses in algorithms/losses.py)"
            )
    params = build_params(cls, raw.get("params"), where)
    seeds = _check_seeds(raw.get("seeds"), cls, where)
    return AlgorithmConfig(tag, cls.name, params, str(raw.get("description", "")), str(path), seeds)


def _check_seeds(raw: Any, cls: type[Algorithm] | type[MultiHistogramAlgorithm], where: str) -> tuple[int, ...]:
    """``seeds:`` of a config: a list of at least two distinct integers, for stochastic algorithms."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in raw):
        raise ConfigError(f"{where}: seeds must be a list of integers, not {raw!r}")
    if len(set(raw)) < 2 or len(set(raw)) != len(raw):
        raise ConfigError(f"{where}: seeds must hold at least two different integers, not {raw!r}")
    if "seed" not in {f.name for f in dataclasses.fields(cls.Params)}:
        raise ConfigError(f"{where}: {cls.name} is not stochastic (it has no 'seed' parameter): drop 'seeds'")
    return tuple(int(s) for s in raw)


def load_configs(paths: list[str]) -> dict[str, AlgorithmConfig]:
    """Load several config files; tags must be unique."""
    configs: dict[str, AlgorithmConfig] = {}
    for p in paths:
        cfg = load_config(p)
        if cfg.tag in configs:
            raise ConfigError(f"tag {cfg.tag!r} is used by both {configs[cfg.tag].path} and {p}")
        configs[cfg.tag] = cfg
    return configs
