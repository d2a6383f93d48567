"""Turn any request shape apps send into the text the embedder sees plus a few numeric features.

Accepted shapes (all give the same ``NormalizedRequest`` for the same content):

- a plain string: ``"Translate 'hello' to French"``;
- a list of Messages-API messages: ``[{"role": "user", "content": "..."}]``, content a string or
  blocks (text, image, document, tool_use, tool_result, ...);
- the keyword arguments of ``messages.create`` (``system``, ``messages``, ``tools``, ...), given as
  keywords or as one mapping; a data-file row (``prompt`` instead of ``messages``) works too.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .errors import InvalidRequestError

__all__ = ["NormalizedRequest", "normalize", "normalize_many", "estimate_tokens", "CHARS_PER_TOKEN", "NUMERIC_FEATURES"]

CHARS_PER_TOKEN = 4.0
IMAGE_TOKENS = 1_600  # a typical ~1.1 MP image at Anthropic's (width x height / 750) estimate
# How much of each part the embedder gets (all-MiniLM-L6-v2 reads 256 word pieces, ~1,000 chars).
LAST_TURN_HEAD = 700
LAST_TURN_TAIL = 200
CONTEXT_CHARS = 250
CODE_SCAN_CHARS = 20_000  # has_code looks this far into the last user turn: bounded cost per request

NUMERIC_FEATURES = ("log_tokens", "log_turns", "has_code", "has_tools", "has_images", "has_system")

_CODE = re.compile(
    r"```|^\s*(def |class |import |from \S+ import|#include|func |fn |public |package |SELECT |"
    r"CREATE TABLE|const |let |var |function |<\?php|<div|apiVersion:)|[;{}]\s*$|=>|\)\s*\{",
    re.MULTILINE | re.IGNORECASE,
)
_ROLES = ("user", "assistant")


@dataclass(frozen=True)
class NormalizedRequest:
    """What the classifier sees of a request."""

    text: str  # last user turn first, then bounded context; what the embedder reads
    last_user: str  # the full text of the last user turn
    est_tokens: int  # estimate for the whole request (system, every turn, tools, images)
    n_turns: int  # number of messages
    has_code: bool
    has_tools: bool
    has_images: bool
    has_system: bool

    def features(self) -> list[float]:
        """Numeric features in ``NUMERIC_FEATURES`` order."""
        return [
            math.log1p(self.est_tokens),
            math.log1p(self.n_turns),
            float(self.has_code),
            float(self.has_tools),
            float(self.has_images),
            float(self.has_system),
        ]


def estimate_tokens(chars: int) -> int:
    """About four characters a token: the rule of thumb for English prose and code."""
    return int(math.ceil(chars / CHARS_PER_TOKEN))


def _clean(text: str) -> str:
    # Lone surrogates cannot be encoded; replace them rather than crash the tokenizer.
    return text.encode("utf-8", "replace").decode("utf-8")


class _Walk:
    """Accumulates text and sizes while walking content blocks."""

    def __init__(self) -> None:
        self.chars = 0
        self.images = 0
        self.tool_blocks = 0

    def content(self, content: Any, where: str) -> str:
        if isinstance(content, str):
            self.chars += len(content)
            return content
        if not isinstance(content, list):
            raise InvalidRequestError(
                f"{where}.content must be a string or a list of blocks, got {type(content).__name__}"
            )
        parts = []
        for i, block in enumerate(content):
            text = self.block(block, f"{where}.content[{i}]")
            if text:
                parts.append(text)
        return "\n".join(parts)

    def block(self, block: Any, where: str) -> str:
        dump = getattr(block, "model_dump", None)
        if callable(dump):  # an SDK content block from a previous reply, put back into the history
            block = dump(exclude_none=True)
        if not isinstance(block, Mapping):
            raise InvalidRequestError(f"{where} must be a block object, got {type(block).__name__}")
        kind = block.get("type")
        if not isinstance(kind, str):
            raise InvalidRequestError(f"{where} has no 'type'")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise InvalidRequestError(f"{where} is a text block without a string 'text'")
            self.chars += len(text)
            return text
        if kind == "image":
            self.images += 1
            return ""
        if kind == "document":
            return self._document(block, where)
        if kind == "tool_use":
            self.tool_blocks += 1
            payload = json.dumps(block.get("input", {}), ensure_ascii=False, default=str)
            self.chars += len(payload)
            return f"[tool call {block.get('name', '')}] {payload[:200]}"
        if kind == "tool_result":
            self.tool_blocks += 1
            inner = block.get("content", "")
            return self.content(inner, where) if inner else ""
        # thinking, search results, server tools, future types: count their size, read nothing.
        self.chars += len(json.dumps(block, ensure_ascii=False, default=str))
        return ""

    def _document(self, block: Mapping[str, Any], where: str) -> str:
        source = block.get("source")
        if not isinstance(source, Mapping):
            raise InvalidRequestError(f"{where} is a document block without a 'source' object")
        data = source.get("data")
        if source.get("type") == "text" and isinstance(data, str):
            self.chars += len(data)
            return data
        if isinstance(data, str):  # base64 (PDF): ~3/4 byte per character, ~1 token per 3 bytes
            self.chars += int(len(data) * 0.75 / 3 * CHARS_PER_TOKEN)
        elif source.get("type") == "content" and isinstance(source.get("content"), list):
            return self.content(source["content"], where + ".source")
        return ""


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _head_tail(text: str, head: int, tail: int) -> str:
    """The first ``head`` and last ``tail`` characters of ``text`` with whitespace runs collapsed.

    Collapsing a prefix (suffix) of the text gives a prefix (suffix) of the collapsed whole, so a long
    text is read through windows that double until they hold enough: the cost is bounded by the
    window, not by the text (a 500k-character paste costs what a 5k one does).
    """
    need, window = head + tail + 1, 4 * (head + tail) + 64
    while window < len(text):
        front = _collapse(text[:window])
        if len(front) >= need:
            back = _collapse(text[-window:])
            if len(back) >= need:
                return front[:head] + " … " + (back[-tail:] if tail else "")
        window *= 2
    text = _collapse(text)
    if len(text) <= head + tail:
        return text
    return text[:head] + " … " + (text[-tail:] if tail else "")


def _split_args(request: Any, kwargs: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """Return (messages, system, tools) from any accepted shape."""
    if request is not None and kwargs:
        raise InvalidRequestError("pass the request either positionally or as keywords, not both")
    if request is None:
        request = dict(kwargs)
        if not request:
            raise InvalidRequestError("no request given")
    if isinstance(request, str):
        return [{"role": "user", "content": request}], None, None
    if isinstance(request, Mapping):
        if "messages" in request and "prompt" in request:
            raise InvalidRequestError("request has both 'messages' and 'prompt'; give one")
        if "prompt" in request:
            prompt = request["prompt"]
            if not isinstance(prompt, str):
                raise InvalidRequestError(f"'prompt' must be a string, got {type(prompt).__name__}")
            messages: Any = [{"role": "user", "content": prompt}]
        elif "messages" in request:
            messages = request["messages"]
        else:
            raise InvalidRequestError(
                "request mapping needs 'messages' or 'prompt'; got keys "
                + ", ".join(sorted(map(str, request))[:10])
            )
        return messages, request.get("system"), request.get("tools")
    if isinstance(request, (list, tuple)):
        return list(request), None, None
    raise InvalidRequestError(
        f"cannot route a {type(request).__name__}; pass a string, a list of messages, "
        "or messages.create keyword arguments"
    )


def normalize(request: Any = None, /, **kwargs: Any) -> NormalizedRequest:
    """Normalize one request; raise ``InvalidRequestError`` (a ``ValueError``) naming what is wrong."""
    if isinstance(request, str) and not kwargs:  # the common case, without the walk over blocks
        last_user = _clean(request)
        if not last_user.strip():
            raise InvalidRequestError("request is empty: the user turn has no text, image or document")
        return _finish(last_user, [], est_tokens=estimate_tokens(len(request)), n_turns=1)
    messages, system, tools = _split_args(request, kwargs)
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("'messages' must be a non-empty list")

    walk = _Walk()
    system_text = ""
    if system is not None:
        system_text = walk.content(system, "system")
    tool_chars = 0
    if tools is not None:
        if not isinstance(tools, (list, tuple)):
            raise InvalidRequestError(f"'tools' must be a list, got {type(tools).__name__}")
        tool_chars = len(json.dumps(list(tools), ensure_ascii=False, default=str))

    texts: list[tuple[str, str]] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, Mapping):
            raise InvalidRequestError(f"{where} must be an object with 'role' and 'content'")
        role = msg.get("role")
        if role not in _ROLES:
            raise InvalidRequestError(f"{where}.role must be 'user' or 'assistant', got {role!r}")
        if "content" not in msg:
            raise InvalidRequestError(f"{where} has no 'content'")
        texts.append((role, walk.content(msg["content"], where)))

    user_turns = [t for role, t in texts if role == "user"]
    if not user_turns:
        raise InvalidRequestError("request has no user turn to route")
    last_user = _clean(user_turns[-1])
    if not last_user.strip() and not walk.images and len(texts) == 1 and not system_text:
        raise InvalidRequestError("request is empty: the user turn has no text, image or document")

    context = []
    earlier = [t for _, t in texts[:-1] if t.strip()]
    if earlier:
        context.append("earlier: " + _head_tail(_clean(earlier[-1]), CONTEXT_CHARS, 0))
    if system_text.strip():
        context.append("system: " + _head_tail(_clean(system_text), CONTEXT_CHARS, 0))
    return _finish(
        last_user,
        context,
        est_tokens=estimate_tokens(walk.chars + tool_chars) + walk.images * IMAGE_TOKENS,
        n_turns=len(messages),
        has_tools=bool(tools) or walk.tool_blocks > 0,
        has_images=walk.images > 0,
        has_system=bool(system_text.strip()),
    )


def _finish(
    last_user: str,
    context: list[str],
    *,
    est_tokens: int,
    n_turns: int,
    has_tools: bool = False,
    has_images: bool = False,
    has_system: bool = False,
) -> NormalizedRequest:
    text = _head_tail(last_user, LAST_TURN_HEAD, LAST_TURN_TAIL) or "(no text)"
    if context:
        text = text + " || " + " | ".join(context)
    return NormalizedRequest(
        text=text,
        last_user=last_user,
        est_tokens=est_tokens,
        n_turns=n_turns,
        has_code=bool(_CODE.search(last_user, 0, CODE_SCAN_CHARS)),
        has_tools=has_tools,
        has_images=has_images,
        has_system=has_system,
    )


def normalize_many(requests: Iterable[Any]) -> list[NormalizedRequest]:
    return [r if isinstance(r, NormalizedRequest) else normalize(r) for r in requests]
