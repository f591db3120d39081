"""A static HTML report of one release, for a person deciding whether to trust it.

Charts are inline SVG built here (a few dozen lines; no plotting dependency), and the page carries no
JavaScript and loads nothing from the network, so it can be opened from an artifact store or mailed.
All corpus text that reaches the page (titles, ids, flag and rule names) passes through html.escape.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpuspipe.release.stats import (  # noqa: F401  (collect_stats, boilerplate_lines: re-exported)
    BOILERPLATE_SHOWN,
    EXAMPLES_PER_RULE,
    boilerplate_lines,
    collect_stats,
)
from corpuspipe.release.versioning import atomic_write_text

REPORT_NAME = "report.html"
DIFF_CHARS = 1500  # characters of each text compared side by side (difflib is quadratic on dissimilar text)

#: what each flag means, and what raised it (the code that adds it is named, so a reader can check)
FLAG_MEANINGS: dict[str, str] = {
    "mojibake": "The text still holds unrecoverable mis-decoded characters (a '?' where a GBK lead byte was lost, "
                "private-use characters, or a Simplified text with characters neither GB2312 nor Big5 encode, as "
                "Big5 bytes read as GBK leave). Kept, but damaged; export drops it by default. (ingest/mojibake.py)",
    "encoding_damage": "Characters were lost, not mis-read: U+FFFD replacement characters (cut UTF-8 sequences) or "
                       "'?' inside Chinese words of a full-width text (a lossy re-encode). (stages/quality/flags.py)",
    "truncated": "The text stops mid-sentence: its last line is prose (12+ characters or a clause comma) without "
                 "sentence-final punctuation. Not raised for link-split fragments (a last line starting with "
                 "'，' or ending with '《') or pages of several lines with no finished sentence (lists, version "
                 "pages). (stages/quality/flags.py)",
    "mostly_non_han": "Letters are mostly neither Han nor Latin (symbol soup, box drawing from mis-read bytes), or "
                      "under 20 % Han among 20+ letters. (stages/quality/flags.py)",
    "punctuation_only": "Nothing but punctuation, symbols and spaces. (stages/quality/flags.py)",
    "rewritten_year": "A year range whose two ends are the same year (e.g. 2019-2019年): a template's year was "
                      "rewritten mechanically. (stages/normalize/stage.py)",
    "short": "Fewer non-space characters than ingest.min_essay_chars: a title-only or teaser page. (ingest/files.py)",
    "decode_replaced": "The file was not valid in any encoding tried; undecodable bytes became U+FFFD. (ingest/files.py)",
    "non_utf8_path": "The file name was not valid UTF-8; its path is stored with \\x escapes (and a literal "
                     "backslash as two). (ingest/files.py)",
    "line_endings": "CRLF, lone CR or U+2028/U+2029 line ends were turned into LF, as edits: a copy saved on another "
                    "system, never preferred as a cluster's representative. (ingest/crawltext.py)",
    "invisible_chars": "Invisible characters (Unicode format characters such as U+200B/U+200C/U+FEFF, fillers such as "
                       "U+3164, variation selectors) were removed, as edits: often a site's hidden mark. "
                       "(ingest/crawltext.py)",
    "html_markup": "HTML entities were decoded and tags or script/style blocks removed, as edits. "
                   "(ingest/crawltext.py)",
    "html_residue": "Markup that could not be decoded safely is still in the text: an unknown &name;, a reference "
                    "to an invalid code point, a legacy entity without its ';', a tag cut at a line end. "
                    "(ingest/crawltext.py)",
    "mixed_encoding": "The file changes encoding midway (pages of different encodings concatenated); each segment "
                      "was decoded with its own encoding, named in the input's encoding, and a segment no "
                      "encoding fits was quarantined alone. (ingest/files.py)",
    "mojibake_repaired": "UTF-8 text that had been read as GBK was repaired (reversibly, as edits); a damaged copy, "
                         "never preferred as a cluster's representative. (ingest/mojibake.py)",
    "boilerplate_kept": "The boilerplate detector would have left fewer than watermark.min_kept_chars characters of a "
                        "long text (more than watermark.max_emptied_chars removed): the detector's removals were "
                        "not applied to it. (stages/watermark/removal.py)",
    "unparsed_crawled_at": "The crawler's time could not be read as a date and time; crawled_at is null. "
                           "(stages/quality/stage.py)",
}
def plural(n: int, noun: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``1,204 documents``: a count with its noun agreeing (``many`` for an
    irregular plural).  Every user-facing count of the report, ``show`` and the CLI summaries uses it."""
    return f"{n:,} {noun if n == 1 else (many or noun + 's')}"


