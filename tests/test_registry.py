"""The model registry: both layouts load, versions appear whole, switches are atomic, rollback walks back."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from router_ml.artifact import load_artifact
from router_ml.errors import ArtifactCorruptError, ArtifactNotFoundError
from router_ml.predictor import Predictor
from router_ml.registry import ACTIVE_FILE, ModelRegistry, RegistryError, has_model, resolve_model_dir
from router_ml.router import Router
from train.retrain import train_new_version
from train.trainer import train_model


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> tuple[Path, Path]:
    """Two trained flat artifacts, built once per module (training is the slow part)."""
    from conftest import FIXTURES, HashEmbedder

    root = tmp_path_factory.mktemp("artifacts")
    a, b = root / "a", root / "b"
    train_model(FIXTURES / "tiny.jsonl", a, embedder=HashEmbedder(), seed=0)
    train_model(FIXTURES / "tiny.jsonl", b, embedder=HashEmbedder(), seed=1, dev_fraction=0.3)  # another head
    return a, b


@pytest.fixture
def flat(tmp_path, artifacts) -> Path:
    """A models/ directory in the flat layout, as `make train` wrote it before versions."""
    return Path(shutil.copytree(artifacts[0], tmp_path / "models"))


@pytest.fixture
def two_versions(flat, artifacts):
    """A registry with the migrated model (active) and a second version, not active."""
    reg = ModelRegistry(flat)
    first = reg.migrate()
    second = reg.add(artifacts[1])
    return reg, first, second


def test_the_flat_layout_still_loads_and_is_reported_as_flat(flat, hash_embedder):
    assert ModelRegistry(flat).layout == "flat" and has_model(flat)
    assert resolve_model_dir(flat) == flat
    assert Predictor.load(flat, embedder=hash_embedder).path_ == flat


def test_migrate_moves_the_model_into_a_version_and_every_loader_follows(flat, hash_embedder):
    head_before = (flat / "head.joblib").read_bytes()
    reg = ModelRegistry(flat)
    vid = reg.migrate()
    assert reg.layout == "versioned" and reg.active_id() == vid == reg.ids()[0]
    assert not (flat / "card.json").exists() and not (flat / "head.joblib").exists()
    assert (flat / "versions" / vid / "head.joblib").read_bytes() == head_before
    assert Predictor.load(flat, embedder=hash_embedder).path_ == flat / "versions" / vid
    router = Router.load(flat, embedder=hash_embedder, llm=None)
    assert router.route("What is 2 + 2?").source in ("classifier", "safe")
    assert reg.migrate() == vid  # idempotent


def test_router_load_finds_the_active_version_through_the_settings(two_versions, hash_embedder):
    from router_ml.config import Settings

    reg, first, _ = two_versions
    router = Router.load(embedder=hash_embedder, settings=Settings(model_dir=reg.root), llm=None)
    assert router.predictor.path_ == reg.root / "versions" / first


def test_add_is_idempotent_and_a_version_id_is_time_then_head_checksum(two_versions):
    reg, first, second = two_versions
    assert reg.ids() == sorted([first, second]) and reg.active_id() == first
    card = json.loads((reg.root / "versions" / second / "card.json").read_text())
    assert second.endswith(card["head"]["sha256"][:8])
    assert reg.add(reg.root / "versions" / second) == second  # the same artifact again: same id, no copy
    assert len(reg.ids()) == 2


def test_promote_by_unique_prefix_and_rollback_walks_back(two_versions):
    reg, first, second = two_versions
    assert reg.promote(second[:-3]) == second and reg.active_id() == second
    assert reg.state()["previous"] == [first]
    assert reg.rollback() == first and reg.active_id() == first
    with pytest.raises(RegistryError, match="no earlier active version"):
        reg.rollback()
    history = [json.loads(x) for x in (reg.root / "history.jsonl").read_text().splitlines()]
    assert [h["action"] for h in history] == ["promote", "promote", "rollback"]


def test_unknown_and_ambiguous_versions_are_clear_errors(two_versions):
    reg, first, second = two_versions
    with pytest.raises(RegistryError, match="no model version 'nope'"):
        reg.promote("nope")
    common = "".join(a for a, b in zip(first, second, strict=False) if a == b)[:4]
    with pytest.raises(RegistryError, match="matches 2 versions"):
        reg.promote(common)


def test_promote_refuses_a_version_whose_head_was_damaged(two_versions):
    reg, first, second = two_versions
    head = reg.root / "versions" / second / "head.joblib"
    head.write_bytes(head.read_bytes()[:100])
    with pytest.raises(ArtifactCorruptError):
        reg.promote(second)
    assert reg.active_id() == first


def test_active_may_be_a_bare_id_and_a_broken_pointer_is_named(two_versions):
    reg, first, second = two_versions
    (reg.root / ACTIVE_FILE).write_text(second + "\n")
    assert resolve_model_dir(reg.root) == reg.root / "versions" / second
    (reg.root / ACTIVE_FILE).write_text("{not json")
    with pytest.raises(ArtifactCorruptError, match="ACTIVE"):
        resolve_model_dir(reg.root)
    (reg.root / ACTIVE_FILE).write_text(json.dumps({"active": "gone"}))
    with pytest.raises(ArtifactNotFoundError, match="'gone'"):
        resolve_model_dir(reg.root)
    (reg.root / ACTIVE_FILE).unlink()
    with pytest.raises(RegistryError, match="none is active"):
        resolve_model_dir(reg.root)


def test_a_run_killed_while_writing_leaves_the_registry_untouched(two_versions, artifacts):
    reg, first, _ = two_versions
    before = reg.ids()
    with pytest.raises(KeyboardInterrupt):
        with reg.staging() as tmp:
            shutil.copytree(artifacts[1], tmp, dirs_exist_ok=True)
            raise KeyboardInterrupt  # killed after writing, before add()
    assert reg.ids() == before and reg.active_id() == first
    assert list((reg.root / ".staging").iterdir()) == []


def test_readers_never_see_half_a_model_while_the_active_one_switches(two_versions):
    """A reader resolving and loading in a loop, while a writer switches back and forth: every load
    passes the checksum of its own card (a mixed card and head would fail it)."""
    reg, first, second = two_versions
    heads = {json.loads((reg.root / "versions" / v / "card.json").read_text())["head"]["sha256"]
             for v in (first, second)}
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                _, card = load_artifact(resolve_model_dir(reg.root))
                seen.add(card["head"]["sha256"])
            except BaseException as err:  # noqa: BLE001 - any failure is the finding
                errors.append(err)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(60):
        reg.promote(second if i % 2 == 0 else first)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert seen <= heads and seen


def test_models_cli_list_promote_rollback_migrate(flat, artifacts):
    from router_ml.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["models", "list", "--models", str(flat)])
    assert out.exit_code == 0 and "models migrate" in out.output
    out = runner.invoke(app, ["models", "migrate", "--models", str(flat)])
    assert out.exit_code == 0, out.output
    first = ModelRegistry(flat).active_id()
    second = ModelRegistry(flat).add(artifacts[1])
    out = runner.invoke(app, ["models", "list", "--models", str(flat), "--json"])
    listed = json.loads(out.output)
    assert [v["id"] for v in listed["versions"]] == sorted([first, second]) and listed["active"] == first
    promoted = runner.invoke(app, ["models", "promote", second, "--models", str(flat)])
    assert promoted.output.strip() == f"active: {second}"
    text = runner.invoke(app, ["models", "list", "--models", str(flat)]).output
    assert f"* {second}" in text
    assert runner.invoke(app, ["models", "rollback", "--models", str(flat)]).output.strip() == f"active: {first}"
    bad = runner.invoke(app, ["models", "rollback", "--models", str(flat)])
    assert bad.exit_code == 1 and "no earlier active version" in bad.output


def test_train_into_a_versioned_registry_adds_and_activates_a_version(two_versions, tiny_data, hash_embedder):
    reg, first, second = two_versions
    vid, result = train_new_version(tiny_data, reg.root, embedder=hash_embedder, seed=3)
    assert reg.active_id() == vid and vid not in (first, second)
    assert result.out == reg.root / "versions" / vid
    assert not (reg.root / "card.json").exists()  # nothing written flat beside the versions
