"""The one typed configuration object, composed from the stages' own sections.

Each stage keeps its settings beside its code (``stages/<stage>/config.py``, or in the stage's
module when it is one file); this module puts them together, one line per ``[table]`` of the
TOML, in the order the example file and the reference list them.  A new stage with settings adds
its section here; the behaviour every section shares (unknown keys refused, ranges, the config
hash, loading TOML) is in :mod:`corpuspipe.core.config`.  Its JSON form is hashed into every release.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from corpuspipe.core.config import ConfigSection, PipelineConfigBase
from corpuspipe.stages.dedup.config import DedupConfig
from corpuspipe.stages.ingest.config import IngestConfig
from corpuspipe.stages.normalize.config import NormalizeConfig
from corpuspipe.stages.section import SectionConfig
from corpuspipe.stages.watermark.config import WatermarkConfig

__all__ = ["PipelineConfig", "ReleaseConfig", "IngestConfig", "WatermarkConfig", "NormalizeConfig",
           "SectionConfig", "DedupConfig"]


class ReleaseConfig(ConfigSection):
    """What the written release is called and how its files are encoded."""

    dataset: str = "corpuspipe-zh-essays"
    license: str = "other"
    # Dataset card / Croissant text (card.py); the Hub wants license_name when license is "other".
    pretty_name: str = "Chinese essays (cleaned, deduplicated)"
    description: str = ""
    homepage: str = ""
    license_name: str = ""
    license_link: str = ""
    citation: str = ""
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    # zstd level of the release tables.  Measured on the 100 MB crawl bench's documents table: level 3
    # writes 34 MB in 1.3 s, level 9 27 MB in 6.0 s (level 1: 52 MB, 0.7 s).  The writer encodes the
    # table parts in parallel tasks, but each part pays level 9's ~4.6x CPU, so 3 is the default and 9
    # a choice for publishing.
    compression_level: int = Field(3, ge=1, le=22)
    row_group_size: int = Field(50_000, ge=1)
    # Files per shard (one task per shard and pass), cut where a path's hash says (content-defined:
    # adding a file changes only its own shard).  512 files (~2.5 MB of essays) keeps the number of
    # tasks a 1 GB crawl needs in the hundreds; the byte cap keeps a shard of big files small.
    shard_files: int = Field(512, ge=1)
    shard_max_bytes: int = Field(32 * 1024 * 1024, ge=1)


class PipelineConfig(PipelineConfigBase):
    """Everything that changes the output.  Hashing its JSON gives the release's config hash."""

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    watermark: WatermarkConfig = Field(default_factory=WatermarkConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    section: SectionConfig = Field(default_factory=SectionConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)