def _boilerplate_section(stats: Mapping[str, Any]) -> str:
    rows = stats.get("boilerplate_lines") or []
    return _table(["documents", "sites", "rule", "example (raw)"],
                  [[r["documents"], r["sites"], r["rule"], r["example"]] for r in rows])


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "x"


def _figures(stats: Mapping[str, Any]) -> dict[str, Any]:
    d = stats["documents"]
    lengths = d["char_counts"]
    figs: dict[str, Any] = {
        "version": stats["version"],
        "documents": d["rows"],
        "documents-deduplicated": d["rows"] - d["duplicates"],
        "duplicate-documents": d["duplicates"],
        "clusters": d["clusters"],
        "multi-member-clusters": d["multi_clusters"],
        "largest-cluster": max(d["cluster_sizes"], default=0),
        "characters": d["chars"],
        "median-chars": int(np.median(lengths)) if len(lengths) else 0,
        "sections": stats["sections"],
        "duplicate-pairs": stats["rows"].get("duplicates", 0),
        "edits": stats["rows"].get("edits", 0),
        "quarantined": stats["quarantine"]["count"],
        "removals": int(sum(int(v) for v in stats["removals_per_rule"].values())),
    }
    for kind, n in stats["redactions"].items():
        figs[f"redactions-{_slug(kind)}"] = n
    for script, n in d["scripts"].items():
        figs[f"script-{_slug(script)}"] = n
    for flag, n in d["flags"].items():
        figs[f"flagged-{_slug(flag)}"] = n
    return figs


