"""Synthetic requests for the retraining tests: random words whose length says the tier.

The fake Messages API labels a request by the length of what it reads (under 100 characters SIMPLE,
under 300 MEDIUM, else COMPLEX), so these prompts keep clear of both borders: the teacher and the
author agree, and the ``hash_embedder``'s size features make the rule learnable. Random words keep
any two prompts far from being near-duplicates.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

TIERS = ("SIMPLE", "MEDIUM", "COMPLEX")
LENGTHS = {"SIMPLE": (30, 80), "MEDIUM": (130, 250), "COMPLEX": (350, 600)}
FLIP = {"SIMPLE": "COMPLEX", "MEDIUM": "SIMPLE", "COMPLEX": "SIMPLE"}  # every label wrong
REVERSE = {"SIMPLE": "COMPLEX", "MEDIUM": "MEDIUM", "COMPLEX": "SIMPLE"}  # the order of tiers turned around
_VOCAB_RNG = random.Random(7)
VOCAB = ["".join(_VOCAB_RNG.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(_VOCAB_RNG.randint(3, 9)))
         for _ in range(2000)]


def prompt(tier: str, rng: random.Random, tag: str = "") -> str:
    lo, hi = LENGTHS[tier]
    n = rng.randint(lo, hi)
    words = [tag] if tag else []
    while len(" ".join(words)) < n:
        words.append(rng.choice(VOCAB))
    return " ".join(words)[:hi]


def labeled_rows(n: int, seed: int, prefix: str, *, flip_every: int = 0,
                 flip: dict[str, str] = FLIP) -> list[dict[str, Any]]:
    """``n`` authored rows cycling through the tiers; every ``flip_every``-th label mapped by ``flip``."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        tier = TIERS[i % 3]
        label = flip[tier] if flip_every and i % flip_every == 0 else tier
        rows.append({"id": f"{prefix}{i:04d}", "prompt": prompt(tier, rng), "tier": label, "label_source": "author"})
    return rows


def prompts(n: int, seed: int, *, tags: dict[str, str] | None = None) -> list[str]:
    rng = random.Random(seed)
    return [prompt(TIERS[i % 3], rng, (tags or {}).get(TIERS[i % 3], "")) for i in range(n)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
