"""Boilerplate detection from corpus statistics: votes per shard, counts per key partition, selection.

Lines and bracketed runs that recur (as keys, :mod:`.views`) in many distinct texts of the
corpus, or on most texts of one site at the page edges, are boilerplate.  Each shard writes its
votes (:func:`stats_table`: one row per text and key, partitioned by key hash); the reduce counts
each key partition in its own task (:func:`count_partition`) and selects from the small results
(:func:`select_boilerplate`, :func:`select_site_boilerplate`), so no process ever holds the
corpus's millions of distinct lines at once.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from corpuspipe.core.io import atomic_path
from corpuspipe.stages.watermark.config import WatermarkConfig
from corpuspipe.core.records import Essay
from corpuspipe.stages.watermark.rules import load_allowlist
from corpuspipe.stages.watermark.views import LINE_PREFIX, PUNCT, RUN_PREFIX, boilerplate_key, candidates, essay_site
from corpuspipe.zh.dates import is_dated_statement
from corpuspipe.zh.prose import is_genre_prose


def collect_boilerplate_stats(essays: list[Essay], cfg: WatermarkConfig) -> dict[str, int]:
    """Per shard: distinct texts (identities) per candidate key -- exact copies vote once.

    The stage itself writes (key, site, identity, edge) rows so votes of copies in different shards
    merge in the reduce; this in-memory form is what tests and small callers use."""
    votes: dict[str, set[int]] = {}
    for essay in essays:
        cands, ident = candidates(essay.body.text, cfg)
        for c in cands:
            votes.setdefault(c.key, set()).add(ident)
    return {k: len(v) for k, v in sorted(votes.items())}


def doc_frequency_threshold(n_docs: int, cfg: WatermarkConfig) -> int:
    """A key is boilerplate from this many distinct texts on: an absolute floor and a corpus share."""
    return max(cfg.min_doc_frequency, math.ceil(cfg.min_doc_share * n_docs))


def site_threshold(n_site: int, cfg: WatermarkConfig) -> int | None:
    """Distinct texts of one site a key needs to be that site's boilerplate (None: too small a site)."""
    if n_site < cfg.site_min_docs:
        return None
    return max(cfg.min_doc_frequency, math.ceil(cfg.site_min_share * n_site))


def _allowlist_keys(cfg: WatermarkConfig) -> list[str]:
    keys = {PUNCT.sub("", boilerplate_key(p)) for p in load_allowlist(cfg)}
    return sorted((k for k in keys if k), key=len, reverse=True)  # longest phrases first


def is_allowlisted(key: str, allow_keys: Sequence[str], min_chars: int) -> bool:
    """True when the key is (almost) only made of allowlisted phrases: under min_chars remain."""
    rest = PUNCT.sub("", key.split("|", 1)[-1])
    for phrase in allow_keys:
        if phrase in rest:
            rest = rest.replace(phrase, "")
    return len(rest) < min_chars


def is_protected(key: str) -> bool:
    """A line key that is genre prose (:func:`corpuspipe.zh.prose.is_genre_prose`) or a dated
    statement (:func:`corpuspipe.zh.dates.is_dated_statement`) is never selected, at corpus or site
    level, unless copies show a site added it (:func:`added_by_copies`).  In a corpus of the 14
    newest reports the report opener 「现在，我代表国务院，向大会报告政府工作…」 sits on every distinct
    text, at the page edge, exactly where a site header would; the 55 laws released as one folder
    carry ``0年0月0日最高人民法院审判委员会第0次会议通过`` on most of them, at the top: frequency
    and position cannot tell them from a site's lines, their words and the shape of their digits
    can (82 of their 107 date lines were removed before)."""
    if not key.startswith(LINE_PREFIX):
        return False
    line = key[len(LINE_PREFIX):]
    return is_genre_prose(line) or is_dated_statement(line)


