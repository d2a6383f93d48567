"""Pipeline commands for the ``router-ml`` CLI: ``train`` and ``data check|split``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from router_ml.cli import fail, run

from .calibration import DEFAULT_FALLBACK_RATE, DEFAULT_TARGET_UNDERROUTE

data_app = typer.Typer(help="Inspect and prepare labeled data.", no_args_is_help=True)


def train(
    data: Annotated[Path, typer.Option("--data", help="Labeled JSONL file or directory.")] = Path("data"),
    out: Annotated[Path, typer.Option("--out", help="Where to write the model artifact.")] = Path("models"),
    seed: Annotated[int, typer.Option(help="Seed for the split and the head.")] = 0,
    embedder_path: Annotated[
        Optional[Path], typer.Option("--embedder", help="Another sentence-transformers model directory.")
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="Runtime embedder: static (distilled from MiniLM; the default, well under a millisecond), "
            "onnx (MiniLM int8: ~50x slower, ~2 points more accurate with the budget) or st "
            "(sentence-transformers fp32; serving needs torch).",
        ),
    ] = "static",
    lexical: Annotated[
        Optional[bool],
        typer.Option(
            "--lexical/--no-lexical",
            help="Stack a TF-IDF head over the token ids (default: on for static, which gives them).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
) -> None:
    """Train the classifier on labeled data and write models/ (card + head + the backend's files)."""
    import tempfile

    from .embedders import build_embedder
    from .trainer import train_model

    from router_ml.registry import ModelRegistry

    # The onnx / static files are built into a work dir that lives until the artifact is saved.
    work = tempfile.TemporaryDirectory(prefix="router-ml-embedder-")
    embedder = None
    if backend != "st" or embedder_path:
        embedder = run(build_embedder, backend, work.name, model_dir=embedder_path)
    if ModelRegistry(out).layout == "versioned":  # a new version, made active (docs/retraining.md)
        from .retrain import train_new_version

        _, result = run(train_new_version, data, out, embedder=embedder, seed=seed, progress=not as_json, lexical=lexical)
    else:
        result = run(train_model, data, out, embedder=embedder, seed=seed, progress=not as_json, lexical=lexical)
    if as_json:
        typer.echo(json.dumps(result.card, indent=2))
        return
    t = result.card["training"]
    typer.echo(f"trained on {t['n_train']} rows, dev {t['n_dev']}; wrote {result.out}")
    lex = result.card.get("lexical_training")
    if lex:
        typer.echo(f"lexical head: {lex['features']:,} unigram and bigram features, C {lex['C']:g}")
    for name, rep in (("classifier", result.dev_report), ("rules", result.rules_dev_report)):
        typer.echo(
            f"dev {name:>10}: accuracy {rep['accuracy']:.3f}  underroute {rep['underroute_rate']:.3f}  "
            f"overroute {rep['overroute_rate']:.3f}"
        )
    s, m = result.card["serving"], result.dev_serving
    b, rest = m["classifier_budget"], m["confident_rest"]
    typer.echo(
        f"serving: temperature {s['temperature']:.2f} (dev ECE {m['ece_before']:.3f} -> {m['ece_after']:.3f}), "
        f"underroute budget {s['underroute_budget']:.3f}, confidence threshold {s['confidence_threshold']:.3f}\n"
        f"dev with budget: accuracy {b['accuracy']:.3f}  underroute {b['underroute_rate']:.3f}; "
        f"to the LLM fallback {m['fallback_share']:.1%}, the rest: accuracy {rest['accuracy']:.3f}  "
        f"underroute {rest['underroute_rate']:.3f}"
    )


@data_app.command("check")
def data_check(
    path: Annotated[Path, typer.Argument(help="Data file or directory.")] = Path("data"),
    as_json: Annotated[bool, typer.Option("--json")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 when duplicates are found.")] = True,
) -> None:
    """Validate the schema and report duplicates and composition."""
    from .datacheck import check_data, format_check

    report = run(check_data, path)
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False) if as_json else format_check(report))
    if strict and report["problems"]:
        fail("; ".join(report["problems"]))


@data_app.command("split")
def data_split(
    path: Annotated[Path, typer.Argument(help="Data directory.")] = Path("data"),
    dev_fraction: Annotated[float, typer.Option(help="Share of each tier held out.")] = 0.2,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write data/splits.json: a fixed, stratified dev split (run once; commit it)."""
    from router_ml.data import load_rows

    from .splits import stratified_dev_ids, write_split

    if not path.is_dir():
        fail(f"{path}: expected a data directory")
    rows = run(load_rows, path)
    dev = run(stratified_dev_ids, rows, dev_fraction=dev_fraction, seed=seed)
    out = write_split(path, dev, note=f"stratified by tier, {dev_fraction:.0%} per tier, seed {seed}")
    typer.echo(f"wrote {out}: {len(dev)} dev ids of {len(rows)} rows")


def calibrate(
    data: Annotated[Path, typer.Option("--data", help="Held-out labeled file, or a data dir (its dev split).")] = Path("data"),
    model_dir: Annotated[Path, typer.Option("--model-dir", help="Model to recalibrate in place.")] = Path("models"),
    target_underroute: Annotated[
        float, typer.Option(help="Underroute rate the budget is fitted to (held-out, classifier alone).")
    ] = DEFAULT_TARGET_UNDERROUTE,
    fallback_rate: Annotated[
        float, typer.Option(help="Share of requests sent to the LLM router.")
    ] = DEFAULT_FALLBACK_RATE,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fit calibration, the underroute budget and the confidence threshold on held-out data."""
    from .calibration import calibrate_artifact

    out = run(
        calibrate_artifact, model_dir, data, target_underroute=target_underroute, target_fallback_rate=fallback_rate
    )
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    s, m = out["serving"], out["metrics"]
    typer.echo(
        f"temperature {s['temperature']:.3f}, underroute budget {s['underroute_budget']:.3f}, "
        f"confidence threshold {s['confidence_threshold']:.3f} (fitted on {m['n']} rows)\n"
        f"ECE {m['ece_before']:.3f} -> {m['ece_after']:.3f}; fallback share {m['fallback_share']:.1%}; "
        f"confident rest: accuracy {m['confident_rest']['accuracy']:.3f}, underroute {m['confident_rest']['underroute_rate']:.3f}"
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("calibrate")(calibrate)
    app.add_typer(data_app, name="data")
