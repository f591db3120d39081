"""Quality: what the release measures about each document, never acts on.

* ``measures.py`` -- the numeric signals (Gopher / RedPajama-style ratios on characters), columns of
  ``documents.parquet``;
* ``flags.py`` -- junk and damage flags (``encoding_damage``, ``mostly_non_han``, ``punctuation_only``,
  ``truncated``), asked by the normalize stage on the clean text;
* ``dates.py`` -- crawl dates and times as the release types them;
* ``stage.py`` -- the :class:`Quality` shard stage.
"""

from corpuspipe.core.dates import parse_date, parse_timestamp
from corpuspipe.stages.quality.flags import encoding_damage, junk_flags, quality_flags, truncated
from corpuspipe.stages.quality.measures import SIGNALS, signals, signals_batch
from corpuspipe.stages.quality.stage import Quality

__all__ = [
    "SIGNALS",
    "Quality",
    "encoding_damage",
    "junk_flags",
    "parse_date",
    "parse_timestamp",
    "quality_flags",
    "signals",
    "signals_batch",
    "truncated",
]
