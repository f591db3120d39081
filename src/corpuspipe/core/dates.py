"""Dates and times as the crawl writes them, read into the release's typed columns.

Shared by the quality stage (which flags a ``crawled_at`` it cannot read) and the release writer
(which stores ``date`` as date32 and ``crawled_at`` as a UTC timestamp): both must read a value the
same way, so the parsing lives below both.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

_TS_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
               "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日")


def parse_date(s: str | None) -> date | None:
    """``YYYY-MM-DD`` (what ingest's byline parser writes) as a date; anything else None."""
    if not s:
        return None
    try:
        return date.fromisoformat(s.strip())
    except ValueError:
        return None


def parse_timestamp(s: str | None) -> datetime | None:
    """A crawler's time as an aware UTC datetime (whole seconds), or None when it is not one.

    Accepts ISO 8601 (with ``Z`` or an offset), the common ``YYYY-MM-DD HH:MM[:SS]`` and
    ``YYYY/MM/DD`` / ``YYYY年MM月DD日`` forms, and Unix epochs in seconds or milliseconds.  A time
    without an offset is taken as UTC (the crawl exports say nothing; the release states it).
    """
    if s is None:
        return None
    t = str(s).strip()
    if not t:
        return None
    dt: datetime | None = None
    if re.fullmatch(r"\d{9,13}(\.\d+)?", t):
        v = float(t)
        if v > 1e11:
            v /= 1000.0
        try:
            dt = datetime.fromtimestamp(int(v), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        try:
            dt = datetime.fromisoformat(t)
        except ValueError:
            for fmt in _TS_FORMATS:
                try:
                    dt = datetime.strptime(t, fmt)
                    break
                except ValueError:
                    continue
    if dt is None or not (1990 <= dt.year <= 2100):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0)
