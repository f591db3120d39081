"""``corpuspipe show RELEASE ID``: one essay's (or section's) whole story, from the release alone.

What a reviewer otherwise joins by hand: the document row (title, flags, quality signals), its
near-duplicate cluster and representative, every verified pair it is part of (documents, and the
pairs of its sections) with the scores that decided them, and the raw-versus-clean difference
with the rule name of every edit.  Reads only the rows it needs: Parquet row-group statistics
skip the rest (``filters=`` on the sorted id columns).

The difference is rebuilt from ``edits.parquet`` rows alone: each edit says which clean span
(``clean_start:clean_end``, holding ``after``) replaced which raw text (``before``), so walking the
clean text and the edits in order gives the raw text back (``rebuild_raw``'s invariant) and shows
every change in place.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe.core import schemas
from corpuspipe.core.edits import Edit
from corpuspipe.release.verify import Release, open_release


class NotFound(Exception):
    """No document or section with that id in the release (one line for the user)."""


@dataclass
class Story:
    kind: str  # document | section
    id: str
    doc: dict[str, Any]
    section: dict[str, Any] | None
    representative: dict[str, Any] | None  # the cluster's kept document when this is not it
    pairs: list[dict[str, Any]] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    span: tuple[int, int] = (0, 0)  # the clean range shown (the section's, or the whole document)

    @property
    def text(self) -> str:
        return self.doc["text"][self.span[0]:self.span[1]]


def _rows(release: Release, table: str, column: str, values: list[str], columns: list[str] | None = None
          ) -> list[dict]:
    """The table's rows whose ``column`` is in ``values``, over its parts (each checked first)."""
    if not values:
        return []
    out: list[dict] = []
    for path in release.parts(table):
        out += pq.read_table(path, columns=columns, filters=[(column, "in", values)]).to_pylist()
    return out


def _opened(release_dir: Path | Release) -> Release:
    return release_dir if isinstance(release_dir, Release) else open_release(Path(release_dir))


def edits_of(release_dir: Path | Release, doc_id: str) -> list[Edit]:
    """The document's edits as :class:`Edit` tuples, in clean-text order (what ``rebuild_raw`` takes)."""
    rows = _rows(_opened(release_dir), "edits", "doc_id", [doc_id])
    edits = [Edit(r["raw_start"], r["raw_end"], r["before"], r["after"], r["stage"], r["rule"], r["clean_start"],
                  r["clean_end"]) for r in rows]
    return sorted(edits, key=lambda e: (e.clean_start, e.clean_end, e.raw_start))


def load_story(release_dir: Path, item_id: str) -> Story:
    """Everything about one document or section, read from the release's parts (every part read is
    first checked against the manifest: a damaged release is ``verify.ReleaseDamaged``)."""
    release = open_release(Path(release_dir))
    item_id = item_id.strip()
    section = None
    docs = _rows(release, "documents", "doc_id", [item_id])
    if not docs:
        secs = _rows(release, "sections", "section_id", [item_id])
        if not secs:
            raise NotFound(f"no document or section with id {item_id!r} in {release_dir}")
        section = secs[0]
        docs = _rows(release, "documents", "doc_id", [section["doc_id"]])
    doc = docs[0]
    rep = None
    if doc["duplicate_of"]:
        got = _rows(release, "documents", "doc_id", [doc["cluster_id"]], ["doc_id", "title", "char_count", "source_path"])
        rep = got[0] if got else None
    # pairs: the item's own, plus (for a document) those of its sections
    pairs: list[dict] = []
    prefix = doc["doc_id"] + "-"
    for dup_path in release.parts("duplicates"):
        pf = pq.ParquetFile(dup_path)
        for i in range(pf.num_row_groups):
            t = pf.read_row_group(i)
            if section is not None:
                m = pc.or_(pc.equal(t["a_id"], item_id), pc.equal(t["b_id"], item_id))
            else:
                m = pc.or_(pc.or_(pc.equal(t["a_id"], item_id), pc.equal(t["b_id"], item_id)),
                           pc.or_(pc.starts_with(t["a_id"], prefix), pc.starts_with(t["b_id"], prefix)))
            pairs.extend(t.filter(m).to_pylist())
    titles = {}
    partner_docs = sorted({(p["b_id"] if p["a_id"].startswith(doc["doc_id"]) else p["a_id"]).split("-")[0]
                           for p in pairs})
    for r in _rows(release, "documents", "doc_id", partner_docs, ["doc_id", "title"]):
        titles[r["doc_id"]] = r["title"]
    for p in pairs:
        mine_a = p["a_id"] == item_id or (section is None and p["a_id"].startswith(doc["doc_id"]))
        p["this"] = p["a_id"] if mine_a else p["b_id"]
        p["other"] = p["b_id"] if mine_a else p["a_id"]
        # containment of this item's text in the other, and of the other in this
        p["this_in_other"] = p["containment_ab"] if mine_a else p["containment_ba"]
        p["other_in_this"] = p["containment_ba"] if mine_a else p["containment_ab"]
        p["other_title"] = titles.get(p["other"].split("-")[0])
    pairs.sort(key=lambda p: (p["level"], p["this"], p["other"]))
    span = (section["char_start"], section["char_end"]) if section else (0, len(doc["text"]))
    edits = [e for e in edits_of(release, doc["doc_id"])
             if (span[0] <= e.clean_start < span[1]) or (span[0] < e.clean_end <= span[1])
             or (e.clean_start == e.clean_end == span[1] and section is None)]
    return Story("section" if section else "document", item_id, doc, section, rep, pairs, edits, span)


