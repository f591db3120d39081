"""The commands that copy a release out: ``export`` (training shards) and ``publish`` (the release itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from corpuspipe.cli.common import WRITING, UserError, damaged, fail, out, resolve_release


def export(
    release_dir: Path = typer.Argument(..., help="A release directory, or a releases root (uses 'latest')."),
    out_dir: Path = typer.Argument(..., help="New (or empty) directory for the shards."),
    level: str = typer.Option("document", "--level", help="document (one per near-duplicate cluster) or section (deduplicated leaf sections)."),
    formats: Optional[list[str]] = typer.Option(None, "--format", help="parquet and/or jsonl (zstd-compressed .jsonl.zst); repeat for both (default: both)."),
    exclude_flags: Optional[list[str]] = typer.Option(None, "--exclude-flag", help="Drop documents with this flag (repeatable; default: mojibake)."),
    keep_flagged: bool = typer.Option(False, "--keep-flagged", help="Exclude no flag."),
    scripts: Optional[list[str]] = typer.Option(None, "--script", help="Keep only documents whose raw script is this (repeatable: simplified, traditional, mixed)."),
    min_chars: int = typer.Option(1, "--min-chars", help="Minimum characters of the exported text's document."),
    max_chars: Optional[int] = typer.Option(None, "--max-chars", help="Maximum characters of the document."),
    mins: Optional[list[str]] = typer.Option(None, "--min", help="Lower bound on a document column, NAME=NUMBER, e.g. han_ratio=0.7 (repeatable)."),
    maxs: Optional[list[str]] = typer.Option(None, "--max", help="Upper bound, e.g. dup_10gram_frac=0.3 or best_containment=0.8 (repeatable)."),
    shard_rows: int = typer.Option(50_000, "--shard-rows", help="Rows per shard."),
) -> None:
    """Write training-ready shards of deduplicated documents or leaf sections, with a manifest naming the release."""
    from corpuspipe import preflight
    from corpuspipe.release.export import ExportError, Selection, export_release, parse_bounds
    from corpuspipe.release.verify import ReleaseDamaged

    try:
        resolved = resolve_release(release_dir)
        preflight.check_output_path(out_dir, "the export into")
        _check_flags(exclude_flags or [], "--exclude-flag")
        sel = Selection(level=level, exclude_flags=[] if keep_flagged else list(exclude_flags or ["mojibake"]),
                        scripts=list(scripts or []), min_chars=min_chars, max_chars=max_chars,
                        min=parse_bounds(mins or [], "min"), max=parse_bounds(maxs or [], "max"))
        sel.check()
        WRITING["to"] = out_dir
        result = export_release(resolved, out_dir, sel, formats=formats or ["parquet", "jsonl"], shard_rows=shard_rows)
    except (UserError, ExportError, preflight.PreflightError) as exc:
        fail(str(exc))
    except ReleaseDamaged as exc:
        damaged(exc)
    from corpuspipe.release.report import plural

    out.print(f"exported {plural(result.rows, level)} of release {result.manifest['release_version']} "
              f"into {plural(len(result.files), 'file')} in {out_dir}", highlight=False)



def _check_flags(flags: list[str], option: str) -> None:
    """Every flag named is one the pipeline raises (a typo used to filter nothing, silently)."""
    from corpuspipe.release.report import FLAG_MEANINGS
    from corpuspipe.stages.watermark import EMPTIED_FLAG, KEPT_FLAG

    known = sorted({*FLAG_MEANINGS, EMPTIED_FLAG, KEPT_FLAG})
    for f in flags:
        if f not in known:
            raise UserError(f"unknown flag {f!r} for {option}: use one of {', '.join(known)}")


def publish(
    release_dir: Path = typer.Argument(..., help="A release directory (or releases root: uses 'latest')."),
    target: str = typer.Argument(..., help="fsspec URL: a path, file://, s3:// (extra s3), gs:// (extra gcs)."),
) -> None:
    """Copy a release to TARGET/<version>/ after checking every sha256; refuses to overwrite other content."""
    from corpuspipe.preflight import PreflightError, check_publish_target

    try:
        resolved = resolve_release(release_dir)
        check_publish_target(target)
    except (UserError, PreflightError) as exc:
        fail(str(exc))
    from corpuspipe.release.publish import ALREADY_PUBLISHED, PublishError, publish_release

    try:
        result = publish_release(resolved, target)
    except PublishError as exc:
        fail(str(exc), 1)
    if result.status == ALREADY_PUBLISHED:
        out.print(f"already published {result.url} (identical content); nothing copied", highlight=False)
    else:
        out.print(f"published {result.url}", highlight=False)

