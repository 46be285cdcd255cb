"""The card's figures, rendered headless with matplotlib into `assets/`."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaspeech.cards.stats import ConfigStats  # noqa: E402

PLOTS = {
    "duration_hist.png": "Duration per row",
    "kana_cer_hist.png": "Kana-CER per spoken turn",
    "dnsmos_ovrl_hist.png": "DNSMOS OVRL per spoken turn",
    "speaker_hours.png": "Hours per speaker",
    "reject_reasons.png": "Rejected input rows by reason",
    "caption_length_hist.png": "Caption length",
    "duplex_gap_hist.png": "Gaps and overlaps between turns (full-duplex configs)",
}


def _save(fig, path: Path) -> None:
    for ax in fig.axes:
        if ax.get_legend_handles_labels()[0]:
            fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _hist(ax, values, bins: int, value_range, label: str) -> None:
    """Histogram computed by numpy on the typed array; matplotlib only draws the bin counts."""
    counts, edges = np.histogram(np.frombuffer(values, dtype=np.float64), bins=bins, range=value_range)
    ax.stairs(counts, edges, fill=True, alpha=0.6, label=label)


def write_plots(stats: list[ConfigStats], assets: Path, captioned: bool = False) -> list[str]:
    """Write the corpus kind's plots; returns the file names (relative to `assets/`).

    TTS corpora get durations, kana-CER, DNSMOS OVRL, hours per speaker and reject reasons; captioned corpora get
    durations, caption lengths and reject reasons.
    """
    assets.mkdir(parents=True, exist_ok=True)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for s in stats:
        if len(s.durations):
            _hist(ax, s.durations, 30, None, f"{s.name} (n={s.rows})")
    ax.set_xlabel("seconds of audio per row")
    ax.set_ylabel("rows")
    ax.set_title(PLOTS["duration_hist.png"])
    _save(fig, assets / "duration_hist.png")

    if captioned:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for s in stats:
            if len(s.caption_words):
                _hist(ax, s.caption_words, 30, None, s.name)
        ax.set_xlabel("words per caption")
        ax.set_ylabel("clips")
        ax.set_title(PLOTS["caption_length_hist.png"])
        _save(fig, assets / "caption_length_hist.png")
        _reasons_plot(stats, assets)
        return [n for n in PLOTS if (assets / n).exists()]

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for s in stats:
        if len(s.kana_cers):
            _hist(ax, s.kana_cers, 20, (0.0, max(0.1, max(s.kana_cers))), s.name)
    threshold = next((s.plan.get("max_kana_cer") for s in stats if s.plan.get("max_kana_cer") is not None), None)
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_xlabel("kana-CER (kept turns)")
    ax.set_ylabel("turns")
    ax.set_title(PLOTS["kana_cer_hist.png"])
    _save(fig, assets / "kana_cer_hist.png")

    _ovrl_plot(stats, assets)
    if any(len(s.gaps) for s in stats):
        _gap_plot(stats, assets)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    speakers = sorted({k for s in stats for k in s.speaker_seconds})
    bottom = [0.0] * len(speakers)
    for s in stats:
        hours = [s.speaker_seconds.get(k, 0.0) / 3600 for k in speakers]
        ax.bar(speakers, hours, bottom=bottom, label=s.name)
        bottom = [b + h for b, h in zip(bottom, hours)]
    ax.set_ylabel("hours")
    ax.set_title(PLOTS["speaker_hours.png"])
    ax.tick_params(axis="x", rotation=90)
    _save(fig, assets / "speaker_hours.png")

    _reasons_plot(stats, assets)
    return [n for n in PLOTS if (assets / n).exists()]


def _gap_plot(stats: list[ConfigStats], assets: Path) -> None:
    """Each turn boundary's gap in a duplex config: negative values are overlaps (left of the line)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for s in stats:
        if len(s.gaps):
            _hist(ax, s.gaps, 40, (-1.0, 2.5), f"{s.name} (n={len(s.gaps)})")
    ax.axvline(0.0, color="k", linestyle="--", label="overlap | gap")
    ax.set_xlabel("next turn's start minus previous turn's end (s)")
    ax.set_ylabel("boundaries")
    ax.set_title(PLOTS["duplex_gap_hist.png"])
    _save(fig, assets / "duplex_gap_hist.png")


def _ovrl_plot(stats: list[ConfigStats], assets: Path) -> None:
    """OVRL per kept spoken turn, one histogram per config, with the filter's (or the reference) threshold."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    scored = [s for s in stats if len(s.quality["ovrl"])]
    for s in scored:
        _hist(ax, s.quality["ovrl"], 32, (1.0, 5.0), f"{s.name} (n={len(s.quality['ovrl'])})")
    for bound in sorted({s.min_dnsmos for s in scored}):
        filtered = any(s.plan.get("min_dnsmos") == bound for s in scored)
        ax.axvline(bound, color="k", linestyle="--" if filtered else ":",
                   label=f"--min-dnsmos {bound:g}" if filtered else f"reference {bound:g} (Emilia-Pipe)")
    if not scored:
        ax.text(0.5, 0.5, "not scored (--quality none): run `jaspeech rescore`", ha="center", va="center",
                transform=ax.transAxes)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xlim(1.0, 5.0)
    ax.set_xlabel("DNSMOS P.835 OVRL (kept turns)")
    ax.set_ylabel("turns")
    ax.set_title(PLOTS["dnsmos_ovrl_hist.png"])
    _save(fig, assets / "dnsmos_ovrl_hist.png")


def _reasons_plot(stats: list[ConfigStats], assets: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    reasons = sorted({r for s in stats for r in s.reject_reasons})
    left = [0] * len(reasons)
    for s in stats:
        counts = [s.reject_reasons.get(r, 0) for r in reasons]
        ax.barh(reasons, counts, left=left, label=s.name)
        left = [a + b for a, b in zip(left, counts)]
    ax.set_xlabel("input rows")
    ax.set_title(PLOTS["reject_reasons.png"])
    _save(fig, assets / "reject_reasons.png")