def key_figures(release_dir: Path, stats: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Headline numbers with lowercase-dash keys, for a Prefect table/markdown artifact."""
    return _figures(stats or collect_stats(release_dir))


# --------------------------------------------------------------------------- SVG


_E = html.escape


def _fmt(n: float) -> str:
    n = float(n)
    if abs(n) >= 1e6:
        return f"{n / 1e6:.1f}M"
    if abs(n) >= 1e4:
        return f"{n / 1e3:.0f}k"
    if abs(n) >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:g}"


def svg_bars(labels: Sequence[str], values: Sequence[float], *, title: str, width: int = 640) -> str:
    """Horizontal bar chart: category labels read left to right, however long they are."""
    if not values:
        return f'<p class="empty">{_E(title)}: nothing to show.</p>'
    row, label_w, pad = 20, 220, 6
    vmax = max(max(values), 1)
    bar_w = width - label_w - 70
    h = row * len(values) + 30
    parts = [f'<svg role="img" aria-label="{_E(title)}" width="{width}" height="{h}" viewBox="0 0 {width} {h}">',
             f'<title>{_E(title)}</title>',
             f'<text x="0" y="14" class="t">{_E(title)}</text>']
    for i, (lab, v) in enumerate(zip(labels, values)):
        y = 24 + i * row
        w = 0 if v <= 0 else max(1.0, bar_w * v / vmax)
        short = lab if len(lab) <= 32 else lab[:31] + "…"
        parts.append(f'<text x="{label_w - pad}" y="{y + 13}" text-anchor="end">{_E(short)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 5}"><title>{_E(lab)}: '
                     f'{_E(str(v))}</title></rect>')
        parts.append(f'<text x="{label_w + w + pad:.1f}" y="{y + 13}">{_E(_fmt(v))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_columns(labels: Sequence[str], values: Sequence[float], *, title: str, width: int = 640,
                height: int = 220) -> str:
    """Vertical bars for a histogram; every few labels are printed so they do not overlap."""
    if not values:
        return f'<p class="empty">{_E(title)}: nothing to show.</p>'
    top, bottom, left = 24, 40, 40
    plot_h = height - top - bottom
    vmax = max(max(values), 1)
    col_w = (width - left) / len(values)
    step = max(1, int(np.ceil(len(values) * 60 / (width - left))))
    parts = [f'<svg role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">', f'<title>{_E(title)}</title>',
             f'<text x="0" y="14" class="t">{_E(title)}</text>',
             f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{_E(_fmt(vmax))}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" class="axis"/>']
    for i, (lab, v) in enumerate(zip(labels, values)):
        bh = 0 if v <= 0 else max(1.0, plot_h * v / vmax)
        x = left + i * col_w
        parts.append(f'<rect x="{x + 1:.1f}" y="{top + plot_h - bh:.1f}" width="{max(col_w - 2, 1):.1f}" '
                     f'height="{bh:.1f}"><title>{_E(lab)}: {_E(str(v))}</title></rect>')
        if i % step == 0:
            parts.append(f'<text x="{x + col_w / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                         f'class="s">{_E(lab)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def length_histogram(lengths: np.ndarray, bins: int = 24) -> tuple[list[str], list[int]]:
    """Bins up to the 99th percentile plus one overflow bin, so one giant essay does not flatten the rest."""
    if len(lengths) == 0:
        return [], []
    hi = float(np.percentile(lengths, 99))
    lo = float(lengths.min())
    if hi <= lo:
        return [f"{_fmt(lo)}"], [int(len(lengths))]
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(np.clip(lengths, lo, hi), bins=edges)
    labels = [_fmt(round(e)) for e in edges[:-1]]
    over = int((lengths > hi).sum())
    counts[-1] -= over  # values above hi were clipped into the last bin
    labels.append(f">{_fmt(round(hi))}")
    return labels, [int(c) for c in counts] + [over]


# --------------------------------------------------------------------------- HTML


_CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC",sans-serif;margin:2rem auto;max-width:980px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;
vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.85em}
svg{display:block;margin:.8rem 0;font-size:12px}svg rect{fill:#4a78b5}svg .t{font-weight:600;font-size:13px}
svg .s{font-size:10px}svg .axis{stroke:#999}.grid{display:flex;flex-wrap:wrap;gap:1rem}.muted{color:#777}
del{background:#fdd;color:#900}ins{background:#dfd;color:#060;text-decoration:none}.ex{margin:.15rem 0}
table.sbs{table-layout:fixed;width:100%}table.sbs td{width:50%;white-space:pre-wrap;font-size:.9em;line-height:1.6}
h3{font-size:1rem}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{_E(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = []
        for v in r:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                cells.append(f'<td class="n">{_E(f"{v:,}" if isinstance(v, int) else f"{v:.3g}")}</td>')
            else:
                cells.append(f"<td>{_E('' if v is None else str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _vis(s: str) -> str:
    """Whitespace a reader must see (a removed line break is an edit too)."""
    return _E(s).replace("\n", "⏎").replace("\t", "⇥").replace(" ", "␣") if s else '<span class="muted">(nothing)</span>'


def side_by_side(a: str, b: str, limit: int = DIFF_CHARS) -> tuple[str, str]:
    """Both texts as escaped HTML with the characters that differ marked (difflib on characters;
    equal runs longer than 120 characters are shortened to their ends)."""
    import difflib

    a, b = a[:limit], b[:limit]
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    left, right = [], []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            seg = a[i1:i2]
            if len(seg) > 120:
                seg_html = _E(seg[:50]) + '<span class="muted"> … </span>' + _E(seg[-50:])
            else:
                seg_html = _E(seg)
            left.append(seg_html)
            right.append(seg_html)
        else:
            if i2 > i1:
                left.append(f'<del>{_E(a[i1:i2])}</del>')
            if j2 > j1:
                right.append(f'<ins>{_E(b[j1:j2])}</ins>')
    return "".join(left), "".join(right)


def _cluster_section(stats: Mapping[str, Any], level: str) -> str:
    c = stats["clusters"][level]
    noun = "document" if level == "document" else "section"
    parts = [f"<h3>{noun.capitalize()} clusters</h3>",
             f"<p>{plural(c['multi'], noun + ' cluster')} with more than one member; "
             f"{plural(c['pair_count'], 'verified ' + noun + ' pair')} in <code>duplicates.parquet</code>.</p>",
             _table(["cluster (representative id)", "members"], [[x["cluster_id"], x["size"]] for x in c["clusters"]])]
    for p in c["pairs"]:
        left, right = side_by_side(p["a"].get("text") or "", p["b"].get("text") or "")
        la = p["a"].get("title") or p["a"].get("heading") or ""
        lb = p["b"].get("title") or p["b"].get("heading") or ""
        parts.append(
            f'<div class="pair"><p><b>{_E(p["relation"])}</b> · exact Jaccard {p["jaccard_exact"]:.3f} · '
            f'{_E(p["a_id"])} in {_E(p["b_id"])}: {p["containment_ab"]:.3f} · reverse {p["containment_ba"]:.3f}</p>'
            f'<table class="sbs"><tr><th>{_E(p["a_id"])} {_E(la)}</th><th>{_E(p["b_id"])} {_E(lb)}</th></tr>'
            f'<tr><td>{left}</td><td>{right}</td></tr></table></div>')
    return "\n".join(parts)


def _rules_section(stats: Mapping[str, Any]) -> str:
    rows = []
    for rule, info in stats["edits_per_rule"].items():
        ex = stats["rule_examples"].get(rule, [])
        cells = "".join(f'<div class="ex"><del>{_vis(e["before"])}</del> → <ins>{_vis(e["after"])}</ins> '
                        f'<span class="muted">{_E(e["doc_id"])}</span></div>' for e in ex)
        rows.append(f'<tr><td><code>{_E(rule)}</code></td><td>{_E(info["stage"])}</td>'
                    f'<td class="n">{info["edits"]:,}</td><td>{cells}</td></tr>')
    if not rows:
        return '<p class="muted">no edits</p>'
    return ('<table><thead><tr><th>rule</th><th>stage</th><th>edits</th><th>examples (raw → clean, first '
            f'{EXAMPLES_PER_RULE})</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def _flags_section(stats: Mapping[str, Any]) -> str:
    d = stats["documents"]
    if not d["flags"]:
        return '<p class="muted">no document is flagged</p>'
    rows = []
    for flag, n in d["flags"].items():
        ex = stats["flag_examples"].get(flag, [])
        cells = "".join(f'<div class="ex"><span class="muted">{_E(e["doc_id"])}</span> {_E(e["title"] or "")}: '
                        f'<q>{_E(e["evidence"])}</q></div>' for e in ex)
        rows.append(f'<tr><td><code>{_E(flag)}</code></td><td class="n">{n:,}</td>'
                    f'<td>{_E(FLAG_MEANINGS.get(flag, "(no description)"))}</td><td>{cells}</td></tr>')
    return ('<table><thead><tr><th>flag</th><th>documents</th><th>meaning</th><th>examples</th></tr></thead>'
            "<tbody>" + "".join(rows) + "</tbody></table>")


def _stage_rows(stages: Mapping[str, Any]) -> tuple[list[list[Any]], list[list[Any]]]:
    """(per-stage timing rows, per-stage counter rows): nested counters flattened to dotted names."""
    timing, counters = [], []

    def flat(prefix: str, v: Any):
        if isinstance(v, Mapping):
            for k in sorted(v):
                yield from flat(f"{prefix}.{k}" if prefix else str(k), v[k])
        else:
            yield prefix, v

    for name, v in stages.items():
        timing.append([name, float(v.get("seconds", 0.0) or 0.0), float(v.get("input_mb", 0.0) or 0.0),
                       "" if v.get("mb_per_s") is None else float(v["mb_per_s"])])
        for k, c in flat("", v.get("counts") or {}):
            counters.append([name, k, c if isinstance(c, (int, float)) else str(c)])
    return timing, counters


def _version_line(m: Mapping[str, Any]) -> str:
    bump, prev = m.get("version_bump"), m.get("previous_version")
    if not prev or bump == "initial":
        return "first release"
    return f"{bump} release after {prev}"


def render_report(stats: Mapping[str, Any]) -> str:
    m = stats["manifest"]
    d = stats["documents"]
    figs = _figures(stats)
    h_labels, h_values = length_histogram(d["char_counts"])
    cs = d["cluster_sizes"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh"><head><meta charset="utf-8">',
        # No scripts, no remote anything: the browser enforces what the page promises.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{_E(str(stats['dataset']))} {_E(str(stats['version']))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_E(str(stats['dataset']))} — release {_E(str(stats['version']))}</h1>",
        f"<p class=\"muted\">created {_E(str(m.get('created_at', '?')))} · pipeline "
        f"{_E(str(m.get('pipeline', {}).get('version', '?')))} ({_E(str(m.get('pipeline', {}).get('git_commit', '?')))}"
        f") · schema {_E(str(m.get('schema_version', '?')))} · {_E(_version_line(m))}</p>",
        f"<p class=\"muted\">content hash <code>{_E(str(m.get('content_hash', '?')))}</code></p>",
        "<h2>Key figures</h2>",
        _table(["figure", "value"], [[k, v] for k, v in figs.items()]),
        "<h2>Charts</h2>",
        svg_columns(h_labels, h_values, title="Essay length (characters) — documents per bin"),
        '<div class="grid">',
        svg_bars([str(k) for k in d["scripts"]], list(d["scripts"].values()), title="Script mix (documents)",
                 width=460),
        svg_bars([f"level {k}" for k in stats["sections_per_level"]], list(stats["sections_per_level"].values()),
                 title="Sections per level", width=460),
        "</div>",
        svg_bars([f"size {k}" for k in sorted(cs)], [cs[k] for k in sorted(cs)],
                 title="Duplicate clusters by size (number of clusters)"),
        svg_bars(list(stats["removals_per_rule"])[:30], [int(v) for v in stats["removals_per_rule"].values()][:30],
                 title="Removals per rule"),
        "<h2>Files</h2>",
        _table(["file", "rows", "bytes", "sha256"],
               [[n, f.get("rows"), f.get("bytes"), f.get("sha256")] for n, f in stats["files"].items()]),
        "<h2>Edits per rule, with examples</h2>",
        "<p>Every change to the text is an edit with a rule name (<code>edits.parquet</code>); struck through "
        "is the raw text removed, green what replaced it (⏎ a line break, ␣ a space).</p>",
        _rules_section(stats),
        "<h2>Boilerplate lines the detector removed</h2>",
        f"<p>Lines and bracketed runs that recur across distinct texts (corpus-wide, or at the page edges of one "
        f"site), removed as <code>boilerplate_line</code>/<code>boilerplate_run</code> edits: from how many "
        f"documents and sites, with one raw example (most documents first, at most {BOILERPLATE_SHOWN}).</p>",
        _boilerplate_section(stats),
        "<h2>Flags</h2>",
        "<p>Flags mark documents that are kept but deserve a look; nothing is removed for a flag.</p>",
        _flags_section(stats),
        "<h2>Quality signals (documents)</h2>",
        "<p>Measured, not acted on: <code>corpuspipe export --min/--max</code> filters on them.</p>",
        _table(["signal", "min", "median", "90th percentile", "max"],
               [[r["signal"], r["min"], r["median"], r["p90"], r["max"]] for r in stats["signals"]]),
        "<h2>Largest duplicate clusters</h2>",
        "<p>A cluster is named by its representative (chosen by quality: fewest flags, then a Simplified "
        "original over a converted copy, then the longer text, then the smallest id); side by side below are verified "
        "pairs with the differing characters marked.</p>",
        _cluster_section(stats, "document"),
        _cluster_section(stats, "section"),
        "<h2>Stages</h2>",
        _table(["stage", "seconds", "input MB", "MB/s"], _stage_rows(m.get("stages") or {})[0]),
        _table(["stage", "counter", "value"], _stage_rows(m.get("stages") or {})[1]),
        "<h2>Quarantine</h2>",
        _table(["reason", "files or lines"], [[r, int(n)] for r, n in stats["quarantine"]["by_reason"].items()]),
        "<h2>Redactions</h2>",
        _table(["kind", "count"], [[k, int(v)] for k, v in stats["redactions"].items()]),
        "<h2>Members of the largest document clusters</h2>",
        _table(["cluster", "size", "doc_id", "title", "duplicate_of"],
               [[c["cluster_id"], c["size"], mm["doc_id"], mm["title"], mm["duplicate_of"]]
                for c in d["largest_clusters"] for mm in c["members"]]),
        "<h2>Flagged documents (first 20)</h2>",
        _table(["doc_id", "title", "flags"], [[f["doc_id"], f["title"], ", ".join(f["flags"])] for f in d["flagged"]]),
        "<h2>Deduplicated view</h2>",
        "<p>Keep one document per cluster with <code>SELECT * FROM 'documents.parquet' WHERE duplicate_of IS NULL"
        "</code>.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_report(release_dir: Path, stats: Mapping[str, Any] | None = None) -> Path:
    """Write <release>/report.html and return its path (``stats``: see card.write_card)."""
    path = Path(release_dir) / REPORT_NAME
    atomic_write_text(path, render_report(stats or collect_stats(release_dir)))
    return path
