"""Synthetic but realistic DQM GUI data, deterministic from a seed, with the truth next to it.

The generator writes the DQM GUI tree (``Run<YEAR>/<PD>/R000NNNNxx/DQM_V0001_R000<run>__<PD>__
Run<YEAR><ERA>-<processing>__DQMIO.root``) with ``DQMData/Run <N>/<Subsystem>/Run summary/...``
folders holding TH1F/TH2F histograms of the CSC offline monitor and the L1T EMTF: segment timing,
hits, chi2, global phi/theta, track BX/eta/phi/pT, and 2D chamber occupancy, track occupancy and
quality-vs-mode maps, with ROOT axis titles as in DQM (``#eta``-style Greek letters). Runs vary
in luminosity (a few are short, low-statistics runs), drift slowly within a year and change
between eras. About one run in six carries a labelled anomaly of the kinds seen in DQM (dead
chamber, hot channel, timing shift, broadened resolution, missing sector, wrong normalisation of
one region, mis-calibrated pT scale, empty histogram), touching one or several histograms;
``truth.csv`` lists every affected (run, histogram) with the anomaly kind.

Each histogram is a multinomial sample of an expected shape, so bin-to-bin fluctuations are
Poisson-like, as in real data.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dqmflow.discover import batch_of
from dqmflow.names import HistogramName

__all__ = ["HISTOGRAMS", "DemoSpec", "RunPlan", "demo_contents", "demo_datasets", "plan_runs", "write_demo"]

PD = "SingleMuon"
CSC = "/Run summary/CSCOfflineMonitor"
EMTF = "/Run summary/L1TStage2EMTF"

# CSC rings as on the y axis of the CSC occupancy maps, with their number of chambers.
RINGS = [
    ("ME-4/2", 36),
    ("ME-4/1", 18),
    ("ME-3/2", 36),
    ("ME-3/1", 18),
    ("ME-2/2", 36),
    ("ME-2/1", 18),
    ("ME-1/3", 36),
    ("ME-1/2", 36),
    ("ME-1/1", 36),
    ("ME+1/1", 36),
    ("ME+1/2", 36),
    ("ME+1/3", 36),
    ("ME+2/1", 18),
    ("ME+2/2", 36),
    ("ME+3/1", 18),
    ("ME+3/2", 36),
    ("ME+4/1", 18),
    ("ME+4/2", 36),
]
RING_RATE = np.array([0.5, 0.9, 0.5, 0.9, 0.6, 1.0, 0.4, 0.7, 1.6, 1.6, 0.7, 0.4, 1.0, 0.6, 0.9, 0.5, 0.9, 0.5])

ANOMALIES = {
    # kind: histograms it affects
    "dead_chamber": ("CSC/hORecHits", "CSC/hOSegments", "CSC/hSGlobalPhi"),
    "hot_channel": ("CSC/hORecHits", "CSC/hOSegments"),  # both maps come from the same chamber densities
    "timing_shift": ("CSC/hSTimeCombinedSerial", "L1T/emtfTrackBX"),
    "broadened_resolution": ("CSC/hSChiSq", "CSC/hSnhits"),
    "missing_sector": ("L1T/emtfTrackPhi", "L1T/emtfTrackOccupancy"),
    "wrong_normalisation": ("L1T/emtfTrackEta", "L1T/emtfTrackOccupancy"),
    "pt_miscalibration": ("L1T/emtfTrackPt",),
    "empty_histogram": ("L1T/emtfTrackQualityVsMode",),
}


@dataclass(frozen=True)
class RunPlan:
    """Conditions of one demo run."""

    run: int
    year: int
    era: str
    processing: str
    lumi: float  # relative luminosity: expected entries scale with it
    t: float  # position within the year, 0..1 (drives slow drifts)
    anomaly: str = ""
    strength: float = 0.0  # 0 (invisible) .. 1 (severe)
    detail: int = 0  # which chamber / sector / bin the anomaly hits


@dataclass(frozen=True)
class DemoSpec:
    """Size of the demo: runs per year, eras and processing per year, seed."""

    runs_per_year: int = 160
    years: dict[int, tuple[str, ...]] = field(default_factory=lambda: {2017: ("B", "C", "D"), 2018: ("A", "B", "C")})
    processing: dict[int, str] = field(
        default_factory=lambda: {2017: "09Aug2019_UL2017-v1", 2018: "12Nov2019_UL2018-v2"}
    )
    first_run: dict[int, int] = field(default_factory=lambda: {2017: 297046, 2018: 315252})
    anomaly_fraction: float = 0.13
    low_stat_fraction: float = 0.05
    seed: int = 20260101


def plan_runs(spec: DemoSpec) -> list[RunPlan]:
    """Run numbers, eras, luminosities and anomalies of the demo, deterministic from the seed."""
    rng = np.random.default_rng(spec.seed)
    plans = []
    kinds = sorted(ANOMALIES)
    last_run = 0
    for year, eras in spec.years.items():
        n = spec.runs_per_year
        first = max(spec.first_run[year], last_run + 1000)  # big demos: years must not overlap
        runs = first + np.cumsum(rng.integers(1, 60, size=n))
        last_run = int(runs[-1])
        era_idx = np.minimum((np.arange(n) * len(eras)) // n, len(eras) - 1)
        lumi = rng.lognormal(0.0, 0.35, size=n)
        low = rng.random(n) < spec.low_stat_fraction
        lumi[low] = rng.uniform(0.005, 0.04, size=low.sum())
        bad = (rng.random(n) < spec.anomaly_fraction) & ~low
        for i in range(n):
            anomaly, strength, detail = "", 0.0, 0
            if bad[i]:
                anomaly = kinds[int(rng.integers(len(kinds)))]
                strength = float(rng.uniform(0.1, 1.0))
                detail = int(rng.integers(0, 10_000))
            plans.append(
                RunPlan(
                    run=int(runs[i]),
                    year=year,
                    era=eras[era_idx[i]],
                    processing=spec.processing[year],
                    lumi=float(lumi[i]),
                    t=i / max(n - 1, 1),
                    anomaly=anomaly,
                    strength=strength,
                    detail=detail,
                )
            )
    return plans


def _bins(lo: float, hi: float, n: int) -> np.ndarray:
    return np.linspace(lo, hi, n + 1)


def _centers(edges: np.ndarray) -> np.ndarray:
    return 0.5 * (edges[1:] + edges[:-1])


def _gauss(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2)


@dataclass(frozen=True)
class HistSpec:
    subsystem: str
    path: str
    edges: tuple[np.ndarray, ...]
    rate: float  # expected entries per unit luminosity
    shape: Callable[[RunPlan, tuple[np.ndarray, ...]], np.ndarray]
    axis_titles: tuple[str, ...] = ()  # ROOT axis titles (TAxis fTitle), x then y

    @property
    def key(self) -> str:
        return f"{self.subsystem}/{self.path.rsplit('/', 1)[-1]}"

    @property
    def name(self) -> HistogramName:
        return HistogramName(self.subsystem, self.path)


def _hit(plan: RunPlan, kind: str) -> float:
    return plan.strength if plan.anomaly == kind else 0.0


def _chamber_map(plan: RunPlan, edges: tuple[np.ndarray, ...], per_ring: np.ndarray) -> np.ndarray:
    nx, ny = len(edges[0]) - 1, len(edges[1]) - 1
    static = np.random.default_rng(7).uniform(0.85, 1.15, size=(nx, ny))  # chamber-to-chamber
    dens = np.zeros((nx, ny))
    for iy, (_, nch) in enumerate(RINGS):
        dens[:nch, iy] = per_ring[iy] * static[:nch, iy]
    if s := _hit(plan, "dead_chamber"):
        iy = plan.detail % ny
        dens[plan.detail % RINGS[iy][1], iy] *= 1 - s
    if s := _hit(plan, "hot_channel"):
        iy = (plan.detail // 7) % ny
        dens[plan.detail % RINGS[iy][1], iy] *= 1 + 6 * s
    return dens


def _rechits(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    return _chamber_map(plan, edges, RING_RATE * (1 + 0.05 * (plan.year - 2017)))


def _segments(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    return _chamber_map(plan, edges, np.sqrt(RING_RATE))


def _timing(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    x = _centers(edges[0])
    mu = 0.8 * np.sin(2 * np.pi * plan.t) + (0.5 if plan.year == 2018 else 0.0) + 9 * _hit(plan, "timing_shift")
    return _gauss(x, mu, 4.0) + 0.03


def _nsegments(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    k = np.arange(len(edges[0]) - 1)
    mean = 2.2 + 0.3 * plan.lumi**0.5 + 0.2 * (plan.era in ("C", "D"))
    logp = k * np.log(mean) - mean - np.array([np.sum(np.log(np.arange(1, i + 1))) for i in k])
    return np.exp(logp)


def _fired_strips(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    k = _centers(edges[0])
    mean = 6.0 + 0.5 * (plan.year - 2017)
    return np.exp(-0.5 * ((k - mean) / 2.5) ** 2) * (k > 0)


def _nhits(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    p = np.array([0, 0, 0, 0.04, 0.09, 0.22, 0.65, 0.0])
    if s := _hit(plan, "broadened_resolution"):
        p = p + s * np.array([0, 0, 0, 0.12, 0.14, 0.08, -0.34, 0])
    return np.clip(p, 0, None)


def _global_phi(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    x = _centers(edges[0])
    dens = 1 + 0.06 * np.cos(36 * x) + 0.02 * np.cos(x - 0.3 * plan.t)
    if s := _hit(plan, "dead_chamber"):
        lo = -np.pi + (plan.detail % 36) * 2 * np.pi / 36
        dens[(x >= lo) & (x < lo + 2 * np.pi / 36)] *= 1 - 0.6 * s
    return dens


def _global_theta(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    x = _centers(edges[0])
    return _gauss(x, 0.32, 0.13) + _gauss(x, np.pi - 0.32, 0.13) + 0.01


def _chisq(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    x = _centers(edges[0])
    scale = 1 + 0.04 * np.sin(2 * np.pi * plan.t) + 0.9 * _hit(plan, "broadened_resolution")
    y = x / scale
    return y * np.exp(-y / 2) / scale


def _bx(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    p = np.array([0.001, 0.004, 0.03, 0.93, 0.03, 0.004, 0.001])
    if s := _hit(plan, "timing_shift"):
        p = p + s * np.array([0, 0, 0, -0.3, 0.25, 0.05, 0])
    return p


def _eta_profile(eta: np.ndarray, plan: RunPlan) -> np.ndarray:
    a = np.abs(eta)
    accept = (a > 1.2) & (a < 2.4)
    rate = (0.6 + 0.5 * (a - 1.2)) * (1 + (0.1 if plan.year == 2018 else 0.0) * (a > 2.1))
    dens = np.where(accept, rate, 0.0)
    if s := _hit(plan, "wrong_normalisation"):
        dens = np.where(eta > 0, dens * (1 - 0.5 * s), dens)
    return dens


def _eta(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    return _eta_profile(_centers(edges[0]), plan)


def _phi_profile(phi: np.ndarray, plan: RunPlan) -> np.ndarray:
    sector_phi = np.mod(phi - np.deg2rad(15), np.pi / 3)
    dens = 1 - 0.25 * _gauss(sector_phi, 0, 0.04) - 0.25 * _gauss(sector_phi, np.pi / 3, 0.04)
    if s := _hit(plan, "missing_sector"):
        sector = plan.detail % 6
        inside = np.floor(np.mod(phi - np.deg2rad(15), 2 * np.pi) / (np.pi / 3)) == sector
        dens = np.where(inside, dens * (1 - 0.5 * s), dens)
    return dens


def _phi(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    return _phi_profile(_centers(edges[0]), plan)


def _pt(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    x = _centers(edges[0])
    slope = 7.0 + (0.8 if plan.era in ("C", "D") else 0.0) + 6 * _hit(plan, "pt_miscalibration")
    return np.exp(-x / slope) + 0.02 * (1 + x / 10) ** -2


def _occupancy(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    eta, phi = _centers(edges[0]), _centers(edges[1])
    dens = np.outer(_eta_profile(eta, plan), _phi_profile(phi, plan))
    return dens


def _quality_vs_mode(plan: RunPlan, edges: tuple[np.ndarray, ...]) -> np.ndarray:
    dens = np.zeros((16, 16))
    for mode, quality, weight in [
        (15, 15, 0.35),
        (14, 14, 0.1),
        (13, 13, 0.1),
        (11, 11, 0.12),
        (7, 7, 0.08),
        (12, 12, 0.09),
        (10, 10, 0.06),
        (9, 9, 0.05),
        (6, 6, 0.03),
        (5, 5, 0.02),
        (3, 3, 0.02),
    ]:
        dens[mode, quality] = weight * (1 + 0.05 * (plan.year - 2017) * (mode < 11))
    if _hit(plan, "empty_histogram"):
        dens[:] = 0.0
    return dens


_CHAMBER_EDGES = (_bins(0.5, 36.5, 36), _bins(0.5, 18.5, 18))  # chamber x station-ring (RINGS, bottom to top)

HISTOGRAMS: list[HistSpec] = [
    HistSpec("CSC", f"{CSC}/Occupancy/hORecHits", _CHAMBER_EDGES, 8.0, _rechits, ("chamber", "station-ring")),
    HistSpec("CSC", f"{CSC}/Occupancy/hOSegments", _CHAMBER_EDGES, 2.0, _segments, ("chamber", "station-ring")),
    HistSpec(
        "CSC", f"{CSC}/Segments/hSTimeCombinedSerial", (_bins(-50, 50, 100),), 1.0, _timing, ("segment time [ns]",)
    ),
    HistSpec("CSC", f"{CSC}/Segments/hSnSegments", (_bins(-0.5, 15.5, 16),), 1.0, _nsegments, ("segments per event",)),
    HistSpec("CSC", f"{CSC}/Segments/hSnhits", (_bins(-0.5, 7.5, 8),), 1.0, _nhits, ("rechits per segment",)),
    HistSpec("CSC", f"{CSC}/Segments/hSGlobalPhi", (_bins(-np.pi, np.pi, 128),), 1.0, _global_phi, ("global #phi",)),
    HistSpec("CSC", f"{CSC}/Segments/hSGlobalTheta", (_bins(0, np.pi, 128),), 1.0, _global_theta, ("global #theta",)),
    HistSpec("CSC", f"{CSC}/Segments/hSChiSq", (_bins(0, 20, 100),), 1.0, _chisq, ("#chi^{2}/ndof",)),
    # A name with a space, '+', '-' and '#', as DQM paths have (they must survive every stage).
    HistSpec(
        "CSC",
        f"{CSC}/Digis/hStripNFired ME+1-1 #strips",
        (_bins(-0.5, 39.5, 40),),
        1.0,
        _fired_strips,
        ("fired strips",),
    ),
    HistSpec("L1T", f"{EMTF}/emtfTrackBX", (_bins(-3.5, 3.5, 7),), 0.8, _bx, ("BX",)),
    HistSpec("L1T", f"{EMTF}/emtfTrackEta", (_bins(-2.5, 2.5, 100),), 0.5, _eta, ("track #eta",)),
    HistSpec("L1T", f"{EMTF}/emtfTrackPhi", (_bins(-np.pi, np.pi, 126),), 0.5, _phi, ("track #phi",)),
    HistSpec("L1T", f"{EMTF}/emtfTrackPt", (_bins(0, 128, 128),), 0.5, _pt, ("track p_{T} [GeV]",)),
    HistSpec(
        "L1T",
        f"{EMTF}/emtfTrackOccupancy",
        (_bins(-2.5, 2.5, 50), _bins(-np.pi, np.pi, 36)),
        0.5,
        _occupancy,
        ("track #eta", "track #phi"),
    ),
    HistSpec(
        "L1T",
        f"{EMTF}/emtfTrackQualityVsMode",
        (_bins(-0.5, 15.5, 16), _bins(-0.5, 15.5, 16)),
        0.8,
        _quality_vs_mode,
        ("mode", "quality"),
    ),
]

#: Expected entries of a rate-1 histogram in a run of luminosity 1.
BASE_ENTRIES = 60_000


def sample_histogram(spec: HistSpec, plan: RunPlan, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """One run's contents of ``spec``: a multinomial draw of its expected shape."""
    dens = np.clip(spec.shape(plan, spec.edges), 0.0, None)
    total = dens.sum()
    n_entries = rng.poisson(BASE_ENTRIES * spec.rate * plan.lumi * scale)
    if total <= 0 or n_entries == 0:
        return np.zeros(dens.shape)
    counts = rng.multinomial(n_entries, (dens / total).reshape(-1))
    return counts.reshape(dens.shape).astype(np.float64)


