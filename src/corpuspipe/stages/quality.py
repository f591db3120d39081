"""Quality signals per document: measured, never acted on.

After dolma's taggers and NeMo-Curator's ``score_document``/``keep_document`` split: this stage
only *measures* (columns in ``documents.parquet``); ``corpuspipe export`` and the user's own SQL
decide.  A filter that removes text inside the pipeline would make a threshold a release
decision, and every change of taste a new major version.

The signals (all in ``[0, 1]`` except ``mean_sentence_chars``), on the clean Simplified text:

* ``han_ratio`` — Han characters / non-whitespace characters.
* ``punct_ratio`` — punctuation (CJK and ASCII) / non-whitespace characters.
* ``dup_line_char_frac`` — share of characters in lines that occur more than once in the
  document (Gopher's duplicate-line character fraction).
* ``top_{2,3,4}gram_frac`` — characters covered by the most frequent character n-gram
  (count × n / characters), Gopher's "top n-gram" on characters because Chinese has no spaces.
* ``dup_{5..10}gram_frac`` — share of characters inside character n-grams that occur more than
  once (RedPajama-V2 ``rps_doc_frac_chars_dupe_{5..10}grams``, on characters), each character
  counted once.
* ``mean_sentence_chars`` — characters per sentence (split at 。！？!?；; and line ends).
* ``boilerplate_frac`` — share of the essay's raw characters removed by the watermark stage
  (rule matches and corpus-detected boilerplate).

n-grams are hashed with numpy (a rolling 64-bit polynomial over code points, one sort per n): no
Python object per n-gram.  Measured on the seed essays' clean texts (x40, 4.3 MB) on the shared
2-core machine at load average ~10: 1.0 MB/s with ``np.unique`` and a per-character punctuation
loop, 2.2 MB/s after (lookup table, plain sorts for the top n-grams, cumulative-sum coverage); the profile is then
almost all ``argsort`` (0.3 ms per 4,000-element sort under that load).  Not yet measured on an idle
machine or on the 100 MB crawl bench: it may be the slowest shard stage and is the first place to
look (a shared sort across n, or 32-bit hashes).  ``cluster_size`` is already a document column and
``best_containment`` (the largest containment of the document in, or of, another document) is
computed where it is read — by ``export`` and ``show`` from ``duplicates.parquet`` — because it
needs the corpus-level pairs, which the streaming writer does not hold.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timezone

import numpy as np

from corpuspipe.core.stage import Context, ShardStage

SIGNALS: dict[str, str] = {
    "han_ratio": "Han characters / non-whitespace characters (0–1)",
    "punct_ratio": "punctuation / non-whitespace characters (0–1)",
    "dup_line_char_frac": "share of characters in lines repeated within the document (0–1)",
    "top_2gram_frac": "characters covered by the most frequent character 2-gram (0–1)",
    "top_3gram_frac": "characters covered by the most frequent character 3-gram (0–1)",
    "top_4gram_frac": "characters covered by the most frequent character 4-gram (0–1)",
    **{f"dup_{n}gram_frac": f"share of characters inside repeated character {n}-grams (0–1)" for n in range(5, 11)},
    "mean_sentence_chars": "mean characters per sentence (split at 。！？!?； and line ends; ≥ 0)",
    "boilerplate_frac": "share of the raw essay removed by the watermark stage (0–1)",
}

_SENT = re.compile(r"[。！？!?；;\n]+")
_BASE = np.uint64(1_000_003)


def _is_han(cp: np.ndarray) -> np.ndarray:
    return ((cp >= 0x4E00) & (cp <= 0x9FFF)) | ((cp >= 0x3400) & (cp <= 0x4DBF)) | \
        ((cp >= 0x20000) & (cp <= 0x2FA1F)) | ((cp >= 0xF900) & (cp <= 0xFAFF))


def _punct_table() -> np.ndarray:
    """Is-punctuation (Unicode category P*) for every BMP code point, built once (~40 ms)."""
    return np.array([unicodedata.category(chr(c)).startswith("P") for c in range(0x10000)], dtype=bool)


_PUNCT: np.ndarray | None = None


def _punct_count(cp: np.ndarray) -> int:
    global _PUNCT
    if _PUNCT is None:
        _PUNCT = _punct_table()
    bmp = cp[cp < 0x10000].astype(np.intp)
    return int(np.count_nonzero(_PUNCT[bmp]))


def _ngram_signals(cp: np.ndarray) -> dict[str, float]:
    """Top 2/3/4-gram share and duplicated 5..10-gram fractions of one code-point array.

    One argsort per n: equal neighbours in sorted order are repeated n-grams; the longest run of
    equal values is the top n-gram's count.  A character is covered by a repeated n-gram when a
    repeated n-gram starts within the n positions before it (a cumulative sum, no loop).
    """
    out: dict[str, float] = {}
    L = len(cp)
    h = np.zeros(L, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for n in range(1, 11):
            m = L - n + 1
            if m <= 0:  # shorter than n: the caller's zeros stand
                break
            h = h[:m] * _BASE + cp[n - 1:n - 1 + m]  # h[i] = hash of cp[i:i+n]
            if n < 2:
                continue
            if n <= 4:  # only the longest run is needed: a plain sort (about half an argsort's time)
                srt = np.sort(h)
                bounds = np.flatnonzero(np.concatenate(([True], srt[1:] != srt[:-1], [True])))
                out[f"top_{n}gram_frac"] = float(np.diff(bounds).max()) * n / L
                continue
            order = np.argsort(h)
            srt = h[order]
            eq = srt[1:] == srt[:-1]
            if not eq.any():
                out[f"dup_{n}gram_frac"] = 0.0
                continue
            dup_sorted = np.zeros(m, dtype=bool)
            dup_sorted[1:] |= eq
            dup_sorted[:-1] |= eq
            starts = np.zeros(m, dtype=bool)
            starts[order] = dup_sorted
            c = np.concatenate(([0], np.cumsum(starts)))  # c[i] = repeated starts before position i
            pos = np.arange(L)
            hi = np.minimum(pos + 1, m)
            lo = np.clip(pos - n + 1, 0, m)
            out[f"dup_{n}gram_frac"] = float(np.count_nonzero(c[hi] - c[lo])) / L
    return out


def signals(text: str, raw_chars: int = 0, boilerplate_chars: int = 0) -> dict[str, float]:
    """All signals of one clean text (keys and order of :data:`SIGNALS`), rounded to 6 digits so
    the release bytes do not hang on the last float bit of a numpy reduction."""
    dense = "".join(text.split())
    cp = np.frombuffer(dense.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(cp)
    out: dict[str, float] = {k: 0.0 for k in SIGNALS}
    if n:
        out["han_ratio"] = float(np.count_nonzero(_is_han(cp))) / n
        out["punct_ratio"] = _punct_count(cp) / n
        out.update(_ngram_signals(cp))
    lines = [ln.strip() for ln in text.split("\n")]
    seen: dict[str, int] = {}
    for ln in lines:
        if ln:
            seen[ln] = seen.get(ln, 0) + 1
    total = sum(len(ln) for ln in lines)
    if total:
        out["dup_line_char_frac"] = sum(len(ln) * c for ln, c in seen.items() if c > 1) / total
    sentences = [s for s in _SENT.split(text) if s.strip()]
    if sentences:
        out["mean_sentence_chars"] = sum(len("".join(s.split())) for s in sentences) / len(sentences)
    if raw_chars:
        out["boilerplate_frac"] = min(1.0, boilerplate_chars / raw_chars)
    return {k: round(out[k], 6) for k in SIGNALS}


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


class Quality(ShardStage):
    """Measure the quality signals of every essay (stored in ``Essay.signals``)."""

    name = "quality"
    config_sections = ()

    def process(self, batch, ctx: Context):
        for e in batch.essays:
            removed = 0
            for ed in e.body.edits:
                if "watermark" in ed.stage:
                    removed += max(0, len(ed.before) - len(ed.after))
            e.signals = signals(e.body.text, len(e.body.raw), removed)
            if e.crawled_at and parse_timestamp(e.crawled_at) is None:
                # the column is a timestamp now; an unreadable crawl time is kept visible as a flag
                e.add_flag("unparsed_crawled_at")
                ctx.count(self.name, "unparsed_crawled_at")
        ctx.count(self.name, "documents", len(batch.essays))
        return batch
