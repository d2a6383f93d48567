"""The ``router-ml`` command line. Thin: every command hands off to library code.

Training-side commands live in ``train/`` and join this app through the ``router_ml.commands``
entry-point group, so the serving package never imports the pipeline.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import RouterMLError

app = typer.Typer(
    name="router-ml",
    help="Route LLM requests to the cheapest Claude tier that answers them as well as the best model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> None:
    """Print a one-line error and exit 1 (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def run(fn, *args, **kwargs):
    """Call library code, turning router-ml errors and bad input into a one-line failure."""
    try:
        return fn(*args, **kwargs)
    except (RouterMLError, ValueError, FileNotFoundError) as err:
        fail(str(err))


ModelDir = Annotated[Optional[Path], typer.Option("--model-dir", help="Model directory (default: models/).")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", help="router-ml.toml with models and prices.")]


def _settings(config: Path | None, model_dir: Path | None):
    from .config import load_settings

    return run(load_settings, config, model_dir=model_dir)


@app.command()
def route(
    prompt: Annotated[str, typer.Argument(help="The request text, or '-' to read a JSON request from stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    model_dir: ModelDir = None,
    config: ConfigFile = None,
) -> None:
    """Route one request and print the chosen tier and model."""
    from .router import Router

    settings = _settings(config, model_dir)
    request: object = prompt
    if prompt == "-":
        raw = sys.stdin.read()
        try:
            request = json.loads(raw)
        except json.JSONDecodeError:
            request = raw
    router = run(Router.load, model_dir, settings=settings)
    d = run(router.route, request)
    if as_json:
        typer.echo(json.dumps(d.to_dict(), ensure_ascii=False))
    else:
        probs = "  ".join(f"{k}={v:.2f}" for k, v in d.probabilities.items())
        typer.echo(f"{d.tier.name} -> {d.model}  (confidence {d.confidence:.2f}, {d.source})\n{probs}\n{d.reason}")


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Labeled JSONL file (all rows) or directory (its dev split).")],
    router: Annotated[str, typer.Option("--router", help="ml, rules, llm or all (side by side).")] = "ml",
    by: Annotated[Optional[list[str]], typer.Option("--by", help="Break down by a row key: tags, lang... (repeatable).")] = None,
    report_dir: Annotated[Optional[Path], typer.Option("--report", help="Write report.md, report.json and plots here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    underroute_budget: Annotated[Optional[float], typer.Option(help="Override the card's underroute budget.")] = None,
    confidence_threshold: Annotated[Optional[float], typer.Option(help="Override the card's confidence threshold.")] = None,
    model_dir: ModelDir = None,
    config: ConfigFile = None,
) -> None:
    """Score routers side by side on labeled data: accuracy, over/underroute, cost, calibration, coverage."""
    from .evaluate import evaluate as run_evaluation, format_report

    settings = _settings(config, model_dir)
    report = run(
        run_evaluation, data, router=router, settings=settings, by=by or (),
        underroute_budget=underroute_budget, confidence_threshold=confidence_threshold,
    )
    if report_dir is not None:
        from .eval_plots import write_report

        md = run(write_report, report, report_dir)
        if not as_json:
            typer.echo(f"wrote {md} and its plots")
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False) if as_json else format_report(report))


@app.command("fake-api")
def fake_api(
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0 picks a free one).")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="Delay added to every API call.")] = 0.0,
    fail_rate: Annotated[float, typer.Option("--fail-rate", help="Share of calls failing with 429/529/500.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random failures.")] = 0,
    batch_delay_s: Annotated[float, typer.Option("--batch-delay-s", help="How long batches stay in progress.")] = 0.0,
) -> None:
    """Serve a local stand-in for the Messages API, for tests and offline work (Ctrl-C stops it)."""
    from .fake_api import serve

    run(serve, host=host, port=port, latency_ms=latency_ms, fail_rate=fail_rate, seed=seed,
        batch_delay_s=batch_delay_s)


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    upstream: Annotated[Optional[str], typer.Option(
        "--upstream", help="Messages API to forward to (env ROUTER_ML_UPSTREAM; default https://api.anthropic.com).")] = None,
    models: Annotated[Optional[Path], typer.Option("--models", help="router-ml.toml with models and prices.")] = None,
    model_dir: ModelDir = None,
    token: Annotated[Optional[str], typer.Option(
        "--token", help="Access token callers send in x-router-token (prefer env ROUTER_ML_PROXY_TOKEN).")] = None,
) -> None:
    """Serve the Messages API on HTTP and route model "auto" (docs/proxy.md). Ctrl-C stops it."""
    from .proxy_server import serve as serve_proxy

    run(serve_proxy, host=host, port=port, upstream=upstream, config_file=models, model_dir=model_dir, token=token)


def _unavailable(name: str, err: ImportError):
    def command() -> None:
        fail(f"'{name}' needs the training install (pip install 'router-ml[train]'): {err}")

    return command


def _register_plugins() -> None:
    for ep in metadata.entry_points(group="router_ml.commands"):
        try:
            register = ep.load()
        except ImportError as err:  # a runtime-only install lacks the pipeline's dependencies
            app.command(name=ep.name, help="(needs the training install)")(_unavailable(ep.name, err))
            continue
        register(app)


_register_plugins()


def main() -> None:  # pragma: no cover
    app()
