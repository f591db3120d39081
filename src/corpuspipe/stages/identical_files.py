"""Byte-identical input files: one is released, the copies are quarantined naming it.

Ids derive from content, so two byte-identical files would give every essay twice under the same
``doc_id``.  The decision needs the whole corpus (which file has the smallest path among its
copies) but is tiny: one (sha256, path) pair per file.
"""

from __future__ import annotations

from typing import Sequence

from corpuspipe.core.records import QuarantineEntry, Shard
from corpuspipe.core.stage import Context, CorpusStage

#: The fact: dropped path -> [kept path, sha256], sorted by dropped path.
Dropped = dict[str, list[str]]


class IdenticalFiles(CorpusStage):
    """Byte-identical files give identical doc_ids (ids derive from content): release the copy with
    the smallest path, quarantine the others naming the kept one."""

    name = "identical_files"
    applies = True

    def collect(self, batch: Shard, ctx: Context) -> list[list[str]]:
        return sorted([s.sha256, s.path] for s in batch.sources)

    def reduce(self, partials: Sequence[list[list[str]]], ctx: Context) -> Dropped:
        """dropped path -> [kept path, sha256]."""
        kept: dict[str, str] = {}
        dropped: Dropped = {}
        for sha, path in sorted({(sha, path) for part in partials for sha, path in part}):
            if sha in kept:
                dropped[path] = [kept[sha], sha]
            else:
                kept[sha] = path
        ctx.count(self.name, "files_dropped", len(dropped))
        return dict(sorted(dropped.items()))

    def apply(self, batch: Shard, ctx: Context) -> Shard:
        """Drop the copies' essays and sources (idempotent: a shard's groups share its sources)."""
        dropped = ctx.facts.get(self.name) or {}
        if dropped:
            batch.essays = [e for e in batch.essays if e.source_path not in dropped]
            batch.sources = [s for s in batch.sources if s.path not in dropped]
        return batch

    def quarantine(self, fact: Dropped | None) -> list[QuarantineEntry]:
        return [QuarantineEntry(path=path, reason="duplicate_file", sha256=sha,
                                detail=f"byte-identical to {kept}; its essays are released from there")
                for path, (kept, sha) in sorted((fact or {}).items())]
