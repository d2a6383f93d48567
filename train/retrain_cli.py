"""``router-ml retrain`` and ``router-ml drift``: thin CLI over ``train.retrain`` and ``train.drift``.

``retrain`` exit codes: 0 the challenger was promoted (or there was nothing new to learn from);
3 the gate refused it (the champion stays active); 1 an error, reported in one line. The API key
comes only from the environment (``ANTHROPIC_API_KEY``). ``drift`` exits 0, or 2 with ``--strict``
when it warns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["register", "retrain", "drift"]

Logs = Annotated[Path, typer.Option("--logs", help="The decision log (routes.db) or a requests.jsonl.")]
Data = Annotated[Path, typer.Option("--data", help="The labeled data directory.")]
Models = Annotated[Optional[Path], typer.Option("--models", help="The models directory (default: the configured one).")]
Config = Annotated[Optional[Path], typer.Option("--config", help="router-ml.toml with models and prices.")]


def retrain(
    logs: Logs,
    labeler: Annotated[str, typer.Option("--labeler", help="haiku, opus or outcome.")] = "haiku",
    budget_usd: Annotated[float, typer.Option("--budget-usd", help="Labeling budget of this run.")] = 10.0,
    max_new: Annotated[int, typer.Option("--max-new", help="New labels to buy at most.")] = 2000,
    data: Data = Path("data"),
    models: Models = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Read the log after this ISO time or duration (7d); default: since the active model.")] = None,
    precedence: Annotated[str, typer.Option(
        "--precedence", help="Label sources, most trusted first.")] = "feedback,opus,outcome,haiku,author",
    max_underroute_rise: Annotated[float, typer.Option(help="Gate: tolerated rise of the underroute rate.")] = 0.01,
    max_accuracy_drop: Annotated[float, typer.Option(help="Gate: tolerated drop of accuracy.")] = 0.02,
    noise_z: Annotated[float, typer.Option(help="Gate: standard errors of noise added to the tolerances.")] = 1.645,
    min_gate_rows: Annotated[int, typer.Option(help="Gate: smallest evaluation set that counts.")] = 20,
    holdout_fraction: Annotated[float, typer.Option(help="Share of the new labels held out to evaluate.")] = 0.25,
    low_confidence: Annotated[float, typer.Option(help="Confidence below which a decision is unsure.")] = 0.6,
    random_share: Annotated[float, typer.Option(help="Share of --max-new kept for a uniform random sample.")] = 0.2,
    frozen_eval: Annotated[Optional[Path], typer.Option(
        "--frozen-eval", help="Labeled evaluation set (default: the data's splits.json dev rows).")] = None,
    no_promote: Annotated[bool, typer.Option(
        "--no-promote", help="Gate and store, never switch the active model.")] = False,
    cache: Annotated[Path, typer.Option("--cache", help="SQLite label cache.")] = Path(".cache/labels.sqlite"),
    work: Annotated[Path, typer.Option("--work", help="Where the run keeps its files.")] = Path(".cache/retrain"),
    concurrency: Annotated[int, typer.Option("--concurrency", help="Labeling calls in flight.")] = 8,
    model: Annotated[Optional[str], typer.Option("--model", help="Override the labeler's model.")] = None,
    base_url: Annotated[Optional[str], typer.Option(
        "--base-url", help="API address (default ANTHROPIC_BASE_URL).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random sample, split and head.")] = 0,
    config: Config = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Retrain on fresh logs: select, reuse and buy labels, merge, train, gate, version."""
    from router_ml.cli import fail, run  # here: router_ml.cli loads this module as a plugin
    from router_ml.config import load_settings

    from .retrain import retrain as run_retrain
    from .retrain_gate import GatePolicy
    from .retrain_select import SelectionConfig

    settings = run(load_settings, config)
    policy = run(GatePolicy, max_underroute_rise=max_underroute_rise, max_accuracy_drop=max_accuracy_drop,
                 noise_z=noise_z, min_rows=min_gate_rows)
    selection = run(SelectionConfig, low_confidence=low_confidence, random_share=random_share, seed=seed)
    try:
        report = run(
            run_retrain, logs, data=data, models=models, labeler=labeler, budget_usd=budget_usd, max_new=max_new,
            settings=settings, precedence=precedence, policy=policy, selection=selection,
            holdout_fraction=holdout_fraction, frozen_eval=frozen_eval, since=since, work=work, cache=cache,
            concurrency=concurrency, base_url=base_url, labeler_model=model, seed=seed, promote=not no_promote,
            progress=not as_json,
        )
    except KeyboardInterrupt:
        fail(f"interrupted; the active model is unchanged and labels bought so far are in {cache}: "
             "re-run the same command to resume")
    typer.echo(json.dumps(report.to_dict(), indent=2, default=str) if as_json else report.summary())
    if report.gate is not None and not report.gate.promote:
        raise typer.Exit(3)


def drift(
    logs: Logs,
    data: Data = Path("data"),
    models: Models = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="ISO time or duration (7d, 24h); 'all' for all.")] = "7d",
    low_confidence: Annotated[float, typer.Option(help="Confidence below which a decision is unsure.")] = 0.6,
    max_fallback_shift: Annotated[float, typer.Option(help="Warn when the fallback rate moves more than this.")] = 0.10,
    max_low_confidence_shift: Annotated[float, typer.Option(
        help="Warn when the low-confidence share moves more than this.")] = 0.10,
    no_score: Annotated[bool, typer.Option("--no-score", help="Do not load the model to score the reference.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 2 when there is a warning.")] = False,
    config: Config = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Recent traffic against the training set: tier, confidence, fallback, length and language mix."""
    from router_ml.cli import run
    from router_ml.config import load_settings

    from .drift import DriftThresholds, drift_report, format_drift

    settings = run(load_settings, config)
    thresholds = run(DriftThresholds, low_confidence=low_confidence, max_fallback_shift=max_fallback_shift,
                     max_low_confidence_shift=max_low_confidence_shift)
    report = run(drift_report, logs, data=data, models=models, since=None if since == "all" else since,
                 settings=settings, thresholds=thresholds, score_reference=not no_score)
    typer.echo(json.dumps(report, indent=2) if as_json else format_drift(report))
    if strict and report["warnings"]:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add ``retrain`` and ``drift`` to the ``router-ml`` app (entry point ``router_ml.commands``)."""
    app.command("retrain")(retrain)
    app.command("drift")(drift)
