"""Keep secrets out of spans, logs, audit records, dead letters and error bodies.

Two nets: values under secret-looking keys are replaced wherever they appear in a payload,
and every configured secret value is scrubbed out of any text (``Redactor.scrub``).
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

MASK = "[redacted]"
SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|authorization|api[_-]?key|private|signing[_-]?key|credential)",
    re.IGNORECASE,
)
MAX_TEXT = 4096


@functools.lru_cache(maxsize=4096)
def _secret_key(name: str) -> bool:
    """Whether a payload key names a secret (the same few keys come again and again)."""
    return SECRET_KEY.search(name) is not None


class Redactor:
    """Knows every secret value configured and removes it (and its encodings) from output."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets or []:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Register a secret value; values shorter than 4 characters are too common to scrub."""
        if secret and len(secret) >= 4:
            import base64

            self._secrets.add(secret)
            self._secrets.add(base64.b64encode(secret.encode()).decode().rstrip("="))
            # one scan of the text for all of them, the longest first where two start together
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def scrub(self, text: str) -> str:
        """Replace every known secret value in ``text``."""
        return text if self._pattern is None else self._pattern.sub(MASK, text)

    def payload(self, value: Any, *, limit: int = MAX_TEXT) -> Any:
        """A copy of a JSON-like payload with secret keys masked and long strings cut."""
        if isinstance(value, str):  # first: most values are strings (an audit record's attributes)
            text = self.scrub(value)
            return text if len(text) <= limit else f"{text[:limit]}…[{len(text)} chars]"
        if isinstance(value, dict):
            return {
                k: (MASK if _secret_key(str(k)) else self.payload(v, limit=limit))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.payload(v, limit=limit) for v in value]
        return value


def sent_credentials(headers: Any) -> list[str]:
    """Credential values a request carried (``Authorization`` and secret-named headers), with
    the token alone after a scheme (``Bearer <token>``). Tokens a plugin derives at run time
    (OAuth access tokens, Basic pairs) are not configured secrets, so the redactor cannot
    know them; a vendor that echoes the request in its error answer must not leak them."""
    values: list[str] = []
    for name, value in headers.items():
        if not SECRET_KEY.search(str(name)) or len(value) < 8:
            continue
        values.append(value)
        _scheme, _, token = value.partition(" ")
        if token.strip() and len(token.strip()) >= 8:
            values.append(token.strip())
    return sorted(set(values), key=len, reverse=True)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs secrets from every formatted message and its traceback."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redactor.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.scrub(record.exc_text)
        return True


def install_log_redaction(redactor: Redactor) -> None:
    """Attach the redacting filter to every handler of the root logger."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(redactor))
