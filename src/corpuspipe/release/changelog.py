"""CHANGELOG.md: the difference of two releases (:mod:`corpuspipe.release.diff`) as Markdown, written
into a release as it is built, or printed by ``corpuspipe diff``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Generator

from corpuspipe.core.stage import Tasks, drive, serial_tasks
from corpuspipe.release.diff import MAX_EXAMPLES, diff_releases, diff_steps
from corpuspipe.release.versioning import atomic_write_text

CHANGELOG_NAME = "CHANGELOG.md"


def _md(value: Any) -> str:
    """Markdown-table-safe cell: corpus ids and config values can contain pipes and newlines."""
    s = "∅" if value is None else str(value)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")


def render_changelog(diff: Mapping[str, Any]) -> str:
    """CHANGELOG.md text for a diff_releases() result."""
    lines = [f"# Changelog {diff['from']} → {diff['to']}", ""]
    lines += ["## Rows", "", "| table | rows before | rows after | added | removed | changed | metadata only |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, t in diff["tables"].items():
        lines.append(f"| {name} | {t['rows_a']} | {t['rows_b']} | {t['added']} | {t['removed']} | "
                     f"{t['changed']} | {t.get('metadata_changed', 0)} |")
    lines.append("")
    lines.append("Rows are matched on their natural key (" + "; ".join(
        f"{n}: {', '.join(t['key'])}" for n, t in diff["tables"].items() if t.get("key")) + "). "
        "For documents and sections *changed* means the text changed; *metadata only* means other columns did.")
    lines.append("")
    schema = diff["schema"]
    lines += ["## Schema", ""]
    if not (schema["tables_added"] or schema["tables_removed"] or schema["columns"]):
        lines.append("No schema changes.")
    for n in schema["tables_added"]:
        lines.append(f"- table added: `{_md(n)}`")
    for n in schema["tables_removed"]:
        lines.append(f"- table removed: `{_md(n)}`")
    for n, sd in schema["columns"].items():
        for c in sd["added"]:
            lines.append(f"- `{n}`: column added `{_md(c)}`")
        for c in sd["removed"]:
            lines.append(f"- `{n}`: column removed `{_md(c)}`")
        for c in sd["type_changed"]:
            lines.append(f"- `{n}`: column `{_md(c['column'])}` type {_md(c['from'])} → {_md(c['to'])}")
        for c in sd["nullability_changed"]:
            lines.append(f"- `{n}`: column `{_md(c)}` nullability changed")
    lines.append("")
    detail = [(n, t) for n, t in diff["tables"].items() if t.get("changed_columns") or t.get("examples")]
    if detail:
        lines += ["## Details", ""]
    for n, t in detail:
        if not any(t.get("examples", {}).values()) and not t.get("changed_columns"):
            continue
        lines.append(f"### {n}")
        lines.append("")
        if t.get("changed_columns"):
            lines.append("Columns that differ in matched rows: " + ", ".join(
                f"`{_md(c)}` ({k})" for c, k in t["changed_columns"].items()))
            lines.append("")
        for kind in ("added", "removed", "changed", "metadata_changed"):
            ex = t.get("examples", {}).get(kind) or []
            total = t.get(kind, 0)
            if ex:
                more = f" (first {len(ex)} of {total})" if total > len(ex) else ""
                lines.append(f"- {kind.replace('_', ' ')}{more}: " + ", ".join(f"`{_md(e)}`" for e in ex))
        lines.append("")
    m = diff["manifest"]
    lines += ["## Pipeline and inputs", ""]
    pv, sv = m["pipeline_version"], m["schema_version"]
    lines.append(f"- pipeline version: {_md(pv[0])} → {_md(pv[1])}" if pv[0] != pv[1] else
                 f"- pipeline version: {_md(pv[1])} (unchanged)")
    lines.append(f"- schema version: {_md(sv[0])} → {_md(sv[1])}" if sv[0] != sv[1] else
                 f"- schema version: {_md(sv[1])} (unchanged)")
    inp = m["inputs"]
    lines.append(f"- input files: {len(inp['added'])} added, {len(inp['removed'])} removed, "
                 f"{len(inp['changed'])} changed")
    for kind in ("added", "removed", "changed"):
        if inp[kind]:
            shown = inp[kind][:MAX_EXAMPLES]
            more = f" (first {len(shown)} of {len(inp[kind])})" if len(inp[kind]) > len(shown) else ""
            lines.append(f"  - {kind}{more}: " + ", ".join(f"`{_md(p)}`" for p in shown))
    if m["config_changes"]:
        lines += ["", "| config key | before | after |", "|---|---|---|"]
        for c in m["config_changes"]:
            lines.append(f"| `{_md(c['key'])}` | {_md(json.dumps(c['from'], ensure_ascii=False))} | "
                         f"{_md(json.dumps(c['to'], ensure_ascii=False))} |")
    else:
        lines.append("- configuration: unchanged")
    lines.append("")
    return "\n".join(lines)


def changelog_text(a_dir: Path, b_dir: Path, run_tasks: Callable[[Tasks], list] = serial_tasks) -> str:
    """CHANGELOG.md of release B against A, as text: `corpuspipe diff` prints it and never writes into
    a release (finished releases are sealed read-only, issue 13 #10)."""
    return render_changelog(diff_releases(a_dir, b_dir, run_tasks=run_tasks))


def write_changelog_steps(a_dir: Path, b_dir: Path, b_manifest: Mapping[str, Any]) -> Generator[Tasks, list, Path]:
    """Diff release A against B (being written: its manifest given) and write B/CHANGELOG.md.

    Only for the writer, into the release's temporary directory before it is renamed into place and
    sealed; the CLI uses :func:`changelog_text`."""
    path = Path(b_dir) / CHANGELOG_NAME
    # partitions spill beside the release being written, as .tmp-*: a crashed build's are cleaned with it
    diff = yield from diff_steps(a_dir, b_dir, tmp_root=Path(b_dir).parent, b_manifest=b_manifest)
    atomic_write_text(path, render_changelog(diff))
    return path


def write_changelog(a_dir: Path, b_dir: Path, run_tasks: Callable[[Tasks], list] = serial_tasks) -> Path:
    """:func:`write_changelog_steps` for a finished B (its manifest read from it)."""
    from corpuspipe.release.verify import load_manifest

    return drive(write_changelog_steps(a_dir, b_dir, load_manifest(Path(b_dir))), run_tasks)
