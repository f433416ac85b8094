"""CDR format readers: raw file bytes in, normalised records and per-record rejects out.

Contract every reader follows (see docs/mediation.md):

``read(source, file_key, data) -> ParsedFile`` where ``data`` is the *decompressed* content.

* ``ParsedFile.records`` has the raw-usage columns of ``schemas.contracts.RAW_USAGE_SCHEMA``
  (a subset of the usage schema, before record ids, dedup keys and guiding), plus
  ``source``, ``source_file`` and ``record_offset`` (1-based line number for text formats,
  byte offset of the record for binary formats).
* ``ParsedFile.rejects`` has ``schemas.contracts.REJECT_SCHEMA``: one row per record that could not
  be decoded, with a reason code, a human message and the raw text (or hex for binary).
* A file that cannot be read at all raises :class:`UnreadableFile` with a reason code; the caller
  quarantines it and goes on with the other files.

Readers register themselves in :data:`READERS` by format name. Gzip is unwrapped by the caller
(:func:`open_cdr_bytes`), so every format has a gzip variant for free.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl


class UnreadableFile(Exception):  # noqa: N818 - a domain outcome, not a programming error
    """The whole file cannot be read; ``reason_code`` goes into the quarantine row."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True)
class ParsedFile:
    records: pl.DataFrame
    rejects: pl.DataFrame


Reader = Callable[[str, str, bytes], ParsedFile]
READERS: dict[str, Reader] = {}


def register(fmt: str) -> Callable[[Reader], Reader]:
    def wrap(fn: Reader) -> Reader:
        READERS[fmt] = fn
        return fn

    return wrap


def open_cdr_bytes(file_key: str, data: bytes) -> bytes:
    """Unwrap gzip (by magic bytes, not by name); a truncated or corrupt gzip is unreadable."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise UnreadableFile("CORRUPT_GZIP", f"{file_key}: gzip stream is truncated or corrupt ({exc})") from exc
