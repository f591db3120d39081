"""Near-duplicate and reuse detection: the :class:`NearDuplicates` stage (``stage.py``) and the
API it calls.

Per shard: ``items_for_document`` (document item + section units) and ``write_signatures`` (one
Parquet file per shard and level).  Once per level: ``find_duplicates`` (bands, candidates by
partition, exact verification, clusters without chaining, rows linear in cluster size).  See
``disk.py`` for the phases, the representative rule and how to recover all pairs of a cluster.
"""

from corpuspipe.stages.dedup.disk import DedupOutcome, dedup_in_memory, find_duplicates, write_signatures
from corpuspipe.stages.dedup.minhash import DedupItem, DuplicatePair, lsh_params
from corpuspipe.stages.dedup.stage import NearDuplicates
from corpuspipe.stages.dedup.units import items_for_document

__all__ = [
    "DedupItem",
    "DedupOutcome",
    "DuplicatePair",
    "NearDuplicates",
    "dedup_in_memory",
    "find_duplicates",
    "items_for_document",
    "lsh_params",
    "write_signatures",
]
