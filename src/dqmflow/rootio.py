"""Write and read DQM histograms in ROOT files with uproot (no ROOT installation needed).

Writing builds real ``TH1F``/``TH2F`` objects (float32 contents with under/overflow bins) the way
the DQM GUI stores them; reading returns bin contents *without* flow bins, as AutoDQM_ML does,
with the histogram's title and the titles of its axes (``TAxis::fTitle``, e.g. ``#eta``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import uproot
from uproot.writing import identify

from dqmflow.discover import is_remote

__all__ = ["Histogram", "HistogramTypeError", "from_uproot", "to_th1f", "to_th2f"]


@dataclass(frozen=True)
class Histogram:
    """Bin contents (no flow bins), bin edges per axis, number of entries, ROOT class, title and
    axis titles (one per dimension, x then y, ``""`` where the file has none; ``()`` if unknown)."""

    values: np.ndarray  # shape (nx,) or (nx, ny)
    edges: tuple[np.ndarray, ...]
    entries: float
    classname: str = "TH1F"
    title: str = ""
    axis_titles: tuple[str, ...] = ()

    @property
    def ndim(self) -> int:
        return self.values.ndim

    @property
    def layout(self) -> str:
        """Class and bin counts, e.g. ``TH1F[100]`` or ``TH2F[36x18]``, for messages."""
        return f"{self.classname}[{'x'.join(str(n) for n in self.values.shape)}]"


class TruncatedFileError(OSError):
    """A ROOT file is shorter than its header says (an interrupted copy or write), or shorter than
    any ROOT file (empty, or another format)."""


# uproot's message when a file is shorter than the first chunk it reads (an empty or tiny file)
_SHORT_READ = re.compile(r"expected Chunk of length (?P<expected>\d+),\s+received (?P<received>\d+) bytes")


class HistogramTypeError(TypeError):
    """An object in a DQM file is not a plain 1D/2D histogram."""


def _axis(name: str, edges: np.ndarray, title: str = "") -> object:
    edges = np.asarray(edges, dtype=np.float64)
    uniform = np.allclose(np.diff(edges), (edges[-1] - edges[0]) / (len(edges) - 1), rtol=1e-9)
    return identify.to_TAxis(
        fName=name,
        fTitle=title,
        fNbins=len(edges) - 1,
        fXmin=float(edges[0]),
        fXmax=float(edges[-1]),
        fXbins=np.array([], dtype=np.float64) if uniform else edges,
    )


def _moments(values: np.ndarray, centers: np.ndarray) -> tuple[float, float, float]:
    total = float(values.sum())
    return total, float((values * centers).sum()), float((values * centers**2).sum())


def _titles(name: str, axis_titles: Sequence[str], ndim: int) -> list[str]:
    """``axis_titles`` padded with ``""`` to ``ndim`` titles (more than ``ndim`` is an error)."""
    if isinstance(axis_titles, str) or len(axis_titles) > ndim:
        raise ValueError(f"{name}: axis titles {axis_titles!r} for a {ndim}D histogram (one string per axis)")
    return [str(t) for t in axis_titles] + [""] * (ndim - len(axis_titles))


def to_th1f(
    name: str, values: np.ndarray, edges: np.ndarray, title: str = "", axis_titles: Sequence[str] = ()
) -> object:
    """An uproot-writable TH1F from contents ``values`` (no flow bins) and ``edges``.

    ``axis_titles`` is ``(x title,)`` (ROOT's ``TAxis::fTitle``, e.g. ``"#eta"``); none by default.
    """
    (x_title,) = _titles(name, axis_titles, 1)
    values = np.asarray(values, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if values.shape != (len(edges) - 1,):
        raise ValueError(f"{name}: {values.shape[0]} values for {len(edges) - 1} bins")
    data = np.zeros(len(values) + 2, dtype=np.float32)
    data[1:-1] = values
    centers = 0.5 * (edges[1:] + edges[:-1])
    total, sumx, sumx2 = _moments(values, centers)
    return identify.to_TH1x(
        fName=name,
        fTitle=title or name,
        data=data,
        fEntries=total,
        fTsumw=total,
        fTsumw2=total,
        fTsumwx=sumx,
        fTsumwx2=sumx2,
        fSumw2=np.array([], dtype=np.float64),
        fXaxis=_axis("xaxis", edges, x_title),
    )


def to_th2f(
    name: str,
    values: np.ndarray,
    xedges: np.ndarray,
    yedges: np.ndarray,
    title: str = "",
    axis_titles: Sequence[str] = (),
) -> object:
    """An uproot-writable TH2F from contents ``values[ix, iy]`` (no flow bins) and edges.

    ``axis_titles`` is ``(x title, y title)`` (ROOT's ``TAxis::fTitle``); none by default.
    """
    x_title, y_title = _titles(name, axis_titles, 2)
    values = np.asarray(values, dtype=np.float64)
    nx, ny = len(xedges) - 1, len(yedges) - 1
    if values.shape != (nx, ny):
        raise ValueError(f"{name}: values of shape {values.shape} for {nx}x{ny} bins")
    full = np.zeros((nx + 2, ny + 2), dtype=np.float32)
    full[1:-1, 1:-1] = values
    xc = 0.5 * (np.asarray(xedges)[1:] + np.asarray(xedges)[:-1])
    yc = 0.5 * (np.asarray(yedges)[1:] + np.asarray(yedges)[:-1])
    total, sumx, sumx2 = _moments(values.sum(axis=1), xc)
    _, sumy, sumy2 = _moments(values.sum(axis=0), yc)
    return identify.to_TH2x(
        fName=name,
        fTitle=title or name,
        data=full.T.reshape(-1),  # ROOT's global bin = ix + (nx + 2) * iy
        fEntries=total,
        fTsumw=total,
        fTsumw2=total,
        fTsumwx=sumx,
        fTsumwx2=sumx2,
        fTsumwy=sumy,
        fTsumwy2=sumy2,
        fTsumwxy=float((values * np.outer(xc, yc)).sum()),
        fSumw2=np.array([], dtype=np.float64),
        fXaxis=_axis("xaxis", xedges, x_title),
        fYaxis=_axis("yaxis", yedges, y_title),
    )


def _axis_title(obj: object, member: str) -> str:
    """``obj.fXaxis.fTitle`` (``member`` = ``fXaxis``/``fYaxis``), or ``""`` if the file has none."""
    try:
        title = obj.member(member).member("fTitle")  # type: ignore[attr-defined]
    except Exception:  # no such member, or an axis object without a title
        return ""
    return str(title) if title else ""


_ACCEPTED = {
    1: ("TH1F", "TH1D", "TH1I", "TH1S", "TH1C"),
    2: ("TH2F", "TH2D", "TH2I", "TH2S", "TH2C", "TH2Poly"),
}


def from_uproot(obj: object) -> Histogram:
    """Convert an object read by uproot into a :class:`Histogram`.

    The axis titles are those of the x (and, for a TH2, y) axis, ``""`` where absent. Raises
    :class:`HistogramTypeError` for anything that is not a plain TH1/TH2 (profiles, TH3, graphs,
    directories, ...).
    """
    if isinstance(obj, uproot.ReadOnlyDirectory):
        raise HistogramTypeError("is a folder (TDirectory), not a TH1 or TH2 histogram")
    classname = getattr(obj, "classname", type(obj).__name__)
    for ndim, names in _ACCEPTED.items():
        if classname in names and classname != "TH2Poly":
            values = np.asarray(obj.values(flow=False), dtype=np.float64)  # type: ignore[attr-defined]
            axes = [obj.axis(i) for i in range(ndim)]  # type: ignore[attr-defined]
            edges = tuple(np.asarray(ax.edges(flow=False), dtype=np.float64) for ax in axes)
            entries = float(obj.member("fEntries"))  # type: ignore[attr-defined]
            title = str(obj.member("fTitle") or "")  # type: ignore[attr-defined]
            axis_titles = tuple(_axis_title(obj, member) for member in ("fXaxis", "fYaxis")[:ndim])
            return Histogram(values, edges, entries, classname, title, axis_titles)
    raise HistogramTypeError(f"is a {classname}, not a TH1 or TH2 histogram")


def _raise_if_io(err: Exception, remote: bool) -> None:
    """Re-raise a failure of reading the file itself (an XRootD server that died mid-read: an
    OSError of a remote file; uproot's source closed under it), as an OSError, so that the whole
    file is retried and, failing that, reported as a ``file_error``. Anything else, and an OSError
    of a local file (uproot's "expected Chunk of length N" for a key pointing past the end), is a
    broken object inside a readable file: its histogram's problem alone."""
    if "closed file" in str(err):
        raise OSError(f"the file was closed while it was read: {err}") from err
    if remote and isinstance(err, OSError):
        raise err


def _missing_reason(handle: uproot.ReadOnlyDirectory, key: str) -> str:
    """Say which level of ``DQMData/Run N/<Subsystem>/...`` is absent from the file."""
    parts = key.split("/")
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        try:
            handle[folder]
        except KeyError:
            if depth == 3 and parts[0] == "DQMData":  # the subsystem folder
                try:
                    present = sorted({k.split(";")[0] for k in handle["/".join(parts[:2])].keys(recursive=False)})
                except Exception:  # pragma: no cover - the run folder was found just before
                    present = []
                return f"missing: no subsystem folder {parts[2]!r} in this file (it has: {', '.join(present)})"
            return f"missing: no folder {folder!r} in this file"
    return "missing: no object at this path"


def read_file(path: str, keys: dict[str, str]) -> tuple[dict[str, Histogram], dict[str, str]]:
    """Read the objects ``keys`` ({name: key in file}) from one ROOT file.

    Returns the histograms read and, per name that could not be read, the problem. Errors that
    concern the whole file (it cannot be opened, or it is truncated) propagate as exceptions.
    """
    found: dict[str, Histogram] = {}
    problems: dict[str, str] = {}
    remote = is_remote(str(path))
    try:
        opened = uproot.open(path)
    except OSError as err:
        short = _SHORT_READ.search(str(err))
        if short is None:
            raise
        raise TruncatedFileError(
            f"not a ROOT file, or cut short: {short['received']} bytes where a ROOT file header needs "
            f"{short['expected']}"
        ) from err
    with opened as handle:
        size, end = handle.file.source.num_bytes, handle.file.fEND
        if size is not None and size < end:
            raise TruncatedFileError(f"file is truncated: {size} bytes, its header says {end}")
        for name, key in keys.items():
            try:
                obj = handle[key]
            except KeyError:
                problems[name] = _missing_reason(handle, key)
                continue
            except Exception as err:  # corrupted object inside a readable file
                _raise_if_io(err, remote)
                problems[name] = f"unreadable: {type(err).__name__}: {err}"
                continue
            try:
                hist = from_uproot(obj)
            except HistogramTypeError as err:
                problems[name] = f"wrong type: {err}"
                continue
            except Exception as err:
                _raise_if_io(err, remote)
                problems[name] = f"unreadable: {type(err).__name__}: {err}"
                continue
            bad = int((~np.isfinite(hist.values)).sum())
            if bad:  # NaN or inf bin contents: no algorithm can score them, no reference can use them
                problems[name] = f"unreadable: {bad} of {hist.values.size} bin contents are not finite (NaN or inf)"
                continue
            found[name] = hist
    return found, problems
