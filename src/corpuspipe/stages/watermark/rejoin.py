"""Re-joining an essay that the splitter opened at a line the watermark stage removes.

范文 sites paginate long essays and put their advert (「好文章尽在XX网，记得常来看看哦」) between the
pages; when the next page opens like a document (各位代表！, a date line) the splitter reads the
advert as the next essay's title and cuts the essay in two.  The splitter (pass 0) asks the
shipped rules before it accepts a title (:func:`corpuspipe.stages.ingest.titles.removed_as_watermark`),
but a site's own advert is known as boilerplate only once the corpus is counted (a selected line
key: the advert also closes the site's pages) or from a user's rules file.  So the decision is
made where both are known:

* ``collect`` (pass 0) records, for every essay that opened at a bare title line, that line's
  boilerplate key and whether the user's and shipped rules remove it (:func:`opener`), and
  that line votes for its key like a body line (``detector.stats_table``);
* ``reduce`` lists the essays whose opening line is removed -- by a rule, a corpus key or a key
  of the essay's own site (:func:`essays_to_rejoin`);
* ``apply`` (pass 1, before removal) merges each such essay into the essay before it in its file
  (:func:`merge_essays`): one contiguous range of the file again, its edits the two essays' edits
  minus the splitter's own at the cut (the first essay's trailing blank lines, the second's title
  line and header zone), so ``rebuild_raw`` stays exact and the advert, now body text, is removed
  by the watermark stage as boilerplate like every other copy of it.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from corpuspipe.stages.watermark.config import WatermarkConfig
from corpuspipe.core.edits import Edit, TrackedText
from corpuspipe.core.records import Essay, SourceInfo
from corpuspipe.stages.watermark.removal import RulePlan, removes_whole_line
from corpuspipe.stages.watermark.views import LINE_PREFIX, _line_keys, essay_site, key_view

INGEST = "ingest"
# Edits the splitter makes in an essay's header zone (stages/ingest/headerzone.py: analyse_essay).
HEADER_RULES = frozenset({"teaser", "title_line", "repeated_title", "byline"})
BLANK = "blank_lines"
SHORT_FLAG = "short"


def opener_line(essay: Essay) -> str | None:
    """The line that opened this essay as its title, when the splitter started it at a bare title
    line (not the file's first essay, not a ``第X篇`` header): its title_line edit comes first,
    after blank lines or a teaser at most."""
    if essay.essay_index == 0:
        return None
    for e in essay.body.edits[:4]:
        if e.stage != INGEST:
            return None
        if e.rule == "title_line":
            return e.before.split("\n", 1)[0]
        if e.rule not in (BLANK, "teaser"):
            return None
    return None


def opener(essay: Essay, line: str | None, rules: RulePlan, cfg: WatermarkConfig) -> list | None:
    """``[source_path, essay_index, site, line key or "", removed by a rule]`` for an essay opened
    at the bare title line ``line`` (:func:`opener_line` of the essay), else None."""
    if line is None:
        return None
    keys = [k for _, _, k in _line_keys(key_view(line), cfg.min_chars)]
    key = LINE_PREFIX + keys[0] if keys else ""
    return [essay.source_path, essay.essay_index, essay_site(essay), key, removes_whole_line(line, rules)]


def essays_to_rejoin(openers: Iterable[Sequence], corpus_keys: Iterable[str],
                     site_keys: dict[str, list[str]]) -> list[list]:
    """``[source_path, essay_index]`` of the essays whose opening line the stage removes, sorted."""
    corpus = set(corpus_keys)
    sites = {s: set(ks) for s, ks in site_keys.items()}
    out = {(path, index) for path, index, site, key, by_rule in openers
           if by_rule or (key and (key in corpus or key in sites.get(site, ())))}
    return [list(x) for x in sorted(out)]


def _reflow(edits: Iterable[Edit], base: int) -> list[Edit]:
    """The edits with their clean offsets recomputed for one text starting at raw offset ``base``."""
    out: list[Edit] = []
    delta = 0
    for e in sorted(edits, key=lambda e: (e.raw_start, e.raw_end)):
        cs = e.raw_start - base + delta
        out.append(e._replace(clean_start=cs, clean_end=cs + len(e.after)))
        delta += len(e.after) - (e.raw_end - e.raw_start)
    return out


def merge_essays(a: Essay, b: Essay, min_essay_chars: int) -> Essay:
    """``a`` with ``b`` (the next essay of the same file, right after it) joined on, as one essay.

    Dropped: the splitter's edits at the cut -- ``a``'s trailing blank lines and ``b``'s header
    zone (its title line, teaser, repeated title, byline and leading blank lines) -- so those lines
    are text again for the stages that follow.  Kept: every other edit of both (mojibake repairs).
    ``a``'s identity, title, author and date stay; counters are summed less the dropped edits;
    ``short`` is decided again on the joined text."""
    a_end = a.body.base + len(a.body.raw)
    if a.source_path != b.source_path or a_end != b.body.base:
        raise ValueError(f"essays {a.essay_index} and {b.essay_index} of {a.source_path} are not adjacent")
    dropped: list[Edit] = []
    kept: list[Edit] = []
    for e in a.body.edits:
        at_cut = e.stage == INGEST and e.rule == BLANK and e.raw_end == a_end
        (dropped if at_cut else kept).append(e)
    for e in b.body.edits:
        header = e.stage == INGEST and (e.rule in HEADER_RULES or (e.rule == BLANK and e.raw_start == b.body.base))
        (dropped if header else kept).append(e)
    body = TrackedText(a.body.raw + b.body.raw, a.body.base, _reflow(kept, a.body.base))
    stats = dict(a.stats)
    for k, v in b.stats.items():
        stats[k] = stats.get(k, 0) + v
    for e in dropped:
        k = f"{INGEST}.{e.rule}"
        stats[k] = stats.get(k, 0) - 1
        if stats[k] <= 0:
            del stats[k]
    flags = set(a.flags) | set(b.flags)
    flags.discard(SHORT_FLAG)
    if sum(map(len, body.text.split())) < min_essay_chars:
        flags.add(SHORT_FLAG)
    merged = Essay(source_path=a.source_path, source_sha256=a.source_sha256, essay_index=a.essay_index, body=body,
                   title=a.title, author=a.author, date=a.date, url=a.url, crawled_at=a.crawled_at,
                   script=a.script, trad_ratio=a.trad_ratio, flags=sorted(flags), stats=stats)
    merged.bump("watermark.rejoined")
    return merged


Carry = tuple[Essay, int]  # an essay held back for the next batch, and the essay_index that follows it


def rejoin(essays: Sequence[Essay], wanted: set[tuple[str, int]], min_essay_chars: int,
           sources: Sequence[SourceInfo] = (), carry: Carry | None = None) -> tuple[list[Essay], Carry | None, int]:
    """(the essays with every wanted one merged into the essay before it, the carry, how many merged).

    ``carry`` in: the essay held back from the previous batch of the same shard, first in line.
    ``carry`` out: the last essay when its successor is wanted but not in this batch: the caller
    hands it to the next batch.  That batch exists -- the successor was collected from the same
    shard file, whose essays come in file order -- so nothing held is ever lost.
    ``sources``: their ``essays`` counts go down by one per merge."""
    out: list[Essay] = []
    nxt = -1  # the essay_index that follows the last essay of ``out``
    if carry is not None:
        out.append(carry[0])
        nxt = carry[1]
    merged = 0
    for e in essays:
        if out and (e.source_path, e.essay_index) in wanted and out[-1].source_path == e.source_path \
                and nxt == e.essay_index:
            out[-1] = merge_essays(out[-1], e, min_essay_chars)
            merged += 1
            for s in sources:
                if s.path == e.source_path:
                    s.essays -= 1
        else:
            out.append(e)
        nxt = e.essay_index + 1
    if out and (out[-1].source_path, nxt) in wanted:
        return out[:-1], (out[-1], nxt), merged
    return out, None, merged
