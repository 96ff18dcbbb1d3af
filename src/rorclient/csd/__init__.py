"""CSD v2.4 documents (extractions, open-data files, Lecture responses): reading and writing."""

from __future__ import annotations

from rorclient.csd.reader import CsdSource, read_csd, read_offer, read_share
from rorclient.csd.writer import (
    CsdWriter,
    WriterOptions,
    WriteStats,
    csd_bytes,
    entity_uuid,
    write_csd,
    write_lecture_response,
)

__all__ = [
    "CsdSource",
    "CsdWriter",
    "WriteStats",
    "WriterOptions",
    "csd_bytes",
    "entity_uuid",
    "read_csd",
    "read_offer",
    "read_share",
    "write_csd",
    "write_lecture_response",
]
