"""Render an ``evaluate`` report as terminal text or Markdown: the same tables, two syntaxes, so
the printed numbers and the written report cannot drift apart."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["format_text", "format_markdown", "table", "router_rows"]

_HEAD = ["router", "n", "accuracy", "underroute", "overroute", "$ / 1k req", "vs Opus", "vs Sonnet"]


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, markdown: bool = False, left: Sequence[int] = (0,)
) -> list[str]:
    """A table as lines: Markdown pipes, or space-aligned columns (``left`` columns left-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    if markdown:
        lines = ["", "| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return lines + ["| " + " | ".join(r) + " |" for r in cells[1:]] + [""]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return [
        "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in cells
    ]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:.2f}"


def router_rows(reports: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for name, r in reports.items():
        c = r.get("cost", {})
        label = name
        fb = r.get("fallback")
        if fb:
            label += f" (fallback {fb['share']:.0%})"
        rows.append(
            [label, r["n"], *_rates(r), _usd(c.get("routed_per_1k_usd")), _pct(c.get("savings_vs_opus")),
             _pct(c.get("savings_vs_sonnet"))]
        )
    return rows


def _rates(r: dict[str, Any]) -> list[str]:
    return [_pct(r["accuracy"]), _pct(r["underroute_rate"]), _pct(r["overroute_rate"])]


def _reference(report: dict[str, Any]) -> str:
    c, n = report.get("cost"), report["n"]
    if not c or not n:
        return ""
    k = 1000 / n
    return (
        f"reference, $ per 1k requests: always-Haiku {_usd(c['always_haiku_usd'] * k)}, always-Sonnet "
        f"{_usd(c['always_sonnet_per_1k_usd'])}, always-Opus {_usd(c['always_opus_per_1k_usd'])}, "
        f"oracle (true tier) {_usd(c['oracle_usd'] * k)}"
    )


def _per_tier(reports: dict[str, dict[str, Any]], md: bool) -> list[str]:
    tiers = list(next(iter(reports.values()))["per_tier"])
    head = ["router"] + [f"{t} (n={next(iter(reports.values()))['per_tier'][t]['n']})" for t in tiers]
    rows = [
        [name]
        + [
            f"{_pct(r['per_tier'][t]['accuracy'])} / {_pct(r['per_tier'][t]['underroute_rate'])} / "
            f"{_pct(r['per_tier'][t]['overroute_rate'])}"
            for t in tiers
        ]
        for name, r in reports.items()
    ]
    return table(head, rows, markdown=md)


def _confusion(report: dict[str, Any], md: bool) -> list[str]:
    labels = report["confusion"]["labels"]
    rows = [[f"true {a}"] + row for a, row in zip(labels, report["confusion"]["matrix"])]
    return table(["", *(f"routed {x}" for x in labels)], rows, markdown=md)


def _fallback(reports: dict[str, dict[str, Any]], md: bool) -> list[str]:
    out = []
    for name, r in reports.items():
        fb = r.get("fallback")
        if not fb:
            continue
        out.append(
            f"{name}: {fb['n']} rows ({fb['share']:.1%}) under the confidence threshold went to the fallback "
            f"({', '.join(f'{k} {v}' for k, v in sorted(fb['sources'].items()))}); they count in the row above "
            "with the tier the fallback gave them."
        )
        rows = []
        for what, key in (
            ("confident rows (classifier)", "confident_rows"),
            ("fallback rows, as routed", "fallback_rows"),
            ("fallback rows, had the classifier answered", "fallback_rows_if_classifier"),
        ):
            s = fb.get(key)
            if s:
                rows.append([what, s["n"], *_rates(s), _usd(s.get("routed_per_1k_usd"))])
        out += table(["rows", "n", "accuracy", "underroute", "overroute", "$ / 1k"], rows, markdown=md)
        rc = r.get("routing_cost")
        if rc and rc["usd"]:
            out.append(f"LLM routing calls cost {_usd(rc['per_1k_usd'])} per 1k requests on top.")
        out.append("")
    return out


def _classifier(report: dict[str, Any], md: bool) -> list[str]:
    cl = report.get("classifier")
    if not cl or "calibration" not in cl:
        return []
    s = cl["serving"]
    out = [
        f"serving numbers ({s['source']}): underroute budget {s['underroute_budget']}, "
        f"confidence threshold {s['confidence_threshold']}",
        f"calibration: top-label ECE {cl['calibration']['ece']:.3f} (10 equal-width bins)",
        "",
        "accuracy against coverage (the most confident share of rows kept):",
    ]
    curves = cl["accuracy_coverage"]
    keep = {0.5, 0.7, 0.8, 0.9, 1.0}
    head = ["coverage", "min confidence"] + [f"{k} accuracy" for k in curves] + [f"{k} underroute" for k in curves]
    rows = []
    for i, pt in enumerate(curves["argmax"]):
        if round(pt["coverage"], 2) in keep:
            rows.append(
                [f"{pt['coverage']:.0%}", f"{pt['threshold']:.3f}"]
                + [_pct(curves[k][i]["accuracy"]) for k in curves]
                + [_pct(curves[k][i]["underroute_rate"]) for k in curves]
            )
    out += table(head, rows, markdown=md)
    out += ["", "cost and quality as the underroute budget moves (classifier, no threshold):"]
    rows = [
        [
            f"{p['budget']:.2f}",
            _pct(p["accuracy"]),
            _pct(p["underroute_rate"]),
            _pct(p["overroute_rate"]),
            _usd(p.get("routed_per_1k_usd")),
        ]
        for p in cl["budget_sweep"]
        if round(p["budget"] * 10, 6) == int(round(p["budget"] * 10, 6))
    ]
    out += table(["budget", "accuracy", "underroute", "overroute", "$ / 1k"], rows, markdown=md)
    return out


def _groups(report: dict[str, Any], md: bool, min_n: int, limit: int) -> list[str]:
    out = []
    for key, groups in report.get("by", {}).items():
        names = list(report["routers"])
        shown = [(g, v) for g, v in groups.items() if v["n"] >= min_n][:limit]
        out += ["", f"by {key} (groups with at least {min_n} rows, largest first; accuracy / underroute):"]
        rows = [
            [g, v["n"]]
            + [f"{_pct(v['routers'][n]['accuracy'])} / {_pct(v['routers'][n]['underroute_rate'])}" for n in names]
            for g, v in shown
        ]
        out += table([key, "n", *names], rows, markdown=md)
        hidden = len(groups) - len(shown)
        if hidden:
            out.append(
                f"({hidden} more groups in the JSON; groups under {report.get('by_min_rows', 1)} rows are left out)"
            )
    return out


def _errors(report: dict[str, Any], md: bool, limit: int) -> list[str]:
    we = report.get("worst_errors")
    if not we or not we["rows"]:
        return []
    out = ["", f"worst errors of {we['router']} (underroutes first, most confident first):"]
    rows = [
        [
            e["kind"],
            f"{e['true']} -> {e['routed']}",
            f"{e['confidence']:.2f}",
            e.get("id", ""),
            (e.get("prompt", "")[:90]).replace("|", "/"),
        ]
        for e in we["rows"][:limit]
    ]
    out += table(["kind", "true -> routed", "conf", "id", "prompt"], rows, markdown=md, left=(0, 1, 3, 4))
    return out


def _body(report: dict[str, Any], md: bool, *, min_group: int, group_limit: int, error_limit: int) -> list[str]:
    reports = report.get("routers") or {report.get("router", "?"): report}
    lines = [f"data: {report.get('selection', report.get('data', ''))}"]
    lines += [f"note: {n}" for n in report.get("notes", [])]
    lines += ["", *table(_HEAD, router_rows(reports), markdown=md)]
    ref = _reference(report)
    if ref:
        lines += ["", ref]
    lines += ["", "per true tier (accuracy / underroute / overroute):", *_per_tier(reports, md)]
    lines += ["", f"confusion (rows: true, columns: routed) of {report.get('router', '?')}:", *_confusion(report, md)]
    fb = _fallback(reports, md)
    if fb:
        lines += ["", *fb]
    cl = _classifier(report, md)
    if cl:
        lines += ["", *cl]
    lines += _groups(report, md, min_group, group_limit)
    lines += _errors(report, md, error_limit)
    if report.get("cost"):
        c = report["cost"]
        lines += [
            "",
            f"savings of {report.get('router')}: {c['savings_vs_opus']:.1%} vs always-Opus, "
            f"{c['savings_vs_sonnet']:.1%} vs always-Sonnet",
        ]
    return lines


def format_text(report: dict[str, Any]) -> str:
    """What ``router-ml evaluate`` prints."""
    return "\n".join(_body(report, False, min_group=10, group_limit=30, error_limit=10))


def format_markdown(report: dict[str, Any], images: dict[str, str]) -> str:
    """The report's Markdown; ``images`` maps a plot name to its file, placed after its section."""
    lines = ["# Routing evaluation", ""]
    for line in _body(report, True, min_group=5, group_limit=60, error_limit=20):
        lines.append(line)
        if line and not line.startswith("|"):
            lines.append("")  # each sentence its own paragraph; tables need blank lines around them
    if images:
        lines += ["", "## Plots", ""]
        captions = {
            "confusion": "Confusion matrices (rows: true tier, columns: routed tier).",
            "reliability": "Reliability diagram of the classifier's top-label probability.",
            "accuracy_coverage": "Accuracy and underroute of the rows kept as the confidence threshold rises.",
            "cost_quality": "Accuracy and underroute against dollars per 1,000 requests as the underroute budget "
            "moves.",
        }
        for name, file in images.items():
            lines += [f"![{name}]({file})", "", captions.get(name, ""), ""]
    lines += ["", "The same numbers, unrounded: `report.json`."]
    return "\n".join(lines) + "\n"
