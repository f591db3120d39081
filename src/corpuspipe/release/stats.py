"""What the card, the report, Croissant and the key figures show about a release, gathered part by part.

Every part's statistics are taken while the part is read back (:class:`PartStats`, fed by
:func:`corpuspipe.release.validate.read_back`, which the writing task runs anyway to check the
part), so the process that assembles the release never reads the tables again: it only merges
small per-part summaries (:func:`merge`).  The summaries are counts, the first few examples of
each kind in part order, and for what needs every value (length histogram, signal quantiles,
cluster sizes) compact arrays or per-cluster counts: a few MB at 1 GB of input.

Merging gives what a single pass over the whole release gave: examples are "the first N in
release order" because parts are in release order and each keeps its own first N; a cluster's size
is its members summed over the parts plus its representative (every member names it, and
validation checks that it is a document).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpuspipe.core import schemas
from corpuspipe.release.layout import table_outputs
from corpuspipe.release.versioning import MANIFEST_NAME
from corpuspipe.stages.watermark import BOILERPLATE_LINE_RULE, BOILERPLATE_RUN_RULE, boilerplate_keys, site_of

EXAMPLES_PER_RULE = 3
EXAMPLES_PER_FLAG = 3
FLAGGED_SHOWN = 20
CLUSTERS_SHOWN = 5  # largest clusters listed, and members listed per cluster
CLUSTER_PAIRS_SHOWN = 4  # verified pairs shown side by side per level
BOILERPLATE_SHOWN = 50  # lines listed in the report and by `inspect`
LEVELS = ("document", "section")
#: columns of each table the statistics read (besides what validation reads)
DOC_COLUMNS = ("doc_id", "title", "text", "url", "char_count", "script", "cluster_id", "cluster_size",
               "duplicate_of", "flags", *schemas.SIGNAL_COLUMNS)
SECTION_COLUMNS = ("section_id", "doc_id", "level", "heading", "text", "cluster_id")
EDIT_COLUMNS = ("doc_id", "source_path", "stage", "rule", "before", "after", "clean_start")
PAIR_COLUMNS = ("level", "a_id", "b_id", "jaccard_exact", "containment_ab", "containment_ba", "relation")


def _add(counts: dict, key: Any, n: int) -> None:
    counts[key] = counts.get(key, 0) + int(n)


def _value_counts(arr) -> list[tuple[Any, int]]:
    vc = pc.value_counts(arr)
    return list(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())) if len(vc) else []


def _evidence(flag: str, text: str) -> str:
    """The end of the text (truncation shows there) or, for mojibake and rewritten years, the spot."""
    snippet = "…" + text[-60:]
    if flag == "mojibake":
        m = re.search(r"[?\ufffd\ue000-\uf8ff]", text)
        if m:
            snippet = "…" + text[max(0, m.start() - 25):m.start() + 25] + "…"
    elif flag == "rewritten_year":
        m = re.search(r"((?:19|20)\d\d)\s*[-－—–~～至到]\s*\1\s*年", text)
        if m:
            snippet = "…" + text[max(0, m.start() - 20):m.end() + 20] + "…"
    return snippet


class PartStats:
    """The statistics of one part, fed one row group of each table at a time.

    ``wanted``: level -> ids whose texts the report shows beside their verified pair (the first
    pairs of ``duplicates``, known before the parts are written)."""

    def __init__(self, wanted: Mapping[str, Sequence[str]] | None = None):
        self.wanted = {lv: set(ids) for lv, ids in (wanted or {}).items()}
        self.docs: dict[str, Any] = {"rows": 0, "lengths": [], "scripts": {}, "flags": {}, "flagged": [],
                                     "duplicates": 0, "members": {}, "top": {}, "flag_examples": {},
                                     "signals": {n: [] for n in schemas.SIGNAL_COLUMNS}}
        self.secs: dict[str, Any] = {"rows": 0, "levels": {}, "members": {}}
        self.edits: dict[str, Any] = {"per_rule": {}, "examples": {}, "boilerplate": {}, "stage_rule": {}}
        self.pairs: dict[str, Any] = {"count": {}, "relations": {}, "first": {lv: [] for lv in LEVELS}}
        self.quarantine: dict[str, int] = {}
        self.texts: dict[str, dict] = {}
        self.urls: dict[str, str | None] = {}

    # -- per table --------------------------------------------------------------------------
    def documents(self, t: pa.Table) -> None:
        d = self.docs
        d["rows"] += t.num_rows
        if not t.num_rows:
            return
        d["lengths"].append(pc.fill_null(t["char_count"], 0).to_numpy().astype(np.int64))
        for k, v in _value_counts(t["script"]):
            _add(d["scripts"], "∅" if k is None else str(k), v)
        for k, v in _value_counts(pc.list_flatten(t["flags"])):
            _add(d["flags"], str(k), v)
        d["duplicates"] += int(len(t) - t["duplicate_of"].null_count)
        for n in schemas.SIGNAL_COLUMNS:
            d["signals"][n].append(t[n].to_numpy())
        ids = t["doc_id"].to_pylist()
        self.urls.update(zip(ids, t["url"].to_pylist()))
        self._members(d["members"], t, "doc_id")
        self._largest(t)
        self._flagged(t)
        self._texts("document", t, "doc_id", ("title",))

    def _members(self, acc: dict, t: pa.Table, key: str) -> None:
        member = pc.fill_null(pc.not_equal(t["cluster_id"], t[key]), False)
        for cid, n in _value_counts(t["cluster_id"].filter(member)):
            _add(acc, cid, n)

    def _largest(self, t: pa.Table) -> None:
        """The part's largest clusters (by ``cluster_size``) with their first members here: the
        release's largest clusters are among the parts' own largest, so merging finds them."""
        multi = t.filter(pc.greater(t["cluster_size"], 1))
        if not multi.num_rows:
            return
        top = self.docs["top"]
        for cid, size, did, title, dup in zip(*(multi[c].to_pylist() for c in
                                                ("cluster_id", "cluster_size", "doc_id", "title", "duplicate_of"))):
            e = top.setdefault(cid, [size, []])
            if len(e[1]) < CLUSTERS_SHOWN:
                e[1].append({"doc_id": did, "title": title, "duplicate_of": dup})
        if len(top) > 4 * CLUSTERS_SHOWN:  # keep it small: only the largest can win
            keep = sorted(top.items(), key=lambda kv: (-kv[1][0], kv[0]))[:CLUSTERS_SHOWN]
            self.docs["top"] = dict(keep)

    def _flagged(self, t: pa.Table) -> None:
        d = self.docs
        has = pc.greater(pc.fill_null(pc.list_value_length(t["flags"]), 0), 0)
        if not pc.any(has).as_py():
            return
        flagged = t.filter(has).select(["doc_id", "title", "flags", "text"])
        for r in flagged.to_pylist():
            if len(d["flagged"]) < FLAGGED_SHOWN:
                d["flagged"].append({"doc_id": r["doc_id"], "title": r["title"], "flags": r["flags"] or []})
            for f in r["flags"] or []:
                ex = d["flag_examples"].setdefault(f, [])
                if len(ex) < EXAMPLES_PER_FLAG:
                    ex.append({"doc_id": r["doc_id"], "title": r["title"], "evidence": _evidence(f, r["text"] or "")})

    def _texts(self, level: str, t: pa.Table, key: str, extra: Sequence[str]) -> None:
        want = self.wanted.get(level)
        if not want:
            return
        hit = t.filter(pc.is_in(t[key], value_set=pa.array(sorted(want), pa.string())))
        for r in hit.select([key, "text", *extra]).to_pylist():
            self.texts[r[key]] = r

    def sections(self, t: pa.Table) -> None:
        s = self.secs
        s["rows"] += t.num_rows
        if not t.num_rows:
            return
        for k, v in _value_counts(t["level"]):
            _add(s["levels"], k, v)
        self._members(s["members"], t, "section_id")
        self._texts("section", t, "section_id", ("heading", "doc_id"))

    def edit_rows(self, t: pa.Table) -> None:
        e = self.edits
        if not t.num_rows:
            return
        counts = t.append_column("chars", pc.utf8_length(t["before"])).group_by(["rule", "stage"]).aggregate(
            [("rule", "count"), ("chars", "sum")])
        for rule, stage, n, chars in zip(*(counts[c].to_pylist() for c in ("rule", "stage", "rule_count", "chars_sum"))):
            r = e["per_rule"].setdefault(rule, [0, set()])
            r[0] += int(n)
            r[1].add(stage)
            sr = e["stage_rule"].setdefault((stage, rule), [0, 0])
            sr[0] += int(n)
            sr[1] += int(chars or 0)
        need = [r for r in e["per_rule"] if len(e["examples"].get(r, [])) < EXAMPLES_PER_RULE]
        if need:
            changed = t.filter(pc.and_(pc.not_equal(t["before"], t["after"]),
                                       pc.is_in(t["rule"], value_set=pa.array(need, pa.string()))))
            for rule in need:
                ex = e["examples"].setdefault(rule, [])
                rows = changed.filter(pc.equal(changed["rule"], rule)).slice(0, EXAMPLES_PER_RULE - len(ex))
                ex.extend(rows.select(["doc_id", "stage", "rule", "before", "after", "clean_start"]).to_pylist())
        self._boilerplate(t)

    def _boilerplate(self, t: pa.Table) -> None:
        """Per normalized key of a removed boilerplate line: documents (a document's edits are
        contiguous, so counting changes of document counts each once), their sites, one example."""
        rules = pa.array([BOILERPLATE_LINE_RULE, BOILERPLATE_RUN_RULE])
        t = t.filter(pc.and_(pc.equal(t["stage"], "watermark"), pc.is_in(t["rule"], rules)))
        if not t.num_rows:
            return
        befores = t["before"].to_pylist()
        rows = self.edits["boilerplate"]
        for doc, path, rule, before, key in zip(t["doc_id"].to_pylist(), t["source_path"].to_pylist(),
                                                t["rule"].to_pylist(), befores, boilerplate_keys(befores)):
            if not key:
                continue
            r = rows.setdefault(key, {"rule": rule, "documents": 0, "last": None, "docs": [],
                                      "example": before.strip()})
            if r["last"] != doc:
                r["documents"] += 1
                r["last"] = doc
                r["docs"].append((doc, path))

    def duplicate_rows(self, t: pa.Table) -> None:
        p = self.pairs
        for lv, n in _value_counts(t["level"]):
            _add(p["count"], lv, n)
        rel = t.group_by(["level", "relation"]).aggregate([("level", "count")])
        for lv, relation, n in zip(*(rel[c].to_pylist() for c in ("level", "relation", "level_count"))):
            _add(p["relations"], (lv, relation), n)
        for lv in LEVELS:
            if len(p["first"][lv]) < CLUSTER_PAIRS_SHOWN:
                g = t.filter(pc.equal(t["level"], lv)).select(list(PAIR_COLUMNS))
                p["first"][lv].extend(g.slice(0, CLUSTER_PAIRS_SHOWN - len(p["first"][lv])).to_pylist())

    def quarantine_rows(self, t: pa.Table) -> None:
        for k, v in _value_counts(t["reason"]):
            _add(self.quarantine, k, v)

    # -- the part's summary --------------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        d = dict(self.docs)
        d["lengths"] = np.concatenate(d["lengths"]) if d["lengths"] else np.zeros(0, np.int64)
        d["signals"] = {n: (np.concatenate(v) if v else np.zeros(0, np.float32)) for n, v in d["signals"].items()}
        boiler = {}
        for key, r in self.edits["boilerplate"].items():
            sites = {site_of(path or "", self.urls.get(doc)) for doc, path in r["docs"]}
            boiler[key] = {"rule": r["rule"], "documents": r["documents"], "sites": sites, "example": r["example"]}
        edits = {"per_rule": self.edits["per_rule"], "examples": self.edits["examples"], "boilerplate": boiler,
                 "stage_rule": self.edits["stage_rule"]}
        return {"documents": d, "sections": self.secs, "edits": edits, "pairs": self.pairs,
                "quarantine": self.quarantine, "texts": self.texts}


# -- merging ---------------------------------------------------------------------------------------
def _by_count(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _clusters(members: Mapping[str, int], rows: int) -> tuple[dict[str, int], int]:
    """({cluster_id: size} of clusters with more than one row, number of clusters)."""
    sizes = {cid: n + 1 for cid, n in members.items()}
    return sizes, rows - sum(members.values())


def _merge_documents(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    docs = [p["documents"] for p in parts]
    rows = sum(d["rows"] for d in docs)
    lengths = np.concatenate([d["lengths"] for d in docs]) if docs else np.zeros(0, np.int64)
    scripts: dict[str, int] = {}
    flags: dict[str, int] = {}
    members: dict[str, int] = {}
    top: dict[str, list] = {}
    for d in docs:
        for k, v in d["scripts"].items():
            _add(scripts, k, v)
        for k, v in d["flags"].items():
            _add(flags, k, v)
        for k, v in d["members"].items():
            _add(members, k, v)
        for cid, (_size, mm) in d["top"].items():
            top.setdefault(cid, []).extend(mm)
    multi, n_clusters = _clusters(members, rows)
    hist: dict[int, int] = {1: n_clusters - len(multi)} if n_clusters > len(multi) else {}
    for n in multi.values():
        hist[n] = hist.get(n, 0) + 1
    largest = sorted(((n, cid) for cid, n in multi.items()), key=lambda x: (-x[0], x[1]))[:CLUSTERS_SHOWN]
    return {"rows": rows, "char_counts": lengths, "chars": int(lengths.sum()), "scripts": _by_count(scripts),
            "flags": _by_count(flags), "duplicates": sum(d["duplicates"] for d in docs),
            "clusters": n_clusters, "multi_clusters": len(multi), "cluster_sizes": dict(sorted(hist.items())),
            "largest_clusters": [{"cluster_id": cid, "size": int(n), "members": top.get(cid, [])[:CLUSTERS_SHOWN]}
                                 for n, cid in largest],
            "flagged": [f for d in docs for f in d["flagged"]][:FLAGGED_SHOWN]}


def _merge_signals(parts: Sequence[Mapping[str, Any]]) -> list[dict]:
    """min / median / 90th percentile / max of each quality-signal column over all documents."""
    out = []
    for n in schemas.SIGNAL_COLUMNS:
        v = np.concatenate([p["documents"]["signals"][n] for p in parts]) if parts else np.zeros(0)
        if len(v):
            out.append({"signal": n, "min": float(v.min()), "median": float(np.median(v)),
                        "p90": float(np.percentile(v, 90)), "max": float(v.max())})
    return out


def _merge_edits(parts: Sequence[Mapping[str, Any]]) -> tuple[dict, dict, list[dict]]:
    per_rule: dict[str, list] = {}
    examples: dict[str, list] = {}
    boiler: dict[str, dict] = {}
    for p in parts:
        e = p["edits"]
        for rule, (n, stages) in e["per_rule"].items():
            r = per_rule.setdefault(rule, [0, set()])
            r[0] += n
            r[1] |= set(stages)
        for rule, ex in e["examples"].items():
            have = examples.setdefault(rule, [])
            have.extend(ex[:EXAMPLES_PER_RULE - len(have)])
        for key, r in e["boilerplate"].items():
            b = boiler.setdefault(key, {"rule": r["rule"], "documents": 0, "sites": set(), "example": r["example"]})
            b["documents"] += r["documents"]
            b["sites"] |= set(r["sites"])
    stats = {r: {"edits": v[0], "stage": ", ".join(sorted(v[1]))} for r, v in per_rule.items()}
    lines = [{"rule": b["rule"], "documents": b["documents"], "sites": len(b["sites"]), "example": b["example"],
              "key": k} for k, b in boiler.items()]
    lines.sort(key=lambda r: (-r["documents"], -r["sites"], r["key"]))
    return (dict(sorted((r, ex) for r, ex in examples.items() if ex)),
            dict(sorted(stats.items(), key=lambda kv: (-kv[1]["edits"], kv[0]))), lines)


def _merge_clusters(parts: Sequence[Mapping[str, Any]], rows: Mapping[str, int]) -> dict[str, dict]:
    texts: dict[str, dict] = {}
    for p in parts:
        texts.update(p["texts"])
    out = {}
    for level, table in (("document", "documents"), ("section", "sections")):
        members: dict[str, int] = {}
        for p in parts:
            for k, v in p[table]["members"].items():
                _add(members, k, v)
        sizes, _ = _clusters(members, rows.get(table, 0))
        multi = sorted(((n, c) for c, n in sizes.items()), key=lambda x: (-x[0], x[1]))
        shown = [dict(r) for p in parts for r in p["pairs"]["first"][level]][:CLUSTER_PAIRS_SHOWN]
        for r in shown:
            r["a"], r["b"] = texts.get(r["a_id"], {}), texts.get(r["b_id"], {})
        out[level] = {"clusters": [{"cluster_id": c, "size": int(n)} for n, c in multi[:CLUSTERS_SHOWN]],
                      "pairs": shown, "pair_count": sum(p["pairs"]["count"].get(level, 0) for p in parts),
                      "multi": len(multi)}
    return out


def inputs_summary(inputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the card says about the inputs: files, bytes, essays found, files per encoding."""
    encodings: dict[str, int] = {}
    for i in inputs:
        encodings[str(i.get("encoding"))] = encodings.get(str(i.get("encoding")), 0) + 1
    return {"files": len(inputs), "bytes": sum(int(i.get("bytes") or 0) for i in inputs),
            "essays": sum(int(i.get("essays") or 0) for i in inputs), "encodings": encodings}


