"""Secrets never reach the database, a log line or an export: API keys held in the
environment and any `Bearer ...` token are replaced before text is written."""
from __future__ import annotations

import logging
import os
import re

MASK = "[redacted]"
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.I)
_PATTERNS = [
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{4,}"),
    re.compile(r"(?i)(\b(?:api[_-]?key|x-api-key|authorization|access[_-]?token)\b[\"']?\s*[:=]\s*[\"']?)"
               r"(?!\[redacted\])[^\s\"',;}]{4,}"),
    re.compile(r"(\bsk-)[A-Za-z0-9_-]{8,}"),
]


def _secret_values() -> list[str]:
    return sorted({v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 6},
                  key=len, reverse=True)


def redact(text):
    """`text` with secrets masked; anything that is not a string is returned as it is."""
    if not isinstance(text, str) or not text:
        return text
    for value in _secret_values():
        text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in log records of the `modelpick` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


logging.getLogger("modelpick").addFilter(RedactingFilter())
