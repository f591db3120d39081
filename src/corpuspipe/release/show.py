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
import re
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


_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


def _flat(s: str) -> str:
    """One line: line breaks as ⏎, other invisible characters named (a removed space must show;
    a private-use character, which no font draws, as its code point)."""
    s = _visible(s).replace("\n", "").replace("\t", "⇥").replace("\u3000", "␣").replace(" ", "␣")
    return _PRIVATE_USE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", s)


def _cluster_line(story: Story) -> str:
    from corpuspipe.release.report import plural

    d = story.doc
    line = f"{d['cluster_id']} ({plural(d['cluster_size'], 'member')})"
    if story.representative:
        r = story.representative
        line += f"; duplicate of {r['doc_id']} «{r['title'] or ''}» ({plural(r['char_count'], 'char')}), the representative"
    elif d["cluster_size"] > 1:
        line += "; this document is the representative (fewest flags, Simplified original, longest, then smallest id)"
    return line


def _facts(story: Story) -> list[tuple[str, str]]:
    from corpuspipe.release.report import plural

    d = story.doc
    rows = [("source", f"{d['source_path']} (essay {d['essay_index']})")]
    if story.section:
        s = story.section
        rows += [("section", f"path {s['path']} level {s['level']} marker {s['marker'] or '—'} "
                             f"heading {s['heading'] or '—'} chars {s['char_start']}–{s['char_end']}"),
                 ("section cluster", f"{s['cluster_id']}" + (f" (duplicate of {s['duplicate_of']})"
                                                             if s["duplicate_of"] else " (kept)"))]
    rows += [("script", f"{d['script']} (traditional ratio {d['trad_ratio']:.3f})"),
             ("characters", f"{d['char_count']:,} clean; {plural(len(story.edits), 'edit')} shown, "
                            f"{d['edit_count']:,} in the document"),
             ("flags", ", ".join(d["flags"]) or "none"),
             ("cluster", _cluster_line(story))]
    return rows


#: below this width (or when the output is not a terminal: a pipe, a file) ``show`` prints its plain
#: layout: tables of 7 columns squeezed into 80 columns cut ids to ``0…`` and relations to ``n…``.
WIDE = 100


def render_terminal(story: Story, console, context: int = 30, reasons: list | None = None) -> None:
    """The story on ``console``.  A wide terminal gets tables and colour (removed raw text red and
    struck through, inserted text green); a pipe, a file or a terminal narrower than :data:`WIDE`
    columns gets the plain layout (:func:`render_plain`), which never truncates an id and marks
    every change in words.  ``reasons``: :func:`corpuspipe.release.flag_reasons.flag_reasons`."""
    if not console.is_terminal or console.width < WIDE:
        console.print(render_plain(story, context=context, reasons=reasons), markup=False, highlight=False,
                      soft_wrap=True, end="")
        return
    from rich.table import Table
    from rich.text import Text

    d = story.doc
    console.print(Text.assemble((f"{story.kind} ", "bold"), (story.id, "bold cyan"), f"  {d['title'] or '(no title)'}"))
    info = Table(show_header=False, box=None, pad_edge=False)
    info.add_column(style="dim", no_wrap=True)
    info.add_column()
    for k, v in _facts(story):
        info.add_row(k, v)
    for r in reasons or []:
        info.add_row(f"why {r.flag}", Text("\n".join([r.why, *r.samples])))
    console.print(info)

    sig = Table(title="quality signals", title_justify="left")
    sig.add_column("signal")
    sig.add_column("value", justify="right")
    for k, v in signals_of(d).items():
        sig.add_row(k, f"{v:.3f}")
    console.print(sig)

    pt = Table(title="verified pairs (J: exact Jaccard; in other / in this: containments)", title_justify="left")
    for c in ("level", "this", "other", "J", "in other", "in this", "relation"):
        pt.add_column(c, justify="right" if c in ("J", "in other", "in this") else "left", no_wrap=True)
    for p in story.pairs:
        pt.add_row(p["level"], p["this"], p["other"], f"{p['jaccard_exact']:.3f}",
                   f"{p['this_in_other']:.3f}", f"{p['other_in_this']:.3f}", p["relation"])
    if story.pairs:
        console.print(pt)
    else:
        console.print("verified pairs: none", style="dim")

    console.print(Text("edits (raw → clean, with the rule that made each; red struck through: removed, "
                       "green: put in its place)", style="bold"))
    text = d["text"]
    if not story.edits:
        console.print("  none: the clean text is the raw text", style="dim")
    for k, e in enumerate(story.edits, 1):
        line = Text(f"{k:>4} ")
        line.append(e.rule, style="magenta")
        line.append(f" [{e.stage}] @{e.clean_start}: ", style="dim")
        line.append(_flat(text[max(0, e.clean_start - context):e.clean_start]))
        if e.before:
            line.append(_flat(e.before), style="red strike")
        if e.after:
            line.append(_flat(e.after), style="green")
        line.append(_flat(text[e.clean_end:e.clean_end + context]))
        console.print(line, soft_wrap=True)


