"""``router-ml label``: thin CLI over ``train.labeling.label_file``.

Exit codes: 0 every row labeled; 1 an error (one line, nothing paid for rows never sent); 2 the run
stopped short (failed rows, budget reached, or a batch still in progress) - re-run to continue.
The API key comes only from the environment (``ANTHROPIC_API_KEY``), never from a flag, so it stays
out of shell history and process lists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["register", "label"]


def label(
    in_path: Annotated[Path, typer.Option("--in", help="Requests to label (JSONL file or directory).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the labeled rows (JSONL).")],
    labeler: Annotated[str, typer.Option("--labeler", help="haiku, opus or outcome.")] = "haiku",
    concurrency: Annotated[int, typer.Option("--concurrency", help="Calls in flight at once.")] = 8,
    budget_usd: Annotated[
        Optional[float], typer.Option("--budget-usd", help="Stop before spending more than this.")
    ] = None,
    batch: Annotated[bool, typer.Option("--batch", help="Use the Message Batches API (half price).")] = False,
    cache: Annotated[Path, typer.Option("--cache", help="SQLite label cache.")] = Path(".cache/labels.sqlite"),
    model: Annotated[Optional[str], typer.Option("--model", help="Override the labeler's model.")] = None,
    base_url: Annotated[
        Optional[str], typer.Option("--base-url", help="API address (default ANTHROPIC_BASE_URL).")
    ] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="Seconds per call.")] = None,
    max_attempts: Annotated[int, typer.Option("--max-attempts", help="Calls per row on 429/529/5xx.")] = 5,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", help="Batch polling interval.")] = 30.0,
    max_wait_seconds: Annotated[
        Optional[float], typer.Option("--max-wait-seconds", help="Stop waiting for batches (re-run resumes).")
    ] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="router-ml.toml with models and prices.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON, no progress bar.")] = False,
) -> None:
    """Label requests with a teacher model; cached, resumable, within a budget."""
    from router_ml.cli import fail, run  # here, not at import: router_ml.cli loads this module as a plugin
    from router_ml.config import load_settings

    from .labelers import make_labeler
    from .labeling import RetryPolicy, label_file

    settings = run(load_settings, config)
    policy = run(RetryPolicy, max_attempts=max_attempts)
    teacher = run(make_labeler, labeler, settings=settings, model=model, base_url=base_url, timeout=timeout)
    try:
        report = run(
            label_file, in_path, out, teacher, cache=cache, concurrency=concurrency, budget_usd=budget_usd,
            batch=batch, policy=policy, poll_s=poll_seconds, max_wait_s=max_wait_seconds, progress=not as_json,
        )
    except KeyboardInterrupt:
        fail(f"interrupted; every label received so far is in {cache}, re-run the same command to resume")
    finally:
        teacher.close()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for f in report.failures:
            typer.echo(f"failed: {f}", err=True)
        typer.echo(report.summary())
    if not report.complete:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add ``label`` to the ``router-ml`` app (entry point ``router_ml.commands``)."""
    app.command("label")(label)


def main() -> None:  # pragma: no cover - ``python -m train.label_cli`` without the plugin machinery
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)

    @app.callback()
    def _root() -> None:
        """router-ml labeling."""

    app()


if __name__ == "__main__":  # pragma: no cover
    main()
