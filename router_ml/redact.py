"""Scrub secrets and personal data out of text before it is stored anywhere.

Two levels, used by the decision log:

- ``scrub_secrets`` (always applied, whatever the privacy mode): Anthropic / OpenAI style keys
  (``sk-ant-...``, ``sk-...``), ``Bearer`` tokens, ``x-api-key`` / ``api_key=`` / ``password:``
  values, AWS, GitHub, Slack and Google keys, JWTs and PEM private keys. A key is never useful for
  retraining, so there is no mode that keeps one.
- ``redact`` (privacy mode "redact"): the above, plus e-mail addresses, card numbers (Luhn-checked),
  IPv4/IPv6 addresses, phone numbers and long random-looking tokens.

Replacements are fixed placeholders (``[SECRET]``, ``[EMAIL]``, ...), so redacted text stays readable
and the same input always gives the same output. Both functions accept any text and never raise.

>>> scrub_secrets("key: sk-ant-api03-abcdefghijklmnop, hi")
'key: [SECRET], hi'
>>> redact("mail bob@example.com or call +1 (555) 010-9999")
'mail [EMAIL] or call [PHONE]'
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any, Callable

__all__ = ["scrub_secrets", "redact", "scrub_obj", "strip_base64", "clean_text", "SECRET"]

SECRET = "[SECRET]"

# (substrings that must occur, pattern): a branch runs only when one of its substrings is in the
# lowercased text, which skips nearly all of them on ordinary prose (one regex scan per branch made
# logging 3x slower). Order matters: key formats first, then "Bearer x", then "name: value", which
# keeps the name ("keep" group) so the text still reads "x-api-key: [SECRET]".
_SECRET_BRANCHES = [
    (("-----begin",), r"(?s:-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z))"),
    (("sk-",), r"\bsk-ant-[A-Za-z0-9_\-]{6,}|\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_\-]{16,}"),
    (("akia", "asia"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}\b|\bgithub_pat_[A-Za-z0-9_]{20,}"),
    (("xox",), r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
    (("aiza",), r"\bAIza[0-9A-Za-z_\-]{30,}"),
    (("eyj",), r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    (("bearer", "basic", "token"), r"(?P<keep>(?i:\b(?:Bearer|Basic|Token)\s+))[A-Za-z0-9._~+/=\-]{8,}"),
    # name = value, name: value, "name": "value", name=value in URLs and env files
    (("key", "secret", "token", "passw", "pwd", "authorization"),
     r"(?P<keep>(?i:(?<![a-z0-9])(?=[acprstx])(?:x-api-key|api[_-]?key|apikey|secret(?:[_-]?key)?|client[_-]?secret|"
     r"access[_-]?token|auth[_-]?token|refresh[_-]?token|token|password|passwd|pwd|authorization|"
     r"private[_-]?key))[\"']?\s*[:=]\s*[\"']?)(?!\[SECRET\]|(?i:Bearer|Basic|Token)\s)[^\s\"',;&}]{6,}"),
]
_SECRETS = [(triggers, re.compile(pattern)) for triggers, pattern in _SECRET_BRANCHES]

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"\d(?<![\d\-]\d)(?:[ \-]?\d){12,18}(?![\d\-])")  # lookbehind after the first
# digit: a pattern that starts with a character class lets the regex engine skip ahead (4x faster)
_IPV4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\d|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(r"[+(\d](?<![\w+\-][+(\d])[\d\s().\-]{6,20}\d(?![\w\-])")
_DIGIT = re.compile(r"\d")
_DATE = re.compile(r"\d{4}[\-/.]\d{1,2}[\-/.]\d{1,2}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{32,}")


def _secret(m: re.Match[str]) -> str:
    return (m.groupdict().get("keep") or "") + SECRET


def scrub_secrets(text: str) -> str:
    """Replace anything that looks like a credential with ``[SECRET]``."""
    if not isinstance(text, str) or len(text) < 6:
        return text
    lower = text.lower()
    for triggers, pattern in _SECRETS:
        for t in triggers:
            if t in lower:
                text = pattern.sub(_secret, text)
                break
    return text


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn(digits) else m.group(0)


def _ipv4(m: re.Match[str]) -> str:
    return "[IP]" if all(int(part) <= 255 for part in m.group(0).split(".")) else m.group(0)


def _token(m: re.Match[str]) -> str:
    """Long runs with both letters and digits look like keys; plain words and numbers do not."""
    s = m.group(0)
    return SECRET if any(c.isdigit() for c in s) and any(c.isalpha() for c in s) else s


def _ipv6(m: re.Match[str]) -> str:
    if not any(ch.isdigit() for ch in m.group(0)):
        return m.group(0)  # "a::b" in C++ parses as an address, but is a scope
    try:
        ipaddress.IPv6Address(m.group(0))
    except ValueError:
        return m.group(0)  # a time of day, a C++ scope, ...
    return "[IP]"


def _phone(m: re.Match[str]) -> str:
    s = m.group(0)
    if _DATE.match(s):  # "2024-01-15 10" is a timestamp, not a number to call
        return s
    n = sum(ch.isdigit() for ch in s)
    return "[PHONE]" if 9 <= n <= 15 else s


def redact(text: str) -> str:
    """``scrub_secrets`` plus e-mails, card numbers, IP addresses, phone numbers and long tokens.

    Order matters: cards before phones (a card is also a long digit run), IPs before phones.
    """
    if not isinstance(text, str) or len(text) < 6:
        return text
    text = scrub_secrets(text)
    if "@" in text:
        text = _EMAIL.sub("[EMAIL]", text)
    if not _DIGIT.search(text):  # every pattern below needs a digit
        return text
    text = _CARD.sub(_card, text)
    text = _IPV4.sub(_ipv4, text)
    if text.count(":") >= 2:  # an IPv6 address has at least two
        text = _IPV6.sub(_ipv6, text)
    text = _PHONE.sub(_phone, text)
    return _TOKEN.sub(_token, text)


def scrub_obj(obj: Any, fn: Callable[[str], str] = scrub_secrets) -> Any:
    """Apply ``fn`` to every string (keys included) inside nested dicts, lists and tuples; a copy."""
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        # Keys made only of letters and underscores ("role", "tool_use_id") cannot hold a secret.
        return {k if not isinstance(k, str) or k.replace("_", "").isalpha() else fn(k): scrub_obj(v, fn)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub_obj(v, fn) for v in obj]
    return obj


def strip_base64(obj: Any) -> Any:
    """A copy with image/document base64 payloads replaced by their size and hash (not text, and big)."""
    if isinstance(obj, dict):
        if obj.get("type") == "base64" and isinstance(obj.get("data"), str):
            data = obj["data"]
            digest = hashlib.sha256(clean_text(data).encode()).hexdigest()[:16]
            return {**obj, "data": f"<omitted {len(data)} chars sha256:{digest}>"}
        return {k: strip_base64(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strip_base64(v) for v in obj]
    return obj


def clean_text(text: str) -> str:
    """Replace lone surrogates (which UTF-8 cannot encode) instead of failing on them."""
    return text.encode("utf-8", "replace").decode("utf-8")