def select_boilerplate(doc_freq: dict[str, int], n_docs: int, cfg: WatermarkConfig,
                       added: frozenset[str] = frozenset()) -> list[str]:
    """Corpus level: which normalized keys are boilerplate (thresholds scale with corpus size, allowlist
    and genre prose respected; ``added``: prose keys that copies show a site added). Sorted, deterministic."""
    if not cfg.detect_boilerplate or n_docs <= 0:
        return []
    threshold = doc_frequency_threshold(n_docs, cfg)
    allow_keys = _allowlist_keys(cfg)
    return sorted(
        k
        for k, df in doc_freq.items()
        if df >= threshold
        and k.startswith((LINE_PREFIX, RUN_PREFIX))
        and len(k) - len(LINE_PREFIX) >= cfg.min_chars
        and not is_allowlisted(k, allow_keys, cfg.min_chars)
        and (k in added or not is_protected(k))
    )


def select_site_boilerplate(site_votes: dict[tuple[str, str], tuple[int, int]], site_docs: dict[str, int],
                            cfg: WatermarkConfig, added: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Site level: keys on most of one site's distinct texts (``site_min_share``), nearly always at a
    page edge (``edge_share``).  ``site_votes[(site, key)] = (texts, texts with it at an edge)``.

    Why both: a crawl site's own footer sits on most of its pages but on ~3 % of the corpus (under
    the corpus share), and position keeps a site that hosts only reports from losing a formula
    that opens many of them... as long as that formula is not on most of them, which it is not
    (the opener 「现在，我代表国务院…」 heads 6 of 88 reports)."""
    if not cfg.detect_boilerplate:
        return {}
    allow_keys = _allowlist_keys(cfg)
    out: dict[str, list[str]] = {}
    for (site, key), (n, n_edge) in sorted(site_votes.items()):
        need = site_threshold(site_docs.get(site, 0), cfg)
        if need is None or n < need or n_edge < cfg.edge_share * n:
            continue
        if len(key) - len(LINE_PREFIX) < cfg.min_chars or is_allowlisted(key, allow_keys, cfg.min_chars):
            continue
        if is_protected(key) and key not in added:
            continue
        out.setdefault(site, []).append(key)
    return out


def added_by_copies(carriers: dict[str, dict[int, set[str]]], ident_sites: dict[int, set[str]]) -> frozenset[str]:
    """Prose keys that copies prove a site added: ``carriers[key][ident]`` = sites where that text
    carries the key, ``ident_sites[ident]`` = every site the text is on.

    Genre prose travels with its text (every copy of a report has its opener); a site's own
    sentence is on that site's copy only.  A key is *added* when at least two texts lack it on
    another of their sites and such texts outnumber those carrying it on every site they are on.
    Without copies there is no evidence, and the key stays protected."""
    out = []
    for key, per_ident in sorted(carriers.items()):
        added = carried = 0
        for ident, sites in per_ident.items():
            everywhere = ident_sites.get(ident, set())
            if len(everywhere) < 2:
                continue
            if everywhere - sites:
                added += 1
            else:
                carried += 1
        if added >= 2 and added > carried:
            out.append(key)
    return frozenset(out)


# ----------------------------------------------------------------------------- votes on disk
_BP_PARTS = 16  # partitions of the boilerplate key space: the reduce holds one at a time
_EXAMPLE_CHARS = 80
_STATS_SCHEMA = pa.schema([("part", pa.int8()), ("key", pa.string()), ("site", pa.string()),
                           ("ident", pa.uint64()), ("edge", pa.bool_()), ("example", pa.string()),
                           ("title", pa.bool_())])


def _write_parquet(table: pa.Table, out: Path, parts: int | None = None) -> None:
    """A shard's votes (one row group per key partition, rows in their order within it) or documents.

    lz4, and the partitions cut from one stable sort by ``part`` instead of one filter each: the
    slice's three vote tables (40k rows) 0.086 -> 0.056 CPU s (best of 5), the same row groups;
    the files are written once and read once by the reduce (zstd 1 was 27 % smaller)."""
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, table.schema, compression="lz4") as w:
        if parts is None:
            w.write_table(table)
        else:
            grouped = table.take(pc.sort_indices(table["part"]))  # stable: each part keeps its order
            bounds = np.searchsorted(grouped["part"].to_numpy(), np.arange(parts + 1))
            for p in range(parts):
                w.write_table(grouped.slice(bounds[p], bounds[p + 1] - bounds[p]), row_group_size=1 << 30)


def stats_table(essays: Sequence[Essay], cfg: WatermarkConfig,
                openers: Sequence[tuple[str, str] | None] = ()) -> tuple[pa.Table, pa.Table]:
    """(votes, documents) of one shard: a row per (essay, key) with the essay's site and identity and
    whether the key sits at a page edge there; a row per essay with its site and identity.

    ``openers`` (per essay, or empty): the line key and text of the line the splitter opened the
    essay at (``rejoin.opener``).  That line is a line of the page the essay came from, so it votes
    like a body line (``title`` true, never at an edge): a site's advert between the pages of an
    essay that the splitter took for a title is one copy of the advert fewer in the bodies, and on
    a site at ``site_min_docs`` pages that copy decided whether the advert was counted at all
    (held-out pages of issue 23: 2 of 55 essays stayed cut, their site's 7-8 advert lines kept).
    A key only ever seen as a title is never selected (:func:`count_partition`): a title repeated
    across a site's pages stays a title."""
    rows: dict[tuple[str, str, int], list] = {}
    doc_sites, doc_idents = [], []
    for i, essay in enumerate(essays):
        text = essay.body.text
        site = essay_site(essay)
        cands, ident = candidates(text, cfg)
        doc_sites.append(site)
        doc_idents.append(ident)
        for c in cands:
            r = rows.get((c.key, site, ident))
            if r is None:
                rows[(c.key, site, ident)] = [c.edge, text[c.start:c.end].strip()[:_EXAMPLE_CHARS], False]
            else:
                r[0] = r[0] or c.edge
                r[2] = False
        opened = openers[i] if i < len(openers) else None
        if opened and opened[0] and (opened[0], site, ident) not in rows:
            rows[(opened[0], site, ident)] = [False, opened[1].strip()[:_EXAMPLE_CHARS], True]
    keys = [k for k, _, _ in rows]
    votes = pa.table({
        "part": pa.array([xxhash.xxh3_64_intdigest(k.encode("utf-8", "surrogatepass")) % _BP_PARTS for k in keys],
                         pa.int8()),
        "key": pa.array(keys, pa.string()),
        "site": pa.array([s for _, s, _ in rows], pa.string()),
        "ident": pa.array([i for _, _, i in rows], pa.uint64()),
        "edge": pa.array([v[0] for v in rows.values()], pa.bool_()),
        "example": pa.array([v[1] for v in rows.values()], pa.string()),
        "title": pa.array([v[2] for v in rows.values()], pa.bool_()),
    }, schema=_STATS_SCHEMA)
    # rows sorted by (key, site, ident), as ``sorted(rows.items())`` did, by Arrow's sort: UTF-8 byte
    # order is code point order and the triples are distinct (0.12 of 0.49 CPU s on the 14.5 MB slice)
    votes = votes.take(pc.sort_indices(votes, sort_keys=[("key", "ascending"), ("site", "ascending"),
                                                          ("ident", "ascending")]))
    docs = pa.table({"site": pa.array(doc_sites, pa.string()), "ident": pa.array(doc_idents, pa.uint64())})
    return votes, docs


def _count_votes(t: pa.Table, by: list[str]) -> pa.Table:
    """Distinct identities per group, and how many of them hold the key at a page edge."""
    per_ident = t.group_by([*by, "ident"]).aggregate([("edge", "any")])
    per_ident = per_ident.append_column("e", pc.cast(per_ident["edge_any"], pa.int32()))
    return per_ident.group_by(by).aggregate([("ident", "count"), ("e", "sum")])




# ----------------------------------------------------------------------------- the reduce's parallel steps
def docs_summary(docs_paths: Sequence[str]) -> tuple[int, dict[str, int]]:
    """(distinct texts in the corpus, distinct texts per site) from the shards' document tables:
    what the thresholds scale with.  Two small columns per essay (site, identity)."""
    if not docs_paths:
        return 0, {}
    docs = pa.concat_tables([pq.read_table(p) for p in docs_paths])
    if docs.num_rows == 0:
        return 0, {}
    distinct = docs.group_by(["site", "ident"]).aggregate([])
    per_site = distinct.group_by("site").aggregate([("ident", "count")])
    return len(pc.unique(distinct["ident"])), dict(zip(per_site["site"].to_pylist(), per_site["ident_count"].to_pylist()))


def _site_key(t: pa.Table) -> pa.Array:
    """``site`` and ``key`` as one string per row (a unit separator between), to test pairs with is_in."""
    return pc.binary_join_element_wise(t["site"], t["key"], "\x1f")


def count_partition(part: int, stats_paths: Sequence[str], threshold: int, site_floor: int | None) -> dict:
    """One key partition of every shard's votes, counted: keys on ``threshold`` distinct texts or more
    (corpus level), (site, key) pairs on ``site_floor`` or more with how many sit at a page edge,
    the sites carrying each genre-prose key per text (for :func:`added_by_copies`) and an example
    line per counted key.  Partitions share no key, so the tasks are independent; a task holds
    one partition (1/16 of the votes), never the corpus."""
    out: dict = {"corpus": {}, "site": [], "carriers": {}, "examples": {}}
    tables = []
    for path in stats_paths:
        f = pq.ParquetFile(path)
        if f.num_row_groups > part:
            t = f.read_row_group(part)
            if t.num_rows:
                tables.append(t)
    if not tables:
        return out
    t = pa.concat_tables(tables)
    body = t.filter(pc.invert(t["title"]))  # a key seen only as a title is never boilerplate
    whole = _count_votes(t, ["key"])
    hits = whole.filter(pc.and_(pc.greater_equal(whole["ident_count"], threshold),
                                pc.is_in(whole["key"], pc.unique(body["key"]))))
    out["corpus"] = dict(zip(hits["key"].to_pylist(), hits["ident_count"].to_pylist()))
    if site_floor is not None:
        by_site = _count_votes(t, ["site", "key"])
        in_body = pc.is_in(_site_key(by_site), pc.unique(_site_key(body)))
        by_site = by_site.filter(pc.and_(pc.greater_equal(by_site["ident_count"], site_floor), in_body))
        out["site"] = [list(r) for r in zip(by_site["site"].to_pylist(), by_site["key"].to_pylist(),
                                            by_site["ident_count"].to_pylist(), by_site["e_sum"].to_pylist())]
    wanted = set(out["corpus"]) | {k for _, k, _, _ in out["site"]}
    prose = sorted(k for k in wanted if is_protected(k))
    if prose:
        pr = t.filter(pc.is_in(t["key"], pa.array(prose, pa.string())))
        carriers: dict[str, dict[int, set[str]]] = {}
        for key, site, ident in zip(pr["key"].to_pylist(), pr["site"].to_pylist(), pr["ident"].to_pylist()):
            carriers.setdefault(key, {}).setdefault(ident, set()).add(site)
        out["carriers"] = {k: [[i, sorted(s)] for i, s in sorted(v.items())] for k, v in sorted(carriers.items())}
    if wanted:
        ex = t.filter(pc.is_in(t["key"], pa.array(sorted(wanted), pa.string())))
        ex = ex.group_by("key").aggregate([("example", "min")])
        out["examples"] = dict(zip(ex["key"].to_pylist(), ex["example_min"].to_pylist()))
    return out


def sites_of_texts(docs_paths: Sequence[str], idents: Sequence[int]) -> dict[int, list[str]]:
    """Every site each of ``idents`` is on (only texts carrying a genre-prose key are asked)."""
    want = pa.array(sorted(set(idents)), pa.uint64())
    out: dict[int, set[str]] = {}
    for p in docs_paths:
        t = pq.read_table(p)
        t = t.filter(pc.is_in(t["ident"], want))
        for site, ident in zip(t["site"].to_pylist(), t["ident"].to_pylist()):
            out.setdefault(ident, set()).add(site)
    return {i: sorted(s) for i, s in sorted(out.items())}
