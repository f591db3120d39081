"""Near-duplicate and reuse detection: the :class:`NearDuplicates` stage (``stage.py``) and the
API it calls.

Per shard: ``items_for_document`` (document item + section units) and ``write_signatures`` (one
Parquet file per shard and level, ``signatures.py``).  Once per level: ``find_duplicates_steps``
(``reduce.py``: bands, candidates by partition, ranges, the spill, exact verification in rounds,
clusters without chaining, rows linear in cluster size -- every phase parallel tasks).
"""

from corpuspipe.stages.dedup.minhash import DedupItem, DuplicatePair, lsh_params
from corpuspipe.stages.dedup.reduce import DedupOutcome, dedup_in_memory, find_duplicates, find_duplicates_steps
from corpuspipe.stages.dedup.signatures import write_signatures
from corpuspipe.stages.dedup.stage import NearDuplicates
from corpuspipe.stages.dedup.units import items_for_document

__all__ = [
    "DedupItem",
    "DedupOutcome",
    "DuplicatePair",
    "NearDuplicates",
    "dedup_in_memory",
    "find_duplicates",
    "find_duplicates_steps",
    "items_for_document",
    "lsh_params",
    "write_signatures",
]
