"""``router-ml bench external``: the router on real outcomes of real models that nobody here wrote.

Reads ``../shared/benchmarks`` where it lies (evaluation only: nothing is trained on it or copied
into the repository) and skips cleanly when it is absent. Two parts:

- RouterBench (``routerbench/*_test.csv``): the three-rung ladder, accuracy and real dollars;
- RouteLLM (``routellm/{mmlu,gsm8k,mt_bench}``): the classifier's P(not SIMPLE) as its score for
  "needs the strong model", APGR and CPT(50%), CPT(80%), next to a random router and the oracle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from router_ml.eval_format import table
from router_ml.rules import RuleRouter
from router_ml.tiers import Tier

from .bench_routellm import load_routellm, score_two_model
from .bench_routerbench import routerbench_scores
from .benchmarks import find_benchmarks

__all__ = ["PARTS", "run_external", "format_external", "write_external_report"]

PARTS = ("routerbench", "routellm")


def run_external(
    benchmarks: str | Path | None = None,
    *,
    predictor: Any = None,
    model_dir: str | Path | None = None,
    parts: Sequence[str] = PARTS,
) -> dict[str, Any] | None:
    """Score the classifier (and the rule router, for reference) on the external benchmarks.

    Returns None when the benchmark folder is absent. ``predictor`` defaults to the model in
    ``model_dir`` (default: the configured ``models/``).
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    root = find_benchmarks(benchmarks)
    if root is None:
        return None
    if predictor is None:
        from router_ml.config import load_settings
        from router_ml.predictor import Predictor

        predictor = Predictor.load(model_dir or load_settings().model_dir)
    card = getattr(predictor, "card_", None) or {}
    budget = card.get("serving", {}).get("underroute_budget")

    def classify(prompts: list[str]) -> np.ndarray:
        return predictor.predict_proba(prompts)

    def rules(prompts: list[str]) -> list[Tier]:
        return RuleRouter().predict(prompts)

    report: dict[str, Any] = {
        "benchmarks": str(root),
        "model": {
            "path": str(getattr(predictor, "path_", "")),
            "created_at": card.get("created_at"),
            "embedder": card.get("embedder", {}).get("id"),
            "underroute_budget": budget,
        },
    }
    if "routerbench" in parts:
        folder = root / "routerbench"
        report["routerbench"] = (
            routerbench_scores(folder, classify, rules, underroute_budget=budget)
            if folder.is_dir()
            else {"skipped": f"{folder} is absent"}
        )
    if "routellm" in parts:
        folder = root / "routellm"
        sets = load_routellm(folder) if folder.is_dir() else []
        scorers = {
            "ml": lambda p: 1.0 - classify(p)[:, int(Tier.SIMPLE)],  # P(not SIMPLE)
            "rules": lambda p: np.asarray([float(t != Tier.SIMPLE) for t in rules(p)]),
        }
        report["routellm"] = {s.name: score_two_model(s, scorers) for s in sets} or {"skipped": f"{folder} has no data"}
    return report


