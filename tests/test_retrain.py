"""End to end: a decision log of a few hundred routed requests, the fake Messages API as the teacher
(the real SDK over HTTP), a retrain that promotes a better challenger, one that refuses a worse one
(its teacher answers flipped tiers), a rollback, and a retrain killed mid-way that resumes without
paying twice. The embedder is the fast ``HashEmbedder``, passed explicitly everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_server import TEST_KEY
from traffic import TIERS, labeled_rows, prompts, write_jsonl
from typer.testing import CliRunner

from router_ml.decision_log import DecisionLog
from router_ml.llm_router import LLMRouter
from router_ml.predictor import Predictor
from router_ml.registry import ModelRegistry
from router_ml.router import Router
from router_ml.tiers import Tier
from train.retrain import retrain
from train.trainer import train_model

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
OPUS = "claude-opus-4-7"
FLIPPED = {"zqs": "COMPLEX", "zqm": "SIMPLE", "zqc": "SIMPLE"}  # what the teacher gone wrong answers


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Data (90 frozen evaluation rows + a tiny training seed of 12) and the weak champion trained
    on it (it underroutes about a quarter of the frozen set), in the flat layout. Built once; each
    test works on a copy."""
    from conftest import HashEmbedder

    root = tmp_path_factory.mktemp("base")
    frozen = labeled_rows(90, seed=1, prefix="f-")
    seed = labeled_rows(12, seed=2, prefix="t-")
    write_jsonl(root / "data" / "seed.jsonl", frozen + seed)
    (root / "data" / "splits.json").write_text(json.dumps({"dev": [r["id"] for r in frozen]}))
    train_model(root / "data", root / "models", embedder=HashEmbedder())
    return root


@pytest.fixture
def world(base, tmp_path, hash_embedder) -> Path:
    for name in ("data", "models"):
        shutil.copytree(base / name, tmp_path / name)
    ModelRegistry(tmp_path / "models").migrate()
    return tmp_path


def route_traffic(world: Path, fake, settings, embedder, n: int, seed: int, *, tags=None, feedback: int = 0,
                  hashed: int = 0) -> list:
    """Route ``n`` requests with the active model, its LLM fallback on the fake API, into routes.db."""
    champion = Predictor.load(world / "models", embedder=embedder)
    llm = LLMRouter(settings=settings, base_url=fake.base_url, api_key=TEST_KEY, timeout=5.0)
    with DecisionLog(world / "routes.db", privacy="full") as log:
        decisions = Router(champion, settings=settings, llm=llm, log=log).route_batch(prompts(n, seed, tags=tags))
        for i, d in enumerate(decisions[:feedback]):  # users who said what the right tier was
            log.feedback(d.decision_id, good=d.tier == Tier[TIERS[i % 3]], right_tier=TIERS[i % 3])
    if hashed:
        with DecisionLog(world / "routes.db", privacy="hash") as log:
            Router(champion, settings=settings, llm=None, log=log).route_batch(prompts(hashed, seed + 100))
    llm.close()
    return decisions


def run_retrain(world: Path, fake, settings, embedder, **kw):
    kw = {"labeler": "opus", "budget_usd": 5.0, "max_new": 150, **kw}
    return retrain(world / "routes.db", data=world / "data", models=world / "models", embedder=embedder,
                   settings=settings, base_url=fake.base_url, api_key=TEST_KEY, work=world / "work",
                   cache=world / "labels.sqlite", **kw)


