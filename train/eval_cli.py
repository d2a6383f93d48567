"""CLI commands of the evaluation side: ``bench external`` and ``data import-outcomes``.

Joined to ``router-ml`` through the ``router_ml.commands`` entry point (``register``); thin, each
hands off to ``bench_external`` or ``outcomes``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from router_ml.cli import fail, run

bench_app = typer.Typer(help="Benchmarks of the router.", no_args_is_help=True)


@bench_app.command("external")
def external(
    benchmarks: Annotated[
        Optional[Path], typer.Option("--benchmarks", help="The shared benchmark folder (default ../shared/benchmarks).")
    ] = None,
    parts: Annotated[
        Optional[list[str]], typer.Option("--part", help="routerbench or routellm (repeatable; default both).")
    ] = None,
    report_dir: Annotated[
        Optional[Path], typer.Option("--report", help="Write external.md, external.json and plots here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    model_dir: Annotated[
        Optional[Path], typer.Option("--model-dir", help="Model directory (default: models/).")
    ] = None,
) -> None:
    """Score the router on real per-prompt outcomes: the RouterBench ladder and RouteLLM's APGR/CPT."""
    from .bench_external import PARTS, format_external, run_external, write_external_report

    report = run(run_external, benchmarks, model_dir=model_dir, parts=parts or PARTS)
    if report is None:
        where = benchmarks or "../shared/benchmarks"
        msg = f"skipped: no benchmark folder at {where}"
        typer.echo(json.dumps({"skipped": msg}) if as_json else msg)
        return
    if report_dir is not None:
        md = run(write_external_report, report, report_dir)
        if not as_json:
            typer.echo(f"wrote {md} and its plots")
    typer.echo(json.dumps(report, indent=2) if as_json else format_external(report))


def import_outcomes(
    sources: Annotated[
        list[Path], typer.Argument(help="Outcome CSVs: RouterBench-style wide, or long prompt,model,correct,cost.")
    ],
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write (the project's data format).")],
    ladder: Annotated[
        str, typer.Option("--ladder", help="Models for SIMPLE,MEDIUM,COMPLEX, cheapest first.")
    ] = "claude-instant-v1,claude-v1,gpt-4-1106-preview",
    fmt: Annotated[str, typer.Option("--format", help="auto, wide or long.")] = "auto",
    unsolved: Annotated[
        str, typer.Option("--unsolved", help="Prompts no rung solved: 'skip' (default) or a tier to label them with.")
    ] = "skip",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Label prompts by the cheapest model of a ladder that answered them correctly."""
    from router_ml.tiers import Tier

    from .outcomes import Ladder
    from .outcomes import import_outcomes as do_import

    lad = run(Ladder.parse, ladder)
    unsolved_tier = None if unsolved.lower() == "skip" else run(Tier.parse, unsolved)
    if out.suffix != ".jsonl":
        fail(f"--out must be a .jsonl file, got {out}")
    summary = run(do_import, sources, out, ladder=lad, fmt=fmt, unsolved_tier=unsolved_tier)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    tiers = ", ".join(f"{k} {v}" for k, v in summary["tiers"].items())
    kept = f"kept as {summary['unsolved_kept_as']}" if summary["unsolved_kept_as"] else "left out"
    typer.echo(
        f"wrote {summary['written']} of {summary['read']} prompts to {summary['out']} ({tiers}); "
        f"{summary['unsolved']} solved by no rung ({kept}); {summary['incomplete']} missing a rung's outcome (left out)"
    )


def register(app: typer.Typer) -> None:
    from .cli import data_app  # the `data` group that train/cli.py registers

    app.add_typer(bench_app, name="bench")
    data_app.command("import-outcomes")(import_outcomes)