def file_path(root: Path, plan: RunPlan, pd: str = PD, processing: str | None = None, version: int = 1) -> Path:
    name = (
        f"DQM_V{version:04d}_R{plan.run:09d}__{pd}__Run{plan.year}{plan.era}-"
        f"{processing or plan.processing}__DQMIO.root"
    )
    return root / f"Run{plan.year}" / pd / batch_of(plan.run, 100) / name


def write_run(path: Path, plan: RunPlan, specs: list[HistSpec], rng: np.random.Generator, scale: float) -> None:
    import uproot  # only for writing: planning the demo (plan_runs) needs no ROOT I/O

    from dqmflow.rootio import to_th1f, to_th2f

    path.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(path) as out:
        for spec in specs:
            values = sample_histogram(spec, plan, rng, scale)
            leaf = spec.path.rsplit("/", 1)[-1]
            key = spec.name.in_file(plan.run)
            if len(spec.edges) == 1:
                out[key] = to_th1f(leaf, values, spec.edges[0], axis_titles=spec.axis_titles)
            else:
                out[key] = to_th2f(leaf, values, spec.edges[0], spec.edges[1], axis_titles=spec.axis_titles)


def truth_rows(plans: list[RunPlan]) -> list[dict[str, object]]:
    """Per-run truth (``histogram`` empty) and per-(run, histogram) truth of the anomalies."""
    by_key = {spec.key: spec.name.column for spec in HISTOGRAMS}
    rows: list[dict[str, object]] = []
    for plan in plans:
        base = {"run_number": plan.run, "year": plan.year, "era": plan.era, "lumi": round(plan.lumi, 4)}
        rows.append({**base, "histogram": "", "anomaly": plan.anomaly, "strength": round(plan.strength, 3)})
        for key in ANOMALIES.get(plan.anomaly, ()):
            rows.append(
                {**base, "histogram": by_key[key], "anomaly": plan.anomaly, "strength": round(plan.strength, 3)}
            )
    return rows


