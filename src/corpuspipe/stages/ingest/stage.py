"""The source stage: raw files in, batches of essays out (the knowledge lives in the modules
beside it: ``files.py`` reads one file, see the package's docstring)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from corpuspipe.core import shardio
from corpuspipe.core.records import Essay, QuarantineEntry, Shard, SourceInfo
from corpuspipe.core.stage import Context, SourceStage
from corpuspipe.stages.ingest import files as ingest_mod


class Ingest(SourceStage):
    """Read, decode and split raw files into essays; quarantine what cannot be used."""

    name = "ingest"
    config_sections = ("ingest",)

    def read_groups(self, raw_root: Path, rel_paths: Sequence[str], ctx: Context) -> Iterator[Shard]:
        """The shard's essays in groups cut exactly where the shard file's row groups are cut
        (:func:`shardio.cut_before`: 2,048 essays or ``GROUP_CHARS`` raw characters), each with the
        sources and quarantine entries finished since the previous group; at least one group.

        A 200 MB file used to reach the writer as one list of ~4,000 essays (raw and current
        text of each, plus the Arrow copy of a row group): 1,358 MB for pass 0 alone (3.86 GB reported in a full release).  Now a
        file's essays go out as they are split.  A failure inside a file quarantines the file;
        only when some of its essays already went out (a file larger than a group) do those stay.
        """
        cfg = ctx.cfg.ingest
        pending: list[Essay] = []
        chars = 0
        sources: list[SourceInfo] = []
        quarantine: list[QuarantineEntry] = []
        for rel in rel_paths:
            part = Shard()
            mine = 0  # this file's essays still in pending (not handed on)
            released = 0  # this file's essays already handed on
            try:
                for essay in ingest_mod.iter_file(Path(raw_root), rel, cfg, part):
                    size = len(essay.body.raw)
                    if shardio.cut_before(len(pending), chars, size):
                        released += mine
                        yield Shard(essays=pending, sources=sources, quarantine=quarantine)
                        pending, chars, sources, quarantine, mine = [], 0, [], [], 0
                    pending.append(essay)
                    chars += size
                    mine += 1
            except Exception as exc:
                if mine:
                    del pending[-mine:]
                    chars = sum(len(e.body.raw) for e in pending)
                part = ingest_mod.failed_file(rel, exc, released, part.sources[-1] if part.sources else None)
            sources.extend(part.sources)
            quarantine.extend(part.quarantine)
            ctx.count_all(self.name, {k.split(".", 1)[-1]: v for k, v in part.stats.items() if isinstance(v, int)})
        yield Shard(essays=pending, sources=sources, quarantine=quarantine)