def render_plain(story: Story, context: int = 30, reasons: list | None = None) -> str:
    """The story as plain text for pipes, files and narrow terminals: one fact per line, ids whole,
    and every edit as ``- removed`` / ``+ inserted`` lines plus its context with the change marked
    ``[-removed-]{+inserted+}`` (wdiff's notation), so nothing depends on colour."""
    from corpuspipe.release.report import plural

    d = story.doc
    out = [f"{story.kind} {story.id}  {d['title'] or '(no title)'}"]
    facts = _facts(story)
    width = max(len(k) for k, _ in facts)
    out += [f"  {k:<{width}}  {v}" for k, v in facts]
    for r in reasons or []:
        out.append(f"  why {r.flag}: {r.why}")
        out += [f"      {x}" for x in r.samples]
    out += ["", "quality signals"]
    sig = signals_of(d)
    if sig:
        w = max(map(len, sig))
        out += [f"  {k:<{w}}  {v:8.3f}" for k, v in sig.items()]
    out += ["", f"verified pairs: {len(story.pairs) or 'none'}"]
    for k, p in enumerate(story.pairs, 1):
        title = f"  «{p['other_title']}»" if p.get("other_title") else ""
        out.append(f"  {k:>3}. {p['level']} {p['relation']}: {p['this']} ~ {p['other']}{title}")
        out.append(f"       exact Jaccard {p['jaccard_exact']:.3f}; this in other {p['this_in_other']:.3f}; "
                   f"other in this {p['other_in_this']:.3f}")
    out += ["", f"edits: {plural(len(story.edits), 'edit')} (raw → clean; - removed raw text, + text put in its place)"]
    if not story.edits:
        out.append("  none: the clean text is the raw text")
    text = d["text"]
    for k, e in enumerate(story.edits, 1):
        out.append(f"  {k:>4}. {e.rule} [{e.stage}] at clean {e.clean_start}, raw {e.raw_start}")
        out.append(f"        - {_flat(e.before) if e.before else '(nothing)'}")
        out.append(f"        + {_flat(e.after) if e.after else '(nothing)'}")
        left = _flat(text[max(0, e.clean_start - context):e.clean_start])
        right = _flat(text[e.clean_end:e.clean_end + context])
        change = (f"[-{_flat(e.before)}-]" if e.before else "") + (f"{{+{_flat(e.after)}+}}" if e.after else "")
        out.append(f"        …{left}{change}{right}…")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC",sans-serif;margin:2rem auto;max-width:980px;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;
vertical-align:top;white-space:pre-wrap}td.n{text-align:right;font-variant-numeric:tabular-nums}
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


def render_html(story: Story, reasons: list | None = None) -> str:
    """A static page (no JavaScript, every corpus string escaped): the facts, why each flag fired,
    then the shown text with each removed raw span struck through and each replacement inserted,
    tagged with its rule."""
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
             *[[k, v] for k, v in _facts(story)],
             ["representative", (story.representative or {}).get("doc_id") or ("this document" if not d["duplicate_of"]
                                                                               else d["duplicate_of"])]]
    why = ["<h2>Why each flag</h2>",
           _table(["flag", "why", "where"], [[r.flag, r.why, "\n".join(r.samples)] for r in reasons])] if reasons else []
    parts = [
        "<!DOCTYPE html>", '<html lang="zh"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{e(story.id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(d['title'] or story.id)}</h1>",
        _table(["", ""], facts),
        *why,
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
