"""The ``[watermark]`` settings: rule-based and corpus-statistics-based boilerplate removal."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from corpuspipe.core.config import ConfigSection


class WatermarkConfig(ConfigSection):
    """Rule-based and corpus-statistics-based removal of site boilerplate."""

    rules_file: str | None = None  # extra TOML rules on top of the shipped ones
    detect_boilerplate: bool = True
    min_doc_frequency: int = Field(3, ge=1)  # a candidate must recur in at least this many documents...
    # ...and in this share of documents (scales with corpus size).  0.08: the formulaic openers of the
    # real government reports recur in <= 6.8% of them, their Wikisource notice in 13.6%.
    min_doc_share: float = Field(0.08, ge=0.0, le=1.0)
    min_chars: int = Field(8, ge=1)
    allowlist: tuple[str, ...] = ()
    # Site level (site = URL host for JSON Lines, top-level folder for files): a line on at least
    # this share of one site's distinct texts, at the page edges, is that site's boilerplate.  A
    # crawl site's own footer wording sits on most of its pages but on ~3 % of a 17-site corpus,
    # far under min_doc_share; the formulaic report opener sits on 6.8 % of one site's reports.
    site_min_share: float = Field(0.5, ge=0.0, le=1.0)
    site_min_docs: int = Field(5, ge=1)  # sites with fewer distinct texts get no site-level rule
    # Page edges: the first/last `edge_lines` non-blank lines, or lines within `edge_chars` of either end.
    edge_lines: int = Field(3, ge=0, le=1000)
    edge_chars: int = Field(200, ge=0)
    edge_share: float = Field(0.8, ge=0.0, le=1.0)  # share of a site-level key's votes that must sit at an edge
    # One vote per distinct text: a document votes under the hash of its longest body line when that
    # line has at least this many characters (copies with different site lines vote once), else of its text.
    identity_min_chars: int = Field(40, ge=1)
    # An essay the stage would leave with fewer non-space characters than this is "emptied": quarantined
    # (boilerplate_only) when what went was short, kept untouched by the detector and flagged otherwise.
    min_kept_chars: int = Field(20, ge=0)
    max_emptied_chars: int = Field(200, ge=0)

    def input_files(self) -> list[Path]:
        """The user rules file: its contents are part of the config (editing it changes the release)."""
        return [Path(self.rules_file)] if self.rules_file else []