def merge(parts: Sequence[Mapping[str, Any]], manifest: Mapping[str, Any], release_name: str = "") -> dict[str, Any]:
    """The statistics of a release from its parts' summaries (in part order) and its manifest.

    The stats keep a summary of the manifest's ``inputs`` (``stats["inputs"]``), not the list: one
    dict per input file was ~120 MB of the writing process at 143,566 files."""
    summary = inputs_summary(manifest.get("inputs") or [])
    manifest = {k: v for k, v in manifest.items() if k != "inputs"}
    tables = {name: {"rows": sum(int(o.get("rows", 0)) for o in outs), "bytes": sum(int(o.get("bytes", 0)) for o in outs),
                     "parts": len(outs), "sha256": outs[0].get("sha256") if len(outs) == 1 else None}
              for name, outs in table_outputs(manifest).items()}
    files = {str(o["path"]): {"rows": o.get("rows"), "bytes": o.get("bytes"), "sha256": o.get("sha256")}
             for o in manifest.get("outputs", [])}
    stats: dict[str, Any] = {"manifest": manifest, "inputs": summary, "version": manifest.get("version", release_name),
                             "dataset": manifest.get("dataset", ""), "files": dict(sorted(files.items())),
                             "tables": tables}
    stats["documents"] = _merge_documents(parts)
    flag_examples: dict[str, list] = {f: [] for f in stats["documents"]["flags"]}
    for p in parts:
        for f, ex in p["documents"]["flag_examples"].items():
            have = flag_examples.setdefault(f, [])
            have.extend(ex[:EXAMPLES_PER_FLAG - len(have)])
    stats["flag_examples"] = flag_examples
    stats["signals"] = _merge_signals(parts)
    stats["rule_examples"], stats["edits_per_rule"], stats["boilerplate_all"] = _merge_edits(parts)
    stats["boilerplate_lines"] = stats["boilerplate_all"][:BOILERPLATE_SHOWN]
    stage_rule: dict[tuple, list[int]] = {}
    relations: dict[tuple, int] = {}
    for p in parts:
        for k, (n, chars) in p["edits"]["stage_rule"].items():
            acc = stage_rule.setdefault(tuple(k), [0, 0])
            acc[0] += n
            acc[1] += chars
        for k, n in p["pairs"]["relations"].items():
            _add(relations, tuple(k), n)
    stats["edits_per_stage_rule"] = dict(sorted(stage_rule.items()))
    stats["pairs_per_relation"] = dict(sorted(relations.items()))
    stats["rows"] = {name: t["rows"] for name, t in tables.items()}
    stats["clusters"] = _merge_clusters(parts, stats["rows"])
    levels: dict[Any, int] = {}
    for p in parts:
        for k, v in p["sections"]["levels"].items():
            _add(levels, k, v)
    stats["sections_per_level"] = {k: v for k, v in sorted(levels.items(), key=lambda kv: str(kv[0]).zfill(4))}
    stats["sections"] = sum(p["sections"]["rows"] for p in parts)
    removals = manifest.get("removals_per_rule") or {r: v["edits"] for r, v in stats["edits_per_rule"].items()}
    stats["removals_per_rule"] = dict(sorted(removals.items(), key=lambda kv: (-int(kv[1]), kv[0])))
    stats["redactions"] = dict(sorted((manifest.get("redactions") or {}).items()))
    q = manifest.get("quarantine") or {}
    if not q:
        by_reason: dict[str, int] = {}
        for p in parts:
            for k, v in p["quarantine"].items():
                _add(by_reason, k, v)
        q = {"count": sum(by_reason.values()), "by_reason": _by_count(by_reason)}
    stats["quarantine"] = {"count": int(q.get("count", 0)), "by_reason": dict(q.get("by_reason", {}))}
    return stats


def collect_stats(release_dir: Path, manifest: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:func:`merge` of a finished release, reading its parts one after the other (``inspect``,
    ``card`` and ``report`` on an existing release; the writer merges its tasks' summaries instead)."""
    from corpuspipe.release.validate import read_release

    release_dir = Path(release_dir)
    if manifest is None:
        path = release_dir / MANIFEST_NAME
        manifest = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    reports = read_release(release_dir, manifest)
    return merge([r["stats"] for r in reports], manifest, release_dir.name)


def boilerplate_lines(release_dir: Path, limit: int | None = BOILERPLATE_SHOWN) -> list[dict[str, Any]]:
    """The lines and bracketed runs the boilerplate detector selected and removed, one row per
    normalized key (script, width, digits and spaces folded: what the detector counted), with the
    documents and sites it was removed from and one raw example, most documents first.  Read from
    the edits (rules ``boilerplate_line``/``boilerplate_run``), so a reader sees exactly what left
    the released text, not only what was voted for."""
    lines = collect_stats(release_dir)["boilerplate_all"]
    return lines[:limit] if limit is not None else lines
