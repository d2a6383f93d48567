"""PNG plots and the Markdown report of ``router-ml evaluate --report DIR``.

matplotlib is imported here, on use, with the Agg backend (files only, no display needed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["pyplot", "write_report", "save"]

TIER_COLORS = {"SIMPLE": "#4c9f70", "MEDIUM": "#e0a030", "COMPLEX": "#c0504d"}


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, or a clear error naming what to install."""
    try:
        import matplotlib
    except ImportError as err:
        raise ConfigError("plots need matplotlib: pip install matplotlib") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path.name


def _confusion(report: dict[str, Any], path: Path) -> str:
    plt = pyplot()
    reports = report["routers"]
    names = list(reports)
    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names) + 0.6, 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        conf = reports[name]["confusion"]
        m, labels = conf["matrix"], conf["labels"]
        total_by_row = [max(sum(r), 1) for r in m]
        shares = [[v / t for v in r] for r, t in zip(m, total_by_row)]
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for i, row in enumerate(m):
            for j, v in enumerate(row):
                color = "white" if shares[i][j] > 0.6 else "black"
                style = "bold" if j < i else "normal"  # below the diagonal: underroutes
                ax.text(
                    j, i, f"{v}\n{shares[i][j]:.0%}", ha="center", va="center", color=color, fontsize=8, weight=style
                )
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("routed")
        ax.set_ylabel("true")
        ax.set_title(
            f"{name}\nacc {reports[name]['accuracy']:.1%}, under {reports[name]['underroute_rate']:.1%}", fontsize=9
        )
    fig.suptitle("Confusion (row shares; below the diagonal = underroute)", fontsize=10)
    return save(fig, path)


def _reliability(cl: dict[str, Any], path: Path) -> str:
    plt = pyplot()
    bins = cl["calibration"]["bins"]
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 5.4), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    mids = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    ax.bar(mids, [b["accuracy"] for b in bins], width=width * 0.9, alpha=0.6, label="accuracy in bin")
    ax.plot(
        [b["confidence"] for b in bins],
        [b["accuracy"] for b in bins],
        "o-",
        color="#c0504d",
        label="mean confidence vs accuracy",
    )
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"Reliability of the classifier (ECE {cl['calibration']['ece']:.3f})", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    hist.bar(mids, [b["n"] for b in bins], width=width * 0.9, color="grey")
    hist.set_xlabel("top-label confidence")
    hist.set_ylabel("rows")
    return save(fig, path)


def _accuracy_coverage(cl: dict[str, Any], path: Path) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4))
    for name, curve in cl["accuracy_coverage"].items():
        cov = [p["coverage"] for p in curve]
        line = ax.plot(cov, [p["accuracy"] for p in curve], "o-", ms=3, label=f"{name}: accuracy")[0]
        ax.plot(
            cov, [p["underroute_rate"] for p in curve], "s--", ms=3, color=line.get_color(), label=f"{name}: underroute"
        )
    thr = cl["serving"].get("confidence_threshold")
    if thr:
        kept = [p["coverage"] for p in cl["accuracy_coverage"]["argmax"] if p["threshold"] >= thr]
        if kept:
            ax.axvline(max(kept), color="grey", ls=":", label=f"fitted threshold {thr:.2f}")
    ax.set_xlabel("coverage (share of rows the classifier answers)")
    ax.set_ylabel("rate on the rows kept")
    ax.set_ylim(0, 1)
    ax.set_title("Selective prediction: accuracy against coverage", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save(fig, path)


def _cost_quality(report: dict[str, Any], path: Path) -> str:
    plt = pyplot()
    cl = report["classifier"]
    sweep = cl["budget_sweep"]
    fig, ax = plt.subplots(figsize=(6.4, 5))
    x = [p["routed_per_1k_usd"] for p in sweep]
    ax.plot(
        x, [p["accuracy"] for p in sweep], "o-", ms=3, color="#1f77b4", label="classifier: accuracy (budget 0 to 1)"
    )
    ax.plot(x, [p["underroute_rate"] for p in sweep], "s--", ms=3, color="#c0504d", label="classifier: underroute")
    budget = cl["serving"].get("underroute_budget")
    if budget is not None:
        near = min(sweep, key=lambda p: abs(p["budget"] - budget))
        ax.plot(
            [near["routed_per_1k_usd"]],
            [near["accuracy"]],
            "*",
            ms=12,
            color="black",
            label=f"fitted budget {budget:.2f}",
        )
    markers = {"rules": "^", "ml": "D", "chain-safe": "P", "chain-llm": "X", "llm": "v"}
    for name, r in report["routers"].items():
        if name in markers and "cost" in r:
            ax.plot([r["cost"]["routed_per_1k_usd"]], [r["accuracy"]], markers[name], ms=8, label=f"{name}")
    c, n = report["cost"], report["n"]
    for label, usd in (
        ("always Haiku", c["always_haiku_usd"] * 1000 / n),
        ("always Sonnet", c["always_sonnet_per_1k_usd"]),
        ("always Opus", c["always_opus_per_1k_usd"]),
        ("oracle", c["oracle_usd"] * 1000 / n),
    ):
        ax.axvline(usd, color="grey", ls=":", lw=0.8)
        ax.text(usd, 0.98, label, rotation=90, va="top", ha="right", fontsize=7, color="grey")
    ax.set_xlabel("dollars per 1,000 requests")
    ax.set_ylabel("rate")
    ax.set_ylim(0, 1)
    ax.set_title("Cost against quality as the underroute budget moves", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    ax.grid(alpha=0.3)
    return save(fig, path)


def write_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``report.md``, ``report.json`` (what ``--json`` prints) and the PNGs into ``out_dir``;
    return the Markdown file. Plots that need the classifier are skipped without one."""
    from .eval_format import format_markdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = {"confusion": _confusion(report, out / "confusion.png")}
    cl = report.get("classifier")
    if cl and "calibration" in cl:
        images["reliability"] = _reliability(cl, out / "reliability.png")
        images["accuracy_coverage"] = _accuracy_coverage(cl, out / "accuracy_coverage.png")
        images["cost_quality"] = _cost_quality(report, out / "cost_quality.png")
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md = out / "report.md"
    md.write_text(format_markdown(report, images), encoding="utf-8")
    return md