def test_retrain_promotes_a_better_challenger_refuses_a_worse_one_then_rolls_back(world, fake, settings, hash_embedder):
    registry = ModelRegistry(world / "models")
    original = registry.active_id()
    decisions = route_traffic(world, fake, settings, hash_embedder, 300, seed=10, feedback=6, hashed=20)
    fallbacks = sum(d.source == "llm" for d in decisions)
    before = fake.calls("messages", model=OPUS)

    # 1. a better challenger: trained on the teacher's labels for fresh traffic
    first = run_retrain(world, fake, settings, hash_embedder)
    print(first.summary())
    sel = first.selection
    assert sel["records"] == 320 and sel["hash_only"] == 20 and sel["new_requests"] == 300
    assert sel["reused_haiku"] == fallbacks and sel["reused_feedback"] == 6
    assert first.labeling["labeled"] == 150 == fake.calls("messages", model=OPUS) - before
    # unsure decisions went to the LLM fallback (its answers are reused): opus arbitrates where the
    # classifier disagreed with it, then the random sample (20% of --max-new reserved, then the rest)
    assert sel["to_label_disagreement"] > 0 and sel["to_label_random"] >= 30
    assert sel["to_label_disagreement"] + sel["to_label_random"] + sel.get("to_label_low_confidence", 0) == 150
    frozen = first.gate.sets["frozen eval"]
    assert first.promoted and first.gate.verdict == "promote"
    assert frozen["n"] == 90 and first.gate.sets["new holdout"]["gated"]
    assert frozen["challenger"]["accuracy"] > frozen["champion"]["accuracy"] + 0.1
    assert frozen["challenger"]["underroute_rate"] <= frozen["champion"]["underroute_rate"]
    assert registry.active_id() == first.challenger != original
    assert Router.load(world / "models", embedder=hash_embedder, llm=None).predictor.path_.name == first.challenger
    added = [json.loads(x) for x in Path(first.data_file).read_text().splitlines()]
    assert len(added) == first.merge["new"] and {r["label_source"] for r in added} <= {"opus", "haiku", "feedback"}
    assert all(r["provenance"]["decision_id"] and "labels" in r["provenance"] for r in added)
    card = json.loads((registry.root / "versions" / first.challenger / "card.json").read_text())
    assert card["retrain"]["log_until"] == first.log_until and card["gate"]["verdict"] == "promote"

    # nothing logged since: nothing to learn, nothing paid, no new version
    calls = fake.calls("messages")
    idle = run_retrain(world, fake, settings, hash_embedder)
    assert idle.challenger is None and "nothing new" in idle.note and fake.calls("messages") == calls

    # 2. a worse challenger: the teacher now answers flipped tiers for the new traffic
    for tag, tier in FLIPPED.items():
        fake.script(tag, json.dumps({"tier": tier, "reason": "flipped on purpose"}))
    tags = {tier: tag for tag, tier in zip(FLIPPED, TIERS, strict=True)}  # zqs on SIMPLE-sized requests...
    route_traffic(world, fake, settings, hash_embedder, 300, seed=20, tags=tags)
    second = run_retrain(world, fake, settings, hash_embedder, max_new=300)
    text = second.summary()
    print(text)
    assert not second.promoted and second.gate.verdict == "refuse" and "verdict: REFUSE" in text
    assert any(r.startswith("frozen eval:") for r in second.gate.reasons)
    assert second.since == first.log_until and second.selection["new_requests"] == 300
    frozen2 = second.gate.sets["frozen eval"]
    assert frozen2["challenger"]["underroute_rate"] > frozen2["champion"]["underroute_rate"]
    assert registry.active_id() == first.challenger  # production untouched
    assert second.challenger in registry.ids() and second.data_file is None
    assert len(list((world / "data" / "retrain").glob("*.jsonl"))) == 1

    # 3. rollback to the model before the first retrain
    assert registry.rollback() == original == registry.active_id()
    assert Predictor.load(world / "models", embedder=hash_embedder).path_.name == original


_KILLABLE = """
import sys
sys.path.insert(0, {tests!r})
from conftest import HashEmbedder
from router_ml.config import Settings
from train.retrain import retrain
retrain({db!r}, data={data!r}, models={models!r}, labeler="opus", budget_usd=5.0, max_new=120,
        embedder=HashEmbedder(), settings=Settings(), base_url={url!r}, api_key={key!r},
        work={work!r}, cache={cache!r}, concurrency=2)
"""


def test_a_killed_retrain_leaves_the_active_model_and_resumes_without_paying_twice(
        world, fake, settings, hash_embedder):
    registry = ModelRegistry(world / "models")
    route_traffic(world, fake, settings, hash_embedder, 200, seed=30)
    active, ids = (registry.root / "ACTIVE").read_bytes(), registry.ids()
    fake.configure(latency_ms=40)  # slow enough to be killed while labeling
    script = _KILLABLE.format(tests=str(TESTS), db=str(world / "routes.db"), data=str(world / "data"),
                              models=str(world / "models"), url=fake.base_url, key=TEST_KEY,
                              work=str(world / "work"), cache=str(world / "labels.sqlite"))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 120
        while fake.calls("messages", model=OPUS) < 10:
            assert proc.poll() is None, "the retrain ended before it could be killed"
            assert time.monotonic() < deadline, "the retrain never started labeling"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    paid_before_kill = fake.calls("messages", model=OPUS)
    assert (registry.root / "ACTIVE").read_bytes() == active and registry.ids() == ids

    fake.configure(latency_ms=0)
    resumed = run_retrain(world, fake, settings, hash_embedder, max_new=120, concurrency=2)
    assert resumed.labeling["cached"] >= paid_before_kill - 2  # only calls in flight at the kill are lost
    assert resumed.labeling["cached"] + resumed.labeling["labeled"] == 120
    assert fake.stats()["paid_twice"] <= 2  # at most --concurrency calls were paid again
    assert fake.calls("messages", model=OPUS) <= 120 + 2
    print(resumed.summary())
    assert resumed.promoted and registry.active_id() == resumed.challenger


def test_cli_retrain_asks_to_migrate_a_flat_models_dir(base, tmp_path):
    from router_ml.cli import app

    shutil.copytree(base / "models", tmp_path / "models")
    write_jsonl(tmp_path / "requests.jsonl", [{"prompt": "hello"}])
    out = CliRunner().invoke(app, ["retrain", "--logs", str(tmp_path / "requests.jsonl"), "--data", str(base / "data"),
                                   "--models", str(tmp_path / "models"), "--work", str(tmp_path / "work")])
    assert out.exit_code == 1 and "router-ml models migrate --models" in out.output