def segments(story: Story) -> list[tuple[str, str, str, str]]:
    """The shown span as (kind, text, removed, rule): kind ``same`` (unchanged clean text) or
    ``edit`` (clean ``text`` that replaced raw ``removed`` by ``rule``)."""
    text = story.doc["text"]
    a, b = story.span
    out: list[tuple[str, str, str, str]] = []
    pos = a
    for e in story.edits:
        s, t = max(e.clean_start, a), min(e.clean_end, b)
        if s > pos:
            out.append(("same", text[pos:s], "", ""))
        out.append(("edit", text[s:t] if t > s else "", e.before, e.rule))
        pos = max(pos, t)
    if pos < b:
        out.append(("same", text[pos:b], "", ""))
    return out


def signals_of(doc: dict) -> dict[str, float]:
    return {k: doc[k] for k in schemas.SIGNAL_COLUMNS if k in doc}


def _visible(s: str) -> str:
    return s.replace("\r", "␍").replace("\n", "⏎\n")


# ----------------------------------------------------------------------------- terminal
def render_terminal(story: Story, console, context: int = 30) -> None:
    """Rich output: header, signals and pairs as tables, then each edit in its context
    (removed raw text red and struck through, inserted text green, the rule name dim)."""
    from rich.table import Table
    from rich.text import Text

    d = story.doc
    console.print(Text.assemble((f"{story.kind} ", "bold"), (story.id, "bold cyan"), f"  {d['title'] or '(no title)'}"))
    info = Table(show_header=False, box=None, pad_edge=False)
    info.add_column(style="dim")
    info.add_column()
    info.add_row("source", f"{d['source_path']} (essay {d['essay_index']})")
    if story.section:
        s = story.section
        info.add_row("section", f"path {s['path']} level {s['level']} marker {s['marker']} "
                                f"heading {s['heading'] or '—'} chars {s['char_start']}–{s['char_end']}")
        info.add_row("section cluster", f"{s['cluster_id']}" + (f" (duplicate of {s['duplicate_of']})"
                                                               if s["duplicate_of"] else " (kept)"))
    info.add_row("script", f"{d['script']} (traditional ratio {d['trad_ratio']:.3f})")
    info.add_row("characters", f"{d['char_count']} clean, {len(story.edits)} edits shown, {d['edit_count']} in the document")
    info.add_row("flags", ", ".join(d["flags"]) or "none")
    cluster = f"{d['cluster_id']} ({d['cluster_size']} member{'s' if d['cluster_size'] != 1 else ''})"
    if story.representative:
        r = story.representative
        cluster += f"; duplicate of {r['doc_id']} «{r['title'] or ''}» ({r['char_count']} chars), the representative"
    elif d["cluster_size"] > 1:
        cluster += "; this document is the representative (fewest flags, Simplified original, longest, then smallest id)"
    info.add_row("cluster", cluster)
    console.print(info)

    sig = Table(title="quality signals", title_justify="left")
    sig.add_column("signal")
    sig.add_column("value", justify="right")
    for k, v in signals_of(d).items():
        sig.add_row(k, f"{v:.3f}")
    console.print(sig)

    pt = Table(title="verified pairs (J: exact Jaccard; in other / in this: containments)", title_justify="left")
    for c in ("level", "this", "other", "J", "in other", "in this", "relation"):
        pt.add_column(c, justify="right" if c in ("J", "in other", "in this") else "left",
                      no_wrap=c in ("this", "other"))
    for p in story.pairs:
        pt.add_row(p["level"], p["this"], p["other"], f"{p['jaccard_exact']:.3f}",
                   f"{p['this_in_other']:.3f}", f"{p['other_in_this']:.3f}", p["relation"])
    if story.pairs:
        console.print(pt)
    else:
        console.print("verified pairs: none", style="dim")

    console.print(Text("edits (raw → clean, with the rule that made each)", style="bold"))
    text = d["text"]
    if not story.edits:
        console.print("  none: the clean text is the raw text", style="dim")
    for k, e in enumerate(story.edits, 1):
        line = Text(f"{k:>4} ")
        line.append(e.rule, style="magenta")
        line.append(f" [{e.stage}] @{e.clean_start}: ", style="dim")
        line.append(_visible(text[max(0, e.clean_start - context):e.clean_start]).replace("\n", ""))
        if e.before:
            line.append(_visible(e.before).replace("\n", ""), style="red strike")
        if e.after:
            line.append(_visible(e.after).replace("\n", ""), style="green")
        line.append(_visible(text[e.clean_end:e.clean_end + context]).replace("\n", ""))
        console.print(line, soft_wrap=True)