# -- text -----------------------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def _ladder_lines(name: str, lad: dict[str, Any], md: bool) -> list[str]:
    rungs = " / ".join(lad["ladder"].values())
    left_out = (
        f" ({lad['missing_outcome']} more left out: a rung's score is missing)" if lad.get("missing_outcome") else ""
    )
    lines = [
        f"RouterBench ladder '{name}' ({rungs}): {lad['n']} prompts{left_out}, {lad['unsolved']} solved by no rung "
        f"(the oracle sends those to the cheapest rung); oracle tiers: "
        + ", ".join(f"{k} {v}" for k, v in lad["oracle_tiers"].items())
    ]
    rows = []
    for label, s in [
        *((f"always {m}", s) for m, s in lad["single"].items()),
        ("oracle (cheapest correct rung)", lad["oracle"]),
        *((f"router: {r}", s) for r, s in lad["routers"].items()),
    ]:
        share = " / ".join(f"{s['share'][t.name]:.0%}" for t in Tier)
        rows.append([label, _pct(s["accuracy"]), f"${s['cost_usd']:.3f}", f"${s['cost_per_1k_usd']:.3f}", share])
    lines += table(["routing", "accuracy", "$ total", "$ / 1k", "share S / M / C"], rows, markdown=md)
    rows = [
        [
            r,
            s["vs_oracle"]["n"],
            _pct(s["vs_oracle"]["accuracy"]),
            _pct(s["vs_oracle"]["underroute_rate"]),
            _pct(s["vs_oracle"]["overroute_rate"]),
        ]
        for r, s in lad["routers"].items()
    ]
    lines += ["", "routed tier against the oracle's tier (solved prompts only):"]
    lines += table(["router", "n", "same tier", "underroute", "overroute"], rows, markdown=md)
    if "curve" in lad:
        lines += ["", "classifier as the underroute budget moves:"]
        pts = [p for p in lad["curve"] if round(p["budget"] * 10, 6) == int(round(p["budget"] * 10, 6))]
        lines += table(
            ["budget", "accuracy", "$ / 1k", "share S / M / C"],
            [
                [
                    f"{p['budget']:.1f}",
                    _pct(p["accuracy"]),
                    f"${p['cost_per_1k_usd']:.3f}",
                    " / ".join(f"{p['share'][t.name]:.0%}" for t in Tier),
                ]
                for p in pts
            ],
            markdown=md,
        )
    if "by_group" in lad:
        lines += ["", "accuracy and $ / 1k by source benchmark:"]
        cols = list(next(iter(lad["by_group"].values()))["scores"])
        rows = [
            [g, v["n"]] + [f"{_pct(v['scores'][c]['accuracy'])} ${v['scores'][c]['cost_per_1k_usd']:.2f}" for c in cols]
            for g, v in lad["by_group"].items()
        ]
        lines += table(["benchmark", "n", *cols], rows, markdown=md)
    return lines


def _routellm_lines(sets: dict[str, Any], md: bool) -> list[str]:
    if "skipped" in sets:
        return [f"RouteLLM: skipped ({sets['skipped']})"]
    lines = [
        "RouteLLM two-model sets (weak Mixtral-8x7B, strong GPT-4-1106): score = P(not SIMPLE); "
        "APGR 0.5 = random, 1 = the strong model's quality from the first call; CPT = share of strong "
        "calls needed to recover 50% / 80% of the gap"
    ]
    rows = []
    for name, s in sets.items():
        for r, m in [*s["routers"].items(), ("random (20 seeds)", None), ("oracle", s["oracle"])]:
            if m is None:
                rnd = s["random"]
                rows.append(
                    [
                        name,
                        r,
                        f"{rnd['apgr']['mean']:.3f} ± {rnd['apgr']['sd']:.3f}",
                        _pct(rnd["cpt50"]["mean"]),
                        _pct(rnd["cpt80"]["mean"]),
                    ]
                )
            else:
                rows.append([name, r, _num(m["apgr"]), _pct(m["cpt50"]), _pct(m["cpt80"])])
    lines += table(["set", "router", "APGR", "CPT(50%)", "CPT(80%)"], rows, markdown=md, left=(0, 1))
    lines += [
        "",
        "sets: "
        + "; ".join(
            f"{n}: {s['n']} prompts ({s['dropped_contaminated']} contaminated dropped), {s['quality']} weak "
            f"{s['weak']['quality']:.3f}, strong {s['strong']['quality']:.3f}"
            for n, s in sets.items()
        ),
    ]
    return lines


