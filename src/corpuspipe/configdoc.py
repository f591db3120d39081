"""The configuration, documented from its own source: commented TOML and a Markdown reference.

Every key's meaning is the comment written beside it (or on the lines just above it) in its
section's class (beside its stage, e.g. ``stages/dedup/config.py``; composed in ``config.py``), its
type and range are the pydantic field's, and a section's meaning is its class docstring, so the file a user edits (``config init``, ``config.example.toml``), the
``config show`` output and ``docs/reference/configuration.md`` cannot drift from the code that
reads them (``corpuspipe.docgen`` writes the last two; ``tests/docs/test_docs.py`` checks them).
"""

from __future__ import annotations

import inspect
import io
import json
import tokenize
import types
import typing
from typing import Any

from corpuspipe.config import PipelineConfig


def _field_comments(cls: type) -> dict[str, str]:
    """{field: comment} from a pydantic class's source: a trailing ``# ...`` on the field's line,
    else the ``# ...`` lines directly above it."""
    src = inspect.getsource(cls)
    out: dict[str, str] = {}
    pending: list[str] = []
    lines = src.splitlines()
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    for no, line in enumerate(lines, 1):
        s = line.strip()
        if s.startswith("#"):
            pending.append(comments.get(no, ""))
            continue
        name = s.split(":", 1)[0].strip() if ":" in s and not s.startswith(("def ", "class ", '"', "@")) else ""
        if name.isidentifier() and name in cls.model_fields:
            # a trailing comment may continue on the following comment-only lines
            text = comments.get(no) if no in comments and not s.startswith("#") else None
            out[name] = " ".join(filter(None, [text] if text else pending)).strip()
            pending = []
        elif not s:
            pending = []
        else:
            pending = []
    return out


#: meanings of keys whose source line carries none (a source comment, when present, is appended)
MEANINGS: dict[str, str] = {
    "ingest.include_globs": "which files under the raw directory are read (glob patterns)",
    "ingest.max_file_bytes": "larger files are quarantined (too_large)",
    "ingest.jsonl_text_field": "JSON Lines: the field holding the essay text",
    "ingest.jsonl_title_field": "JSON Lines: the field holding the title",
    "ingest.jsonl_url_field": "JSON Lines: the field holding the page URL",
    "ingest.jsonl_crawled_at_field": "JSON Lines: the field holding the crawl time (becomes the crawled_at timestamp)",
    "ingest.min_essay_chars": "essays with fewer non-space characters are flagged short",
    "watermark.detect_boilerplate": "also remove lines and bracketed runs that recur across many documents",
    "watermark.min_chars": "shortest line or run the boilerplate detector considers",
    "watermark.edge_chars": "the page edges in characters from either end (see edge_lines)",
    "watermark.max_emptied_chars": "an emptied essay whose detector-removed text is longer than this is kept "
                                   "untouched by the detector and flagged boilerplate_kept; otherwise quarantined "
                                   "(boilerplate_only; see min_kept_chars)",
    "watermark.allowlist": "lines the boilerplate detector never removes (set phrases)",
    "normalize.convert_traditional": "convert Traditional script to Simplified (OpenCC t2s plus a 著→着 pass)",
    "normalize.fix_punctuation": "ASCII punctuation in Chinese context becomes full-width",
    "normalize.fix_fullwidth_alnum": "full-width digits and letters become half-width",
    "normalize.join_broken_lines": "rejoin lines broken by PDF extraction, dropping page numbers inside them",
    "normalize.fix_pdf_glyphs": "repair PDF mapping glyphs (布臵 → 布置)",
    "normalize.redact_pii": "replace personal data with typed placeholders ([学号], [姓名], …)",
    "normalize.pii_id_card_15": "also redact 15-digit legacy ID-card numbers",
    "section.max_heading_chars": "a run-in heading longer than this is body text",
    "dedup.shingle": "shingles of characters (char) or jieba words (word)",
    "dedup.ngram": "shingle length",
    "dedup.num_perm": "MinHash permutations",
    "dedup.threshold": "exact Jaccard at or above which two items are near-duplicates",
    "dedup.containment_threshold": "containment at or above which a pair is reuse (one side copied into the other)",
    "dedup.min_section_chars": "sections (paragraphs) shorter than this are not compared",
    "dedup.seed": "seed of the MinHash permutations (signatures from different seeds do not compare)",
    "release.dataset": "dataset name in the manifest, the Parquet metadata and the card",
    "release.license": "license identifier in the card's header",
    "release.description": "a paragraph for the card and Croissant",
    "release.homepage": "URL for the card and Croissant",
    "release.license_name": "license name (the Hub wants it when license is other)",
    "release.license_link": "license URL",
    "release.citation": "how to cite the dataset",
    "release.compression": "Parquet compression of the release tables",
    "release.row_group_size": "rows per Parquet row group in the release",
    "release.shard_max_bytes": "a shard is cut before it would pass this many raw bytes",
}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return repr(v) if isinstance(v, float) else str(v)


