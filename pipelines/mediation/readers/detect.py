"""Recognise a landed CDR file's format from its first bytes (never from its name alone).

Rules, in order (documented in docs/formats.md):

1. gzip magic: the head is unwrapped first (as far as it goes), so ``x.csv.gz`` is detected by content;
2. nothing but whitespace -> ``UnreadableFile("EMPTY_FILE")``;
3. ``PAR1`` -> canonical Parquet;
4. a BER context-class constructed tag (first byte 0xA0-0xBF; e.g. ``BF 4F`` pGWRecord [79],
   ``A0`` moCallRecord [0]), or a plausible TS 32.297 CDR file header (``ts32297.looks_framed``)
   -> 3GPP TS 32.298 BER;
5. ``{`` -> FreeSWITCH mod_json_cdr;
6. text: the first of the first few lines that looks like a known layout decides: a header starting
   ``network_record_id`` -> canonical CSV; bare duration,billsec then a quoted Asterisk disposition ->
   Asterisk cdr_csv; a quoted timestamp in the 5th field -> FreeSWITCH mod_cdr_csv;
7. anything else -> ``UnreadableFile("UNKNOWN_FORMAT")``.
"""

from __future__ import annotations

import importlib
import re
import zlib
from functools import partial

from pipelines.mediation.readers import READERS, ParsedFile, Reader, UnreadableFile, open_cdr_bytes
from pipelines.mediation.readers.ts32297 import looks_framed

CANONICAL_CSV = "canonical_csv"
CANONICAL_PARQUET = "canonical_parquet"
ASTERISK_CSV = "asterisk_csv"
FREESWITCH_CSV = "freeswitch_csv"
FREESWITCH_JSON = "freeswitch_json"
BER_3GPP = "ber_3gpp"
FORMATS = (CANONICAL_CSV, CANONICAL_PARQUET, ASTERISK_CSV, FREESWITCH_CSV, FREESWITCH_JSON, BER_3GPP)

HEAD_BYTES = 4096
"""How much of a file callers should pass as ``head``."""

_ASTERISK = re.compile(r',[^,"]*,[^,"]*,"(?:ANSWERED|NO ANSWER|BUSY|FAILED|CONGESTION)",')
_FREESWITCH = re.compile(r'^"(?:[^"]|"")*","(?:[^"]|"")*","(?:[^"]|"")*","(?:[^"]|"")*","\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"')
_SNIFF_LINES = 5


def _unwrap_gzip_head(file_key: str, head: bytes) -> bytes:
    """As much decompressed content as the (possibly cut) gzip head yields."""
    try:
        return zlib.decompressobj(wbits=47).decompress(head, HEAD_BYTES)
    except zlib.error as exc:
        raise UnreadableFile("CORRUPT_GZIP", f"{file_key}: gzip stream is corrupt ({exc})") from exc


def detect_format(file_key: str, head: bytes) -> str:
    """Format name (a key of ``READERS``) for a file whose first bytes are ``head``."""
    if head[:2] == b"\x1f\x8b":
        head = _unwrap_gzip_head(file_key, head)
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if not head.strip():
        raise UnreadableFile("EMPTY_FILE", f"{file_key}: the file is empty")
    if head.startswith(b"PAR1"):
        return CANONICAL_PARQUET
    if 0xA0 <= head[0] <= 0xBF or looks_framed(head):
        return BER_3GPP
    text = head.decode("utf-8", errors="replace").lstrip()
    if text.startswith("{"):
        return FREESWITCH_JSON
    for line in text.splitlines()[:_SNIFF_LINES]:
        if line.startswith("network_record_id"):
            return CANONICAL_CSV
        if _ASTERISK.search(line):
            return ASTERISK_CSV
        if _FREESWITCH.search(line):
            return FREESWITCH_CSV
    raise UnreadableFile(
        "UNKNOWN_FORMAT",
        f"{file_key}: not canonical CSV/Parquet, Asterisk cdr_csv, FreeSWITCH CSV/JSON or 3GPP BER "
        f"(starts with {head[:16]!r})",
    )


READER_MODULES = ("canonical", "asterisk", "freeswitch", "ber3gpp")
"""Modules whose import registers the readers in ``READERS``."""


def load_readers() -> dict[str, Reader]:
    """Import every reader module (registration happens on import) and return the registry."""
    for module in READER_MODULES:
        importlib.import_module(f"pipelines.mediation.readers.{module}")
    return READERS


LOCAL_TIME_FORMATS = (ASTERISK_CSV, FREESWITCH_CSV, FREESWITCH_JSON)
"""Formats that log the switch's wall-clock time without an offset: they need the switch time zone."""


def reader_for(fmt: str, switch_tz: str = "UTC") -> Reader:
    """The reader of ``fmt``, bound to the source's switch time zone where the format needs one."""
    readers = load_readers()
    if fmt == ASTERISK_CSV:
        from pipelines.mediation.readers.asterisk import read_asterisk_csv

        return partial(read_asterisk_csv, switch_tz=switch_tz)
    if fmt == FREESWITCH_CSV:
        from pipelines.mediation.readers.freeswitch import read_freeswitch_csv

        return partial(read_freeswitch_csv, switch_tz=switch_tz)
    if fmt == FREESWITCH_JSON:
        from pipelines.mediation.readers.freeswitch import read_freeswitch_json

        return partial(read_freeswitch_json, switch_tz=switch_tz)
    if fmt not in readers:
        raise UnreadableFile("NO_READER", f"format {fmt} has no reader installed")
    return readers[fmt]


def read_landed_file(source: str, file_key: str, data: bytes, switch_tz: str = "UTC") -> ParsedFile:
    """Unwrap gzip, detect the format and read: the one call mediation needs per landed file.

    ``switch_tz`` is the source's switch time zone, used by the formats that log local wall-clock
    time (Asterisk, FreeSWITCH CSV); the others carry UTC or an explicit offset. Raises
    ``UnreadableFile`` (CORRUPT_GZIP, EMPTY_FILE, UNKNOWN_FORMAT, or the reader's own) for a file
    to quarantine.
    """
    content = open_cdr_bytes(file_key, data)
    fmt = detect_format(file_key, content[:HEAD_BYTES])
    return reader_for(fmt, switch_tz)(source, file_key, content)
