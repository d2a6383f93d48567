"""A whole request rendered as bounded plain text, for the teachers that see more than the router.

The ``opus`` labeler and the ``outcome`` judge read the system prompt, every turn and the tool names;
a request longer than ``max_chars`` keeps its last user turn (head and tail) first, then the most
recent earlier turns, each cut in the middle with a marker saying how much was left out.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from router_ml.normalize import normalize

__all__ = ["request_messages", "render_transcript", "request_hash", "DEFAULT_MAX_CHARS"]

DEFAULT_MAX_CHARS = 40_000  # about 10k tokens: enough to judge, bounded in cost
_SYSTEM_SHARE = 0.15
_LAST_TURN_SHARE = 0.6


def request_messages(raw: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Any, Any]:
    """``(messages, system, tools)`` of a data row (a ``prompt`` becomes one user message)."""
    if "messages" in raw:
        messages = list(raw["messages"])
    else:
        messages = [{"role": "user", "content": raw["prompt"]}]
    return messages, raw.get("system"), raw.get("tools")


def request_hash(raw: Mapping[str, Any]) -> str:
    """SHA-256 of what a model would see (messages, system, tools); other row keys do not count,
    and ``{"prompt": p}`` hashes like ``{"messages": [{"role": "user", "content": p}]}``."""
    messages, system, tools = request_messages(raw)
    canon = json.dumps(
        {"messages": messages, "system": system, "tools": tools},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else []:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "image":
            parts.append("[image]")
        elif kind == "document":
            source = block.get("source") or {}
            data = source.get("data") if source.get("type") == "text" else None
            parts.append(data if isinstance(data, str) else "[document]")
        elif kind == "tool_use":
            args = json.dumps(block.get("input", {}), ensure_ascii=False, default=str)
            parts.append(f"[tool call {block.get('name', '')}] {args}")
        elif kind == "tool_result":
            parts.append("[tool result] " + _text(block.get("content", "")))
        elif kind:
            parts.append(f"[{kind} block]")
    return "\n".join(parts)


def _cut(text: str, budget: int) -> str:
    """Keep the head (80%) and tail (20%) of ``text`` within ``budget`` characters."""
    if len(text) <= budget:
        return text
    budget = max(budget, 40)
    head, tail = int(budget * 0.8), int(budget * 0.2)
    return f"{text[:head]}\n[... {len(text) - head - tail:,} characters left out ...]\n{text[-tail:]}"


def render_transcript(raw: Mapping[str, Any], max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Size line, system prompt, tool names and turns, in order, within about ``max_chars``."""
    req = normalize(dict(raw))  # validates the row and gives the size estimate
    messages, system, tools = request_messages(raw)
    turns = [(str(m.get("role")), _text(m.get("content"))) for m in messages]
    last_user = max(i for i, (role, _) in enumerate(turns) if role == "user")

    rendered: dict[int, str] = {last_user: _cut(turns[last_user][1], int(max_chars * _LAST_TURN_SHARE))}
    left = max_chars - len(rendered[last_user])
    system_text = _cut(_text(system), int(max_chars * _SYSTEM_SHARE)) if system else ""
    left -= len(system_text)
    for i in sorted((i for i in range(len(turns)) if i != last_user), reverse=True):  # recent first
        if left < 200:
            break  # older turns are left out entirely
        rendered[i] = _cut(turns[i][1], left // 2)
        left -= len(rendered[i])

    out = [f"Size: about {req.est_tokens:,} tokens in {req.n_turns} message(s)."]
    if system_text:
        out.append(f"[system]\n{system_text}")
    if tools:
        names = [str(t.get("name", "?")) for t in tools if isinstance(t, Mapping)]
        out.append("[tools] " + ", ".join(names))
    omitted = sum(1 for i in range(len(turns)) if i not in rendered)
    if omitted:
        out.append(f"[... {omitted} earlier message(s) left out ...]")
    out.extend(f"[{role}]\n{rendered[i]}" for i, (role, _) in enumerate(turns) if i in rendered)
    return "\n\n".join(out)