def demo_contents() -> dict[str, list[str]]:
    contents: dict[str, list[str]] = {}
    for spec in HISTOGRAMS:
        contents.setdefault(spec.subsystem, []).append(spec.path)
    return contents


def demo_datasets(spec: DemoSpec, plans: list[RunPlan]) -> dict[str, object]:
    """AutoDQM_ML datasets JSON for the demo: every anomalous run is listed as bad."""
    years: dict[str, object] = {}
    for year in spec.years:
        bad = [str(p.run) for p in plans if p.year == year and p.anomaly]
        years[str(year)] = {
            "productions": [spec.processing[year].split("_")[-1].split("-")[0]],
            "bad_runs": bad,
            "comments": ["dqmflow demo: bad runs are the runs with a generated anomaly (see truth.csv)"],
        }
    return {"primary_datasets": [PD], "years": years}


def write_demo(
    out: str | Path,
    spec: DemoSpec | None = None,
    entries_scale: float = 1.0,
    extra_processings: bool = True,
) -> list[RunPlan]:
    """Write the demo tree below ``out`` (``out/DQMGUI_data``) plus ``out/truth.csv``.

    ``extra_processings`` also writes, for a few runs, a PromptReco file (not matched by the
    demo's productions) and an older ``-v1`` reprocessing, as found on EOS.
    """
    spec = spec or DemoSpec()
    out = Path(out)
    root = out / "DQMGUI_data"
    plans = plan_runs(spec)
    for plan in plans:
        rng = np.random.default_rng([spec.seed, plan.run])
        write_run(file_path(root, plan), plan, HISTOGRAMS, rng, entries_scale)
    if extra_processings:
        for plan in plans[:: max(len(plans) // 4, 1)]:
            rng = np.random.default_rng([spec.seed, plan.run, 1])
            write_run(file_path(root, plan, processing="PromptReco-v1"), plan, HISTOGRAMS, rng, entries_scale)
            older = plan.processing.replace("-v2", "-v1") if plan.processing.endswith("-v2") else None
            if older:
                write_run(file_path(root, plan, processing=older), plan, HISTOGRAMS, rng, entries_scale)
    with open(out / "truth.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["run_number", "year", "era", "lumi", "histogram", "anomaly", "strength"])
        writer.writeheader()
        writer.writerows(truth_rows(plans))
    return plans


def main(argv: list[str] | None = None) -> None:
    """``python -m dqmflow.demo OUT [--config-dir DIR]``: write the demo (and its JSON configs)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m dqmflow.demo",
        description="Write the demo DQM GUI tree (DQMGUI_data/), its truth.csv and, with --config-dir, "
        "matching contents and datasets JSON files.",
    )
    parser.add_argument("out", help="folder to write DQMGUI_data/ and truth.csv into")
    parser.add_argument("--runs-per-year", type=int, default=DemoSpec.runs_per_year)
    parser.add_argument("--seed", type=int, default=DemoSpec.seed)
    parser.add_argument("--config-dir", help="also write contents.json and datasets.json here")
    args = parser.parse_args(argv)
    spec = DemoSpec(runs_per_year=args.runs_per_year, seed=args.seed)
    plans = write_demo(args.out, spec)
    if args.config_dir:
        cfg = Path(args.config_dir)
        cfg.mkdir(parents=True, exist_ok=True)
        (cfg / "contents.json").write_text(json.dumps(demo_contents(), indent=4) + "\n")
        (cfg / "datasets.json").write_text(json.dumps(demo_datasets(spec, plans), indent=4) + "\n")


if __name__ == "__main__":
    main()
