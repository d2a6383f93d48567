"""Fixtures around the project's fake Messages API, imported by the LLM and labeling tests.

Every test gets its own server on a free port (``fake``), so counters start at zero; the real
``anthropic`` SDK talks to it through ``base_url``. Nothing here loads the embedding model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from router_ml.config import Settings
from router_ml.fake_api import FakeAPI
from router_ml.llm_router import LLMRouter

TEST_KEY = "sk-test-0123456789-never-log-me"


@pytest.fixture
def fake():
    """A started FakeAPI (no latency, no random faults), stopped after the test."""
    with FakeAPI() as server:
        yield server


@pytest.fixture
def settings() -> Settings:
    """Default models and prices, whatever the environment or a local router-ml.toml say."""
    return Settings()


@pytest.fixture
def router(fake: FakeAPI, settings: Settings):
    """An LLMRouter on the fake server with a short timeout (timeouts are faults we inject)."""
    r = LLMRouter(settings=settings, base_url=fake.base_url, api_key=TEST_KEY, timeout=1.0)
    yield r
    r.close()


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sample_rows(n: int = 12) -> list[dict[str, Any]]:
    """``n`` distinct requests whose fake-rule tiers cycle SIMPLE, MEDIUM, COMPLEX (by length)."""
    rows = []
    for i in range(n):
        size = (20, 150, 450)[i % 3]
        text = f"request {i:03d}: " + "x" * size
        rows.append({"id": f"r{i:03d}", "prompt": text})
    return rows


def expected_tier(row: dict[str, Any]) -> str:
    """The fake server's rule, for rows whose whole prompt fits the router's 500-character view."""
    n = len(row["prompt"].strip())
    return "SIMPLE" if n < 100 else "MEDIUM" if n < 300 else "COMPLEX"
