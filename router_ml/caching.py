"""Where to put prompt-cache breakpoints (``cache_control``) so that caching pays.

A cache write costs 1.25x the input price and a read 0.1x, so a breakpoint pays only on a prefix that
is sent again within the cache's lifetime and is long enough to be cached at all. We consider at most
three places, in prompt order (tools, system, messages):

1. **static prefix**: the end of the system prompt (or of the tools when there is no system prompt);
2. **shared context**: in the first user turn, its last block when more turns follow (it is resent
   with every turn), or else its last block before the question (a document followed by a question);
3. **conversation so far**: the last block of the request, only for conversations (more than one
   message, or a conversation id), so the next turn reads the history from the cache.

Each is placed only if the tokens since the previous breakpoint (ours or the caller's) reach the
model's minimum cacheable length (estimated at 4 characters a token), and never beyond the API's 4
breakpoints in all (the caller's own count). The caller's objects are never changed: containers on
the path to a new breakpoint are copied.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from .normalize import CHARS_PER_TOKEN, IMAGE_TOKENS

__all__ = ["add_cache_control", "min_cache_tokens", "MIN_CACHE_TOKENS", "MAX_BREAKPOINTS"]

MAX_BREAKPOINTS = 4
# Model-family substring -> minimum cacheable prefix in tokens. Anthropic's documented floors: 1,024 for
# most Sonnet / Opus models, 2,048 for Haiku; some newer models document higher ones (a breakpoint under
# the floor is ignored by the API at no cost, so the lower number errs on the side of caching).
MIN_CACHE_TOKENS: dict[str, int] = {"haiku": 2048, "sonnet": 1024, "opus": 1024}
_DEFAULT_MIN = 1024
_EPHEMERAL = {"type": "ephemeral"}
_MARKABLE = {"text", "image", "document", "tool_use", "tool_result", "search_result"}


def min_cache_tokens(model: str, table: Mapping[str, int] | None = None) -> int:
    """The minimum cacheable length for ``model``: an exact entry, else a family substring, else 1,024."""
    table = MIN_CACHE_TOKENS if table is None else table
    if model in table:
        return table[model]
    for family, n in table.items():
        if family in model:
            return n
    return _DEFAULT_MIN


def _chars(block: Any) -> int:
    """Size of a block in characters (what the 4-chars-a-token estimate reads)."""
    if isinstance(block, str):
        return len(block)
    if not isinstance(block, Mapping):
        dump = getattr(block, "model_dump", None)
        return _chars(dump()) if dump else len(str(block))
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return len(block["text"])
    if kind == "image":
        return int(IMAGE_TOKENS * CHARS_PER_TOKEN)
    source = block.get("source")
    if kind == "document" and isinstance(source, Mapping) and isinstance(source.get("data"), str):
        data = source["data"]
        return len(data) if source.get("type") == "text" else int(len(data) * 0.75 / 3 * CHARS_PER_TOKEN)
    if kind == "tool_result" and isinstance(block.get("content"), (str, list)):
        content = block["content"]
        return len(content) if isinstance(content, str) else sum(_chars(b) for b in content)
    return len(json.dumps(block, ensure_ascii=False, default=str))


def _marked(block: Any) -> bool:
    return isinstance(block, Mapping) and bool(block.get("cache_control"))


def _markable(block: Any) -> bool:
    """A dict block of a type that takes ``cache_control`` (strings become text blocks when marked)."""
    if isinstance(block, str):
        return bool(block)
    if not isinstance(block, Mapping) or block.get("type") not in _MARKABLE:
        return False
    return block.get("type") != "text" or bool(block.get("text"))


def _slots(params: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], int, bool, bool]]:
    """Every block in prompt order: (path, chars, already marked, can be marked)."""
    out = []
    for i, tool in enumerate(params.get("tools") or []):
        out.append((("tools", i), _chars(tool), _marked(tool), isinstance(tool, Mapping)))
    system = params.get("system")
    if isinstance(system, str):
        out.append((("system", None), len(system), False, _markable(system)))
    elif isinstance(system, list):
        for i, b in enumerate(system):
            out.append((("system", i), _chars(b), _marked(b), _markable(b)))
    for m, msg in enumerate(params.get("messages") or []):
        content = msg.get("content") if isinstance(msg, Mapping) else None
        if isinstance(content, str):
            out.append((("messages", m, None), len(content), False, _markable(content)))
        elif isinstance(content, list):
            for k, b in enumerate(content):
                out.append((("messages", m, k), _chars(b), _marked(b), _markable(b)))
    return out


def _mark(params: dict[str, Any], path: tuple[Any, ...]) -> None:
    """Add a breakpoint at ``path`` in ``params`` (a copy), copying every container on the way."""
    where = path[0]
    if where == "tools":
        tools = list(params["tools"])
        tools[path[1]] = {**tools[path[1]], "cache_control": dict(_EPHEMERAL)}
        params["tools"] = tools
    elif where == "system":
        system = params["system"]
        if path[1] is None:
            params["system"] = [{"type": "text", "text": system, "cache_control": dict(_EPHEMERAL)}]
        else:
            system = list(system)
            system[path[1]] = {**system[path[1]], "cache_control": dict(_EPHEMERAL)}
            params["system"] = system
    else:
        _, m, k = path
        messages = list(params["messages"])
        msg = dict(messages[m])
        if k is None:
            msg["content"] = [{"type": "text", "text": msg["content"], "cache_control": dict(_EPHEMERAL)}]
        else:
            content = list(msg["content"])
            content[k] = {**content[k], "cache_control": dict(_EPHEMERAL)}
            msg["content"] = content
        messages[m] = msg
        params["messages"] = messages


def _path_name(path: tuple[Any, ...]) -> str:
    """Where the breakpoint is in the request as sent (a marked string became block 0)."""
    if path[0] == "messages":
        return f"messages[{path[1]}].content[{path[2] or 0}]"
    return f"{path[0]}[{path[1] or 0}]"


def add_cache_control(
    params: Mapping[str, Any], *, min_tokens: int, conversation: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Return ``(new params, where breakpoints were added)``; ``params`` itself is left unchanged.

    ``params`` are ``messages.create`` keyword arguments; ``conversation`` says the request belongs
    to a conversation that will continue (a conversation id was given).
    """
    out = dict(params)
    slots = _slots(params)
    used = sum(1 for s in slots if s[2]) + (1 if params.get("cache_control") else 0)
    if not slots or used >= MAX_BREAKPOINTS:
        return out, []
    messages = params.get("messages") or []
    n_static = sum(1 for s in slots if s[0][0] != "messages")
    first_user = [i for i, s in enumerate(slots) if s[0][0] == "messages" and s[0][1] == 0]
    multi = len(messages) > 1

    candidates: list[int] = []
    if n_static:
        candidates.append(n_static - 1)  # 1. static prefix
    if first_user and isinstance(messages[0], Mapping) and messages[0].get("role") == "user":
        last = first_user[-1] if multi else first_user[-1] - 1  # 2. shared context, before the question
        if last >= first_user[0]:
            candidates.append(last)
    if (multi or conversation) and slots[-1][0][0] == "messages":
        candidates.append(len(slots) - 1)  # 3. the conversation so far

    placed: list[str] = []
    since, start = 0, 0
    for c in sorted(set(candidates)):
        for path, chars, marked, _ in slots[start : c + 1]:
            since = 0 if marked else since + chars
        start = c + 1
        path, _, marked, markable = slots[c]
        if marked or not markable or since / CHARS_PER_TOKEN < min_tokens or used >= MAX_BREAKPOINTS:
            continue
        _mark(out, path)
        placed.append(_path_name(path))
        used += 1
        since = 0
    return out, placed
