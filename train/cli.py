"""Pipeline commands for the ``router-ml`` CLI: ``train`` and ``data check|split``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from router_ml.cli import fail, run

data_app = typer.Typer(help="Inspect and prepare labeled data.", no_args_is_help=True)


def train(
    data: Annotated[Path, typer.Option("--data", help="Labeled JSONL file or directory.")] = Path("data"),
    out: Annotated[Path, typer.Option("--out", help="Where to write the model artifact.")] = Path("models"),
    seed: Annotated[int, typer.Option(help="Seed for the split and the head.")] = 0,
    embedder_path: Annotated[
        Optional[Path], typer.Option("--embedder", help="Another sentence-transformers model directory.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
) -> None:
    """Train the classifier on labeled data and write models/ (card + head)."""
    from router_ml.embedder import SentenceTransformerEmbedder

    from .trainer import train_model

    embedder = SentenceTransformerEmbedder(embedder_path) if embedder_path else None
    result = run(train_model, data, out, embedder=embedder, seed=seed, progress=not as_json)
    if as_json:
        typer.echo(json.dumps(result.card, indent=2))
        return
    t = result.card["training"]
    typer.echo(f"trained on {t['n_train']} rows, dev {t['n_dev']}; wrote {result.out}")
    for name, rep in (("classifier", result.dev_report), ("rules", result.rules_dev_report)):
        typer.echo(
            f"dev {name:>10}: accuracy {rep['accuracy']:.3f}  underroute {rep['underroute_rate']:.3f}  "
            f"overroute {rep['overroute_rate']:.3f}"
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


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.add_typer(data_app, name="data")