def sections(cfg: PipelineConfig | None = None) -> list[tuple[str, str, list[tuple[str, Any, Any, str]]]]:
    """[(section, its doc, [(key, value, default, meaning)])] in declaration order."""
    cfg = cfg or PipelineConfig()
    default = PipelineConfig()
    out = []
    for sec_name, f in PipelineConfig.model_fields.items():
        cls = f.annotation
        doc = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
        comments = _field_comments(cls)
        cur, dflt = getattr(cfg, sec_name), getattr(default, sec_name)
        keys = [(k, getattr(cur, k), getattr(dflt, k),
                 "; ".join(filter(None, [MEANINGS.get(f"{sec_name}.{k}"), comments.get(k, "")])))
                for k in cls.model_fields]
        out.append((sec_name, doc, keys))
    return out


def to_toml(cfg: PipelineConfig | None = None, commented_out: bool = False) -> str:
    """The config as TOML with each key's meaning above it.  ``commented_out``: every key as a
    comment (a starting file that changes nothing until a line is uncommented)."""
    lines = ["# corpuspipe configuration. Tables mirror corpuspipe.config.PipelineConfig;",
             "# unknown keys are refused. Pass the file with --config.", ""]
    for sec, doc, keys in sections(cfg):
        lines += [f"# {doc}" if doc else "", f"[{sec}]"]
        for k, v, d, meaning in keys:
            if meaning:
                lines.append(f"# {meaning}")
            if v is None:
                lines.append(f"# {k} = (unset)")
                continue
            marker = "# " if commented_out else ""
            note = "" if v == d or commented_out else f"  # default: {_toml_value(d) if d is not None else '(unset)'}"
            lines.append(f"{marker}{k} = {_toml_value(v)}{note}")
        lines.append("")
    return "\n".join(line for line in lines) .replace("\n\n\n", "\n\n")


def type_of(cls: type, key: str) -> str:
    """A field's type and range in words: ``int >= 1``, ``float in (0, 1]``, ``"char" | "word"``."""
    f = cls.model_fields[key]
    ann = f.annotation
    if typing.get_origin(ann) is typing.Literal:
        return " | ".join(_toml_value(a) for a in typing.get_args(ann))
    optional = False
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        optional, ann = len(args) < len(typing.get_args(ann)), args[0]
    words = {bool: "bool", int: "int", float: "float", str: "string"}
    if typing.get_origin(ann) is tuple:
        item = typing.get_args(ann)[0]
        name = f"list of {words.get(item, getattr(item, '__name__', str(item)))}s"
    else:
        name = words.get(ann, getattr(ann, "__name__", str(ann)))
    lo = hi = None
    lo_open = hi_open = False
    for m in f.metadata:
        for attr, is_lo, is_open in (("ge", True, False), ("gt", True, True), ("le", False, False), ("lt", False, True)):
            v = getattr(m, attr, None)
            if v is not None:
                if is_lo:
                    lo, lo_open = v, is_open
                else:
                    hi, hi_open = v, is_open
    if lo is not None and hi is not None:
        name += f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    elif lo is not None:
        name += f" {'>' if lo_open else '>='} {lo}"
    elif hi is not None:
        name += f" {'<' if hi_open else '<='} {hi}"
    return name + (" (optional)" if optional else "")


def markdown_reference() -> str:
    """Per section: its docstring and a ``| key | type | default | meaning |`` table."""
    out: list[str] = []
    for sec, doc, keys in sections():
        cls = PipelineConfig.model_fields[sec].annotation
        out += [f"## `[{sec}]`", "", doc, "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for k, _v, d, meaning in keys:
            dv = "(unset)" if d is None else _toml_value(d)
            cells = [f"`{k}`", type_of(cls, k), f"`{dv}`", meaning]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)
