"""``router-ml data check``: schema, duplicates, near-duplicates and the composition of a data set."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

from router_ml.data import Row, load_rows

__all__ = ["shingles", "near_duplicate_pairs", "check_data", "length_bucket", "format_check"]

_WORD = re.compile(r"\w+", re.UNICODE)
LENGTH_BUCKETS = ("<300", "300-2000", ">2000")


def length_bucket(chars: int) -> str:
    return "<300" if chars < 300 else "300-2000" if chars <= 2000 else ">2000"


def request_chars(row: Row) -> int:
    """Characters of the whole request as an app would send it."""
    raw = row.raw
    if "prompt" in raw:
        return len(raw["prompt"])
    n = len(raw.get("system", "") or "") if isinstance(raw.get("system"), str) else 0
    for m in raw["messages"]:
        c = m.get("content", "")
        n += len(c) if isinstance(c, str) else len(json.dumps(c, ensure_ascii=False))
    return n


def full_text(row: Row) -> str:
    """Every word of the request (system, all turns, tools), for duplicate detection."""
    raw = row.raw
    parts = [raw["prompt"]] if "prompt" in raw else [
        m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"), ensure_ascii=False)
        for m in raw["messages"]
    ]
    for key in ("system", "tools"):
        if raw.get(key):
            parts.append(raw[key] if isinstance(raw[key], str) else json.dumps(raw[key], ensure_ascii=False))
    return "\n".join(parts)


def shingles(text: str, n: int = 5) -> set[int]:
    """Hashed word n-grams (character n-grams for scripts written without spaces)."""
    words = _WORD.findall(text.lower())
    if len(words) < n or sum(map(len, words)) > 3 * len(words) * 4:  # long "words": CJK runs
        compact = "".join(words)
        grams = {compact[i : i + 2 * n] for i in range(max(1, len(compact) - 2 * n + 1))}
    else:
        grams = {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
    return {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "big") for g in grams}


def near_duplicate_pairs(
    texts: Sequence[str],
    *,
    threshold: float = 0.6,
    others: Sequence[str] | None = None,
    n: int = 5,
    containment: bool = False,
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, score)`` of shingle sets at or above ``threshold``.

    Within ``texts`` when ``others`` is None, else between ``texts[i]`` and ``others[j]``. The score is
    Jaccard, or with ``containment=True`` the share of ``others[j]``'s shingles found in ``texts[i]``
    (a copied passage inside a longer request). An inverted index keeps this near-linear.
    """
    sets = [shingles(t, n) for t in texts]
    pool = sets if others is None else [shingles(t, n) for t in others]
    index: dict[int, list[int]] = defaultdict(list)
    for j, s in enumerate(pool):
        for h in s:
            index[h].append(j)
    out = []
    for i, s in enumerate(sets):
        if not s:
            continue
        shared: Counter[int] = Counter()
        for h in s:
            posting = index.get(h, ())
            if len(posting) > 200:  # a stock phrase everyone uses says nothing about copying
                continue
            shared.update(posting)
        for j, k in shared.items():
            if others is None and j <= i:
                continue
            score = k / len(pool[j]) if containment else k / (len(s) + len(pool[j]) - k)
            if score >= threshold:
                out.append((i, j, round(score, 3)))
    return out


def _jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def _content_key(raw: dict[str, Any]) -> str:
    body = {k: raw.get(k) for k in ("prompt", "messages", "system", "tools")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _share(counter: Counter, n: int) -> dict[str, dict[str, float]]:
    return {k: {"n": v, "share": round(v / n, 3)} for k, v in sorted(counter.items(), key=lambda kv: -kv[1])}


def check_data(path: str | Path, *, near_threshold: float = 0.8) -> dict[str, Any]:
    """Validate every row (raises ``DataError`` with file:line on the first bad one) and report.

    Near-identical requests with the *same* tier are redundancy (a template stamped twice) and count
    as problems; with *different* tiers they are deliberate minimal pairs (the same pasted document,
    another question) and are listed apart.
    """
    rows = load_rows(path)
    n = len(rows)
    ids = Counter(r.id for r in rows)
    dup_ids = sorted(i for i, c in ids.items() if c > 1)
    by_key: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        by_key[_content_key(r.raw)].append(r.id)
    exact = [v for v in by_key.values() if len(v) > 1]
    # Near-identical as a whole *and* in the turn being answered: one app's system prompt shared by
    # different questions, or one history with different follow-ups, is not duplication.
    near = [
        (i, j, s)
        for i, j, s in near_duplicate_pairs([full_text(r) for r in rows], threshold=near_threshold)
        if _jaccard(rows[i].request.last_user, rows[j].request.last_user) >= near_threshold
    ]
    near_ids = [(rows[i].id, rows[j].id, s) for i, j, s in near if rows[i].tier == rows[j].tier]
    pairs = [(rows[i].id, rows[j].id, s) for i, j, s in near if rows[i].tier != rows[j].tier]
    multi = [r for r in rows if r.request.n_turns > 1]
    report = {
        "n": n,
        "tiers": _share(Counter(str(r.tier) for r in rows), n),
        "length": _share(Counter(length_bucket(request_chars(r)) for r in rows), n),
        "very_long_50k_plus": sum(request_chars(r) >= 50_000 for r in rows),
        "languages": _share(Counter(str(r.raw.get("lang", "?")) for r in rows), n),
        "non_english_share": round(sum(r.raw.get("lang", "en") != "en" for r in rows) / max(n, 1), 3),
        "multi_turn_share": round(len(multi) / max(n, 1), 3),
        "with_system": sum(r.request.has_system for r in rows),
        "with_tools": sum(r.request.has_tools for r in rows),
        "tags": _share(Counter(t for r in rows for t in r.tags), n),
        "domains": _share(Counter(str(r.raw.get("domain", "?")) for r in rows), n),
        "label_sources": _share(Counter(str(r.raw.get("label_source", "?")) for r in rows), n),
        "duplicate_ids": dup_ids,
        "exact_duplicates": exact,
        "near_duplicates": near_ids,
        "minimal_pairs": pairs,
        "problems": [],
    }
    if dup_ids:
        report["problems"].append(f"{len(dup_ids)} duplicate id(s), e.g. {dup_ids[:3]}")
    if exact:
        report["problems"].append(f"{len(exact)} exact duplicate request(s), e.g. {exact[:3]}")
    if near_ids:
        report["problems"].append(
            f"{len(near_ids)} near-duplicate pair(s) with the same tier (Jaccard >= {near_threshold}), e.g. {near_ids[:3]}"
        )
    return report


def format_check(report: dict[str, Any]) -> str:
    lines = [f"rows: {report['n']}"]
    for key in ("tiers", "length", "languages", "domains", "label_sources"):
        parts = ", ".join(f"{k} {v['n']} ({v['share']:.0%})" for k, v in list(report[key].items())[:16])
        lines.append(f"{key}: {parts}")
    lines.append(
        f"non-English {report['non_english_share']:.0%}, multi-turn {report['multi_turn_share']:.0%}, "
        f"system prompts {report['with_system']}, tools {report['with_tools']}, 50k+ chars {report['very_long_50k_plus']}"
    )
    tags = ", ".join(f"{k} {v['share']:.0%}" for k, v in list(report["tags"].items())[:12])
    lines.append(f"tags: {tags}")
    lines.append(f"minimal pairs (near-identical, different tiers): {len(report['minimal_pairs'])}")
    lines.append("problems: " + ("; ".join(report["problems"]) if report["problems"] else "none"))
    return "\n".join(lines)
