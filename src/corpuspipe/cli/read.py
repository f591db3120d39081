"""The commands that read a release and change nothing: ``inspect``, ``verify``, ``show`` and ``diff``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from corpuspipe.cli.common import WRITING, UserError, console, damaged, fail, out, resolve_release


def inspect(
    release_dir: Path = typer.Argument(..., help="A release directory, or a releases root (uses 'latest')."),
    sample: int = typer.Option(3, "--sample", help="How many sample documents to show."),
) -> None:
    """Print counts per table, removals per rule, flags, and a sample."""
    import pyarrow.parquet as pq

    from corpuspipe.release.stats import collect_stats
    from corpuspipe.release.verify import ReleaseDamaged, open_release

    try:
        release_dir = resolve_release(release_dir)
        release = open_release(release_dir)
        parts = {name: release.parts(name) for name in release.tables()}  # every part checked before it is read
        stats = collect_stats(release_dir, release.manifest)
    except UserError as exc:
        fail(str(exc))
    except ReleaseDamaged as exc:
        damaged(exc)
    manifest = release.manifest
    out.print(f"[bold]{manifest['dataset']}[/] {manifest['version']}  content {manifest['content_hash'][:12]}  "
              f"created {manifest['created_at']}", highlight=False)
    _inspect_tables(stats)
    _inspect_edits_and_boilerplate(stats)
    d = stats["documents"]
    for what, c in (("script", d["scripts"]), ("flag", d["flags"])):
        t = Table(title=f"documents per {what}")
        t.add_column(what)
        t.add_column("documents", justify="right")
        for k, n in c.items():
            t.add_row(k, f"{n:,}")
        if not c:
            t.add_row("(none)", "0")
        out.print(t)
    t = Table(title="verified duplicate pairs (duplicates)")
    for col in ("level", "relation", "pairs"):
        t.add_column(col, justify="right" if col == "pairs" else "left")
    per = stats["pairs_per_relation"]
    for level in ("document", "section"):
        rows = sorted((k, n) for k, n in per.items() if k[0] == level) or [((level, "(none)"), 0)]
        for (lv, rel), n in rows:
            t.add_row(lv, rel, f"{n:,}")
    out.print(t)
    out.print(f"documents kept after deduplication: {d['rows'] - d['duplicates']:,} of {d['rows']:,} "
              f"({d['duplicates']:,} with duplicate_of set)", highlight=False)
    q = manifest["quarantine"]
    t = Table(title=f"quarantined inputs: {q['count']:,}")
    t.add_column("reason")
    t.add_column("files or lines", justify="right")
    for r, n in q["by_reason"].items():
        t.add_row(r, f"{n:,}")
    if q["by_reason"]:
        out.print(t)
    else:
        out.print("quarantined inputs: 0", highlight=False)
    from corpuspipe.release.report import plural

    t = Table(title=f"sample ({plural(min(sample, d['rows']), 'document')})")
    for col in ("doc_id", "script", "title", "chars", "text"):
        t.add_column(col, justify="right" if col == "chars" else "left", overflow="fold")
    shown = 0
    for path in parts.get("documents", []):
        if shown >= sample:
            break
        docs = pq.ParquetFile(path)
        for i in range(docs.num_row_groups):
            rows = docs.read_row_group(i, columns=["doc_id", "title", "script", "char_count", "text"])
            for r in rows.slice(0, sample - shown).to_pylist():
                t.add_row(r["doc_id"], r["script"], r["title"] or "", f"{r['char_count']:,}",
                          r["text"][:30].replace("\n", " ") + "…")
                shown += 1
            if shown >= sample:
                break
    out.print(t)


def _inspect_tables(stats: dict) -> None:
    t = Table(title="tables")
    for col in ("table", "parts", "rows", "bytes"):
        t.add_column(col, justify="left" if col == "table" else "right")
    for name, info in stats["tables"].items():
        t.add_row(name, str(info["parts"]), f"{info['rows']:,}", f"{info['bytes']:,}")
    out.print(t)


def _inspect_edits_and_boilerplate(stats: dict) -> None:
    from rich.text import Text

    from corpuspipe.release.report import BOILERPLATE_SHOWN

    t = Table(title="edits per rule")
    for col in ("stage", "rule", "edits", "raw chars"):
        t.add_column(col, justify="right" if col in ("edits", "raw chars") else "left")
    for (stage, rule), (n, chars) in stats["edits_per_stage_rule"].items():
        t.add_row(stage, rule, str(n), str(chars))
    out.print(t)
    lines = stats["boilerplate_all"]
    t = Table(title=f"boilerplate lines the detector removed: {len(lines):,}"
              + (f" (first {BOILERPLATE_SHOWN})" if len(lines) > BOILERPLATE_SHOWN else ""))
    for col in ("documents", "sites", "rule", "example"):
        t.add_column(col, justify="right" if col in ("documents", "sites") else "left")
    for r in lines[:BOILERPLATE_SHOWN]:  # corpus text as Text: a `[来源：…]` is not Rich markup
        t.add_row(str(r["documents"]), str(r["sites"]), r["rule"], Text(r["example"]))
    if not lines:
        t.add_row("0", "0", "(none)", "")
    out.print(t)



def verify(
    release_dir: Path = typer.Argument(..., help="A release directory, or a releases root (uses 'latest')."),
) -> None:
    """Check a release against its manifest: every file's size and sha256, the content hash, and the
    release contract (schemas, versions, row counts, section and edit texts, ids).  Exit 1 if anything differs."""
    from corpuspipe.release.validate import ReleaseInvalid, validate_release
    from corpuspipe.release.verify import ReleaseDamaged, check_files, load_manifest
    from corpuspipe.release.versioning import manifest_files

    try:
        release_dir = resolve_release(release_dir)
        manifest = load_manifest(release_dir)
    except UserError as exc:
        fail(str(exc))
    except ReleaseDamaged as exc:
        damaged(exc)
    files = manifest_files(manifest)
    problems = check_files(release_dir, manifest)
    total = sum(int(f.get("bytes", 0)) for f in files)
    out.print(f"release {manifest.get('version')} at {release_dir}", highlight=False)
    out.print(f"  files: {len(files)} listed in MANIFEST.json ({total:,} bytes): size and sha256 "
              + ("all match" if not problems else f"{len(problems)} differ"), highlight=False)
    out.print("  content hash: matches the outputs list", highlight=False)
    for p in problems:
        console.print(f"[bold red]damaged:[/] {p}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    try:
        counts = validate_release(release_dir)
    except ReleaseInvalid as exc:
        console.print(f"[bold red]invalid:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print("  contract: schemas, version metadata, row counts, section and edit texts against their documents, "
              "unique ids, clusters named by documents: ok", highlight=False)
    out.print("  rows: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())), highlight=False)
    out.print("verified", highlight=False)



def show(
    release_dir: Path = typer.Argument(..., help="A release directory, or a releases root (uses 'latest')."),
    item_id: str = typer.Argument(..., help="A doc_id or section_id."),
    html_path: Optional[Path] = typer.Option(None, "--html", help="Also write the story as a static HTML page here."),
    context: int = typer.Option(30, "--context", help="Characters of clean text shown around each edit."),
) -> None:
    """One document or section: title, flags, signals, cluster and representative, verified pairs, and every edit with its rule."""
    from corpuspipe.release.show import NotFound, load_story, render_html, render_terminal
    from corpuspipe.release.verify import ReleaseDamaged

    from corpuspipe import preflight

    try:
        resolved = resolve_release(release_dir)
        if html_path is not None:
            preflight.check_output_path(html_path, "--html")
            WRITING["to"] = html_path
        story = load_story(resolved, item_id)
    except (UserError, NotFound, preflight.PreflightError) as exc:
        fail(str(exc))
    except ReleaseDamaged as exc:
        damaged(exc)
    from corpuspipe.release.flag_reasons import flag_reasons
    from corpuspipe.release.show import edits_of
    from corpuspipe.release.versioning import read_manifest

    reasons = flag_reasons(story.doc, edits_of(resolved, story.doc["doc_id"]), read_manifest(resolved).get("config"))
    render_terminal(story, out, context=context, reasons=reasons)
    if html_path is not None:
        from corpuspipe.core.io import atomic_write_text

        atomic_write_text(html_path, render_html(story, reasons))
        console.print(f"wrote {html_path}", highlight=False)



def diff(
    a: Path = typer.Argument(..., help="Older release (or releases root)."),
    b: Path = typer.Argument(..., help="Newer release (or releases root)."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Write CHANGELOG markdown here instead of stdout (never into a release)."),
) -> None:
    """Print the changelog of B against A (rows added/removed/changed per table, schema and config
    changes) to stdout, or write it to --out.  Releases are never written to."""
    from corpuspipe.release.changelog import changelog_text
    from corpuspipe.release.verify import ReleaseDamaged

    from corpuspipe import preflight

    try:
        a, b = resolve_release(a), resolve_release(b)
        if out_path is not None and not (out_path.exists() and not out_path.is_file()):  # /dev/stdout: fine
            preflight.check_output_path(out_path, "--out")
            WRITING["to"] = out_path
    except (UserError, preflight.PreflightError) as exc:
        fail(str(exc))
    try:
        text = changelog_text(a, b)
    except ReleaseDamaged as exc:
        damaged(exc)
    if out_path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    if out_path.exists() and not out_path.is_file():  # /dev/stdout, a pipe: write through
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        from corpuspipe.core.io import atomic_write_text

        atomic_write_text(out_path, text)
    console.print(f"wrote {out_path}", highlight=False)

