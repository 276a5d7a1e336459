"""Secrets never reach the database, a log line, a journal, a run's log file or an export.

Masking goes by the values this process holds, not by what a variable happens to be called:
every variable whose name ends in KEY, TOKEN, SECRET or PASSWORD, every variable a model spec
names as its key (`?api_key_env=LLM_AUTH`), the dashboard password and any value handed to
`hold()`. Error text (from servers, tracebacks) is also scrubbed of anything that looks like a
credential (`Bearer ...`, `api_key=...`, `sk-...`); a model's answer only of the held values,
so an answer that explains what a bearer header looks like keeps its example."""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from urllib.parse import quote

MASK = "[redacted]"
MIN_SECRET_CHARS = 6  # shorter values would mask ordinary words
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.I)
_PATTERNS = [
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{4,}"),
    re.compile(r"(?i)(\b(?:api[_-]?key|x-api-key|authorization|access[_-]?token)\b[\"']?\s*[:=]\s*[\"']?)"
               r"(?!\[redacted\])[^\s\"',;}]{4,}"),
    re.compile(r"(\bsk-)[A-Za-z0-9_-]{8,}"),
]
_HELD_NAMES: set[str] = {"MODELPICK_PASSWORD"}
_HELD_VALUES: set[str] = set()


def hold_env(name: str) -> None:
    """Treat the variable `name` as a secret wherever text leaves the process."""
    if name:
        _HELD_NAMES.add(name)


def hold(value: str | None) -> None:
    """Treat `value` (a password from a secrets file, a token) as a secret."""
    if isinstance(value, str) and len(value) >= MIN_SECRET_CHARS:
        _HELD_VALUES.add(value)


def held_values() -> list[str]:
    """Every secret this process holds, with the forms it takes when echoed inside JSON or a
    URL, longest first (so a secret that contains another is masked whole)."""
    values = set(_HELD_VALUES)
    for name, value in os.environ.items():
        if (name in _HELD_NAMES or _SECRET_NAME.search(name)) and len(value) >= MIN_SECRET_CHARS:
            values.add(value)
    forms = set()
    for v in values:
        forms.update({v, json.dumps(v)[1:-1], quote(v, safe="")})
    return sorted((f for f in forms if len(f) >= MIN_SECRET_CHARS), key=len, reverse=True)


def mask_held(text):
    """`text` with the secrets this process holds masked (for model output); anything that is
    not a string is returned as it is."""
    if not isinstance(text, str) or not text:
        return text
    for value in held_values():
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact(text):
    """`text` with held secrets and anything that looks like a credential masked (for error
    text, details and log lines); anything that is not a string is returned as it is."""
    if not isinstance(text, str) or not text:
        return text
    text = mask_held(text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in log records of the `modelpick` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


class _MaskedStream:
    """A text stream that masks secrets line by line before they reach the real stream (the
    console, or the log file a dashboard run writes to). Tracebacks pass through it too."""

    def __init__(self, raw):
        self._raw, self._pending = raw, ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending or len(self._pending) > 65536:
            head, sep, self._pending = self._pending.rpartition("\n")
            if not sep:
                head, self._pending = self._pending, ""
            self._raw.write(redact(head + sep))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._raw.write(redact(self._pending))
            self._pending = ""
        self._raw.flush()

    def __getattr__(self, name):
        return getattr(self._raw, name)


def guard_streams() -> None:
    """Mask secrets in everything this process prints (stdout and stderr)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _MaskedStream):
            setattr(sys, name, _MaskedStream(stream))


logging.getLogger("modelpick").addFilter(RedactingFilter())
