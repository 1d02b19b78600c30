"""Matplotlib figures of the assessment (written as PNG, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dqmflow.metrics import RocResult, clip_infinite

__all__ = ["plot_reconstructions", "plot_roc", "plot_run_level", "plot_score_distributions"]


def _save(fig: plt.Figure, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)


def plot_roc(result: RocResult, title: str, path: str | Path, label: str = "") -> None:
    """ROC curve with its ±1σ bootstrap band and the TPR·(1-FPR) working point."""
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    if not np.isnan(result.auc):
        ax.fill_between(
            result.grid,
            np.clip(result.tpr_mean - result.tpr_std, 0, 1),
            np.clip(result.tpr_mean + result.tpr_std, 0, 1),
            alpha=0.3,
            label="±1σ (bootstrap)",
        )
        ax.plot(result.fpr, result.tpr, lw=2, label=f"{label} AUC = {result.auc:.3f} ± {result.auc_std:.3f}")
        wp = result.best_working_point
        ax.plot(*wp, "o", color="black", label=f"best WP: FPR {wp[0]:.2f}, TPR {wp[1]:.2f}")
    else:
        ax.text(0.5, 0.5, "needs good and bad runs", ha="center", transform=ax.transAxes)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(
        xlabel="false-alarm rate (good runs flagged)",
        ylabel="detection efficiency (bad runs flagged)",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=f"{title}\n{result.n_good} good, {result.n_bad} bad runs",
    )
    ax.title.set_fontsize(8)
    ax.legend(loc="lower right", fontsize=7)
    _save(fig, path)


def _bins(values: np.ndarray) -> tuple[np.ndarray, bool]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return np.linspace(0, 1, 2), False
    positive = finite[finite > 0]
    if len(positive) == len(finite) and positive.max() / positive.min() > 100:
        return np.geomspace(positive.min(), positive.max(), 40), True
    lo, hi = finite.min(), finite.max()
    return np.linspace(lo, hi if hi > lo else lo + 1, 40), False


def plot_score_distributions(frame: pd.DataFrame, title: str, path: str | Path) -> None:
    """Score distributions: good vs bad runs (test split) and train vs test (good runs)."""
    scores = clip_infinite(frame["score"].to_numpy())
    bins, logx = _bins(scores)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
    groups = [
        ("test, good", (frame["split"] == "test") & (frame["label"] == 0)),
        ("test, bad", (frame["split"] == "test") & (frame["label"] == 1)),
        ("test, unlabelled", (frame["split"] == "test") & (frame["label"] == -1)),
    ]
    for name, mask in groups:
        if mask.any():
            axes[0].hist(
                scores[mask.to_numpy()],
                bins=bins,
                histtype="step",
                lw=1.5,
                density=True,
                label=f"{name} ({mask.sum()})",
            )
    splits = [("train", "train"), ("calibration", "calibration"), ("test", "test"), ("low statistics", "low_stats")]
    for name, split in splits:
        mask = ((frame["split"] == split) & (frame["label"] != 1)).to_numpy()
        if mask.any():
            axes[1].hist(scores[mask], bins=bins, histtype="step", lw=1.5, density=True, label=f"{name} ({mask.sum()})")
    for ax, sub in zip(axes, ("good vs bad", "train vs test (not bad)"), strict=True):
        ax.set(xlabel="anomaly score", ylabel="runs (normalised)", title=sub, yscale="log")
        if logx:
            ax.set_xscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    _save(fig, path)


def plot_reconstructions(
    originals: np.ndarray,
    reconstructions: np.ndarray | None,
    edges: Sequence[np.ndarray],
    runs: Sequence[int],
    scores: Sequence[float],
    title: str,
    path: str | Path,
    reco_label: str = "reconstruction",
) -> None:
    """Original vs reconstructed (unit-area) histograms of the given runs.

    1D: overlaid steps, one panel per run. 2D: original, reconstruction and difference maps.
    """
    n = len(runs)
    if n == 0:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no scored run", ha="center")
        ax.axis("off")
        _save(fig, path)
        return
    if originals.ndim == 2:
        fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.0), squeeze=False)
        for ax, orig, i in zip(axes[0], originals, range(n), strict=True):
            ax.stairs(orig, edges[0], label="run", lw=1.5)
            if reconstructions is not None:
                ax.stairs(reconstructions[i], edges[0], label=reco_label, lw=1.2, ls="--")
            ax.set_title(f"run {runs[i]}  score {scores[i]:.3g}", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0][0].legend(fontsize=7)
    else:
        cols = 3 if reconstructions is not None else 1
        fig, axes = plt.subplots(n, cols, figsize=(3.3 * cols, 2.7 * n), squeeze=False)
        extent = (edges[0][0], edges[0][-1], edges[1][0], edges[1][-1])
        for i in range(n):
            panels = [(originals[i], f"run {runs[i]} (score {scores[i]:.3g})")]
            if reconstructions is not None:
                panels += [(reconstructions[i], reco_label), (originals[i] - reconstructions[i], "run - " + reco_label)]
            top = max(float(np.max(p[0])) for p in panels[:2]) or 1.0
            for j, (img, name) in enumerate(panels):
                ax = axes[i][j]
                diff = j == 2
                lim = float(np.abs(img).max()) or 1.0
                image = ax.imshow(
                    img.T,
                    origin="lower",
                    aspect="auto",
                    extent=extent,
                    interpolation="nearest",
                    cmap="RdBu_r" if diff else "viridis",
                    vmin=-lim if diff else 0.0,
                    vmax=lim if diff else top,
                )
                if j != 0:
                    fig.colorbar(image, ax=ax, fraction=0.08, pad=0.02)
                ax.set_title(name, fontsize=8)
                ax.tick_params(labelsize=7)
        fig.subplots_adjust(hspace=0.45, wspace=0.3)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def plot_run_level(results: dict[str, RocResult], title: str, path: str | Path) -> None:
    """Run-level ROC curves of several ways to combine histogram scores."""
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for name, res in results.items():
        if np.isnan(res.auc):
            continue
        ax.fill_between(
            res.grid, np.clip(res.tpr_mean - res.tpr_std, 0, 1), np.clip(res.tpr_mean + res.tpr_std, 0, 1), alpha=0.2
        )
        ax.plot(res.fpr, res.tpr, lw=1.8, label=f"{name}: AUC {res.auc:.3f} ± {res.auc_std:.3f}")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="good runs flagged", ylabel="bad runs flagged", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.title.set_fontsize(8)
    ax.legend(loc="lower right", fontsize=7)
    _save(fig, path)