def _lines(report: dict[str, Any], md: bool) -> list[str]:
    m = report["model"]
    lines = [
        f"benchmarks: {report['benchmarks']} (evaluation only)",
        f"model: {m['path']} (created {m['created_at']}, embedder {m['embedder']}, "
        f"underroute budget {m['underroute_budget']})",
    ]
    rb = report.get("routerbench")
    if rb is not None:
        lines.append("")
        if "skipped" in rb:
            lines.append(f"RouterBench: skipped ({rb['skipped']})")
        else:
            for name, lad in rb["ladders"].items():
                lines += _ladder_lines(name, lad, md) + [""]
    if "routellm" in report:
        lines += ["", *_routellm_lines(report["routellm"], md)]
    return lines


def format_external(report: dict[str, Any]) -> str:
    return "\n".join(_lines(report, False))


# -- report ---------------------------------------------------------------------------------------
def _plot_routerbench(rb: dict[str, Any], path: Path) -> str:
    from router_ml.eval_plots import pyplot, save

    plt = pyplot()
    ladders = rb["ladders"]
    fig, axes = plt.subplots(1, len(ladders), figsize=(6 * len(ladders), 4.4), squeeze=False)
    for ax, (name, lad) in zip(axes[0], ladders.items()):
        if "curve" in lad:
            ax.plot(
                [p["cost_per_1k_usd"] for p in lad["curve"]],
                [p["accuracy"] for p in lad["curve"]],
                "o-",
                ms=3,
                label="classifier, underroute budget 0 to 1",
            )
        for model, s in lad["single"].items():
            ax.plot([s["cost_per_1k_usd"]], [s["accuracy"]], "s", ms=7, label=f"always {model}")
        ax.plot(
            [lad["oracle"]["cost_per_1k_usd"]], [lad["oracle"]["accuracy"]], "*", ms=12, color="black", label="oracle"
        )
        for r, s in lad["routers"].items():
            ax.plot(
                [s["cost_per_1k_usd"]],
                [s["accuracy"]],
                "D^v"[list(lad["routers"]).index(r) % 3],
                ms=7,
                label=f"router: {r}",
            )
        ax.set_xlabel("dollars per 1,000 prompts (RouterBench costs)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"RouterBench ladder '{name}'", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, path)


def _plot_routellm(sets: dict[str, Any], path: Path) -> str:
    from router_ml.eval_plots import pyplot, save

    plt = pyplot()
    fig, axes = plt.subplots(1, len(sets), figsize=(4.6 * len(sets), 4), squeeze=False)
    for ax, (name, s) in zip(axes[0], sets.items()):
        for r, m in [*s["routers"].items(), ("oracle", s["oracle"])]:
            apgr = "-" if m["apgr"] is None else f"{m['apgr']:.3f}"
            ax.plot(m["curve"]["share_strong"], m["curve"]["quality"], "-", label=f"{r} (APGR {apgr})")
        w, g = s["weak"]["quality"], s["strong"]["quality"]
        ax.plot([0, 1], [w, g], "--", color="grey", label=f"random (APGR {s['random']['apgr']['mean']:.3f})")
        ax.axhline(w, color="grey", lw=0.6, ls=":")
        ax.axhline(g, color="red", lw=0.6, ls=":")
        ax.set_xlabel("share of calls to the strong model")
        ax.set_ylabel(s["quality"])
        ax.set_title(f"{name} (n={s['n']})", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, path)


def write_external_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """``external.md``, ``external.json`` and the plots in ``out_dir``; returns the Markdown file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = []
    rb = report.get("routerbench")
    if rb and "ladders" in rb:
        images.append(("RouterBench: accuracy against dollars", _plot_routerbench(rb, out / "routerbench.png")))
    rl = report.get("routellm")
    if rl and "skipped" not in rl:
        images.append(("RouteLLM: quality against the share of strong calls", _plot_routellm(rl, out / "routellm.png")))
    (out / "external.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = ["# External benchmarks", ""]
    for line in _lines(report, True):
        lines.append(line)
        if line and not line.startswith("|"):
            lines.append("")
    for caption, file in images:
        lines += [f"![{caption}]({file})", "", caption + ".", ""]
    lines.append("The same numbers, unrounded: `external.json`.")
    md = out / "external.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return md