# ----------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC",sans-serif;margin:2rem auto;max-width:980px;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;
vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
.text{white-space:pre-wrap;line-height:1.7;border:1px solid #ddd;padding:1rem}
del{background:#fdd;color:#900}ins{background:#dfd;color:#060;text-decoration:none}
sup.r{font-size:.65em;color:#85a;margin:0 .15em}.muted{color:#777}
"""


def _table(headers, rows) -> str:
    e = html.escape
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{e(f"{v:.3f}" if isinstance(v, float) else str(v))}</td>' if isinstance(v, (int, float))
        else f"<td>{e('' if v is None else str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(story: Story) -> str:
    """A static page (no JavaScript, every corpus string escaped): the facts, then the shown text
    with each removed raw span struck through and each replacement inserted, tagged with its rule."""
    e = html.escape
    d = story.doc
    rules: dict[str, int] = {}
    marked = []
    for kind, text, removed, rule in segments(story):
        if kind == "same":
            marked.append(e(text))
            continue
        n = rules.setdefault(rule, len(rules) + 1)
        marked.append(f'<sup class="r" title="{e(rule)}">{n}</sup>')
        if removed:
            marked.append(f'<del title="{e(rule)}">{e(removed)}</del>')
        if text:
            marked.append(f'<ins title="{e(rule)}">{e(text)}</ins>')
    facts = [["id", story.id], ["kind", story.kind], ["title", d["title"] or ""],
             ["source", f"{d['source_path']} (essay {d['essay_index']})"], ["script", d["script"]],
             ["characters", d["char_count"]], ["flags", ", ".join(d["flags"]) or "none"],
             ["cluster", f"{d['cluster_id']} ({d['cluster_size']} members)"],
             ["representative", (story.representative or {}).get("doc_id") or ("this document" if not d["duplicate_of"]
                                                                               else d["duplicate_of"])]]
    if story.section:
        s = story.section
        facts += [["section path", s["path"]], ["heading", s["heading"] or ""],
                  ["section cluster", s["cluster_id"]], ["section duplicate of", s["duplicate_of"] or "—"]]
    parts = [
        "<!DOCTYPE html>", '<html lang="zh"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{e(story.id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(d['title'] or story.id)}</h1>",
        _table(["", ""], facts),
        "<h2>Quality signals</h2>",
        _table(["signal", "value"], [[k, float(v)] for k, v in signals_of(d).items()]),
        "<h2>Verified pairs</h2>",
        _table(["level", "this", "other", "other title", "jaccard", "this in other", "other in this", "relation"],
               [[p["level"], p["this"], p["other"], p["other_title"] or "", float(p["jaccard_exact"]),
                 float(p["this_in_other"]), float(p["other_in_this"]), p["relation"]] for p in story.pairs]),
        "<h2>Rules</h2>",
        _table(["mark", "rule", "edits"], [[n, r, sum(1 for x in story.edits if x.rule == r)]
                                           for r, n in rules.items()]),
        "<h2>Raw versus clean</h2>",
        '<p class="muted">struck through: raw text removed; green: text put in its place; '
        'the superscript names the rule (hover for its name).</p>',
        f'<div class="text">{"".join(marked)}</div>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
