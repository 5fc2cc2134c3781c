"""What vendor plugins share about files they download: a file's name from a
``Content-Disposition`` header, and its content type from the vendor's answer or its name."""

from __future__ import annotations

import email.message
import mimetypes

# Content types that say nothing about the file: guess from its name instead.
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
FALLBACK_TYPE = "application/octet-stream"


def media_type(value: object) -> str:
    """``"Text/Plain; charset=utf-8"`` as ``"text/plain"`` (``""`` for nothing)."""
    return str(value or "").split(";", 1)[0].strip().lower()


def guess_type(filename: str) -> str | None:
    """The content type a file name suggests, or ``None``."""
    return mimetypes.guess_type(filename, strict=False)[0]


def disposition_filename(header: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header (``filename*`` or ``filename``)."""
    if not header:
        return None
    message = email.message.Message()
    message["content-disposition"] = header
    return message.get_filename() or None


def content_type(filename: str, *answered: object) -> str:
    """The first of ``answered`` (vendor fields or headers) that names a type, else the type
    ``filename`` suggests, else ``application/octet-stream``."""
    for value in answered:
        found = media_type(value)
        if found not in GENERIC_TYPES:
            return found
    return guess_type(filename) or FALLBACK_TYPE
