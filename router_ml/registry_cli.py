"""``router-ml models list | promote ID | rollback | migrate``: switch the serving model.

Part of the serving package (not ``train/``), so that an install without the training pipeline can
still roll a bad model back. Joins the CLI through the ``router_ml.commands`` entry point.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["register"]

models_app = typer.Typer(help="List model versions and switch the active one.", no_args_is_help=True)

ModelsDir = Annotated[
    Optional[Path], typer.Option("--models", help="The models directory (default: the configured models/).")
]


def _registry(models: Path | None):
    from .cli import run
    from .config import load_settings
    from .registry import ModelRegistry

    return ModelRegistry(models if models is not None else run(load_settings).model_dir)


def _fmt(value: object, spec: str = ".3f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


@models_app.command("list")
def list_versions(
    models: ModelsDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every stored version, oldest first; '*' marks the active one."""
    from .cli import run

    reg = _registry(models)
    if reg.layout == "flat":
        msg = f"{reg.root} holds one unversioned model; `router-ml models migrate --models {reg.root}` versions it"
        typer.echo(json.dumps({"layout": "flat", "versions": []}) if as_json else msg)
        return
    rows = [v.summary() for v in run(reg.versions)]
    if as_json:
        typer.echo(json.dumps({"layout": reg.layout, "active": reg.active_id(), "versions": rows}, indent=2))
        return
    if not rows:
        typer.echo(f"no model versions in {reg.root}")
        return
    typer.echo(f"{'':2}{'id':<27} {'origin':<8} {'rows':>6} {'dev acc':>8} {'dev under':>9}  gate")
    for r in rows:
        typer.echo(
            f"{'*' if r['active'] else ' ':2}{r['id']:<27} {r['origin']:<8} {r['n_rows'] or '-':>6} "
            f"{_fmt(r['dev_accuracy']):>8} {_fmt(r['dev_underroute']):>9}  {r['gate'] or '-'}"
        )


@models_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="Version id, or a unique prefix of it.")],
    models: ModelsDir = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, for history.jsonl.")] = "",
) -> None:
    """Make a version the active one (atomically; the current one is remembered for rollback)."""
    from .cli import run

    reg = _registry(models)
    vid = run(reg.promote, version, reason=reason or "promoted by hand")
    typer.echo(f"active: {vid}")


@models_app.command("rollback")
def rollback(
    models: ModelsDir = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, for history.jsonl.")] = "",
) -> None:
    """Make the previously active version active again (repeat to go further back)."""
    from .cli import run

    reg = _registry(models)
    vid = run(reg.rollback, reason=reason)
    typer.echo(f"active: {vid}")


@models_app.command("migrate")
def migrate(models: ModelsDir = None) -> None:
    """Move a flat models/ (card.json at its root) into versions/<id> and make it active."""
    from .cli import run

    reg = _registry(models)
    vid = run(reg.migrate)
    typer.echo(f"{reg.root}: versioned; active: {vid}")


def register(app: typer.Typer) -> None:
    """Add the ``models`` group to the ``router-ml`` app (entry point ``router_ml.commands``)."""
    app.add_typer(models_app, name="models")
