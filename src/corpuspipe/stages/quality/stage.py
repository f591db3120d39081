"""The quality stage: measure the signals of every essay (never act on them)."""

from __future__ import annotations

from corpuspipe.core.records import Shard
from corpuspipe.core.stage import Context, ShardStage
from corpuspipe.core.dates import parse_timestamp
from corpuspipe.stages.quality.measures import signals_batch


class Quality(ShardStage):
    """Measure the quality signals of every essay (stored in ``Essay.signals``)."""

    name = "quality"
    config_sections = ()

    def process(self, batch: Shard, ctx: Context) -> Shard:
        removed = []
        for e in batch.essays:
            n = 0
            for ed in e.body.edits:
                if "watermark" in ed.stage:
                    n += max(0, len(ed.before) - len(ed.after))
            removed.append(n)
        sigs = signals_batch([e.body.text for e in batch.essays], [len(e.body.raw) for e in batch.essays], removed)
        for e, sig in zip(batch.essays, sigs):
            e.signals = sig
            if e.crawled_at and parse_timestamp(e.crawled_at) is None:
                # the column is a timestamp now; an unreadable crawl time is kept visible as a flag
                e.add_flag("unparsed_crawled_at")
                ctx.count(self.name, "unparsed_crawled_at")
        ctx.count(self.name, "documents", len(batch.essays))
        return batch
