"""The ``[normalize]`` settings: script conversion, text repair and personal-data redaction."""

from __future__ import annotations

from pydantic import Field

from corpuspipe.core.config import ConfigSection


class NormalizeConfig(ConfigSection):
    """Script conversion, text repair and personal-data redaction."""

    convert_traditional: bool = True
    trad_ratio_traditional: float = Field(0.5, ge=0.0, le=1.0)  # >= this: traditional
    trad_ratio_mixed: float = Field(0.05, ge=0.0, le=1.0)  # >= this: mixed
    fix_punctuation: bool = True
    fix_fullwidth_alnum: bool = True
    join_broken_lines: bool = True
    fix_pdf_glyphs: bool = True
    # a line that does not end a sentence is joined to the next only if its paragraph so far
    # has at least this many Han characters (shorter unterminated lines are titles/headings)
    join_min_han: int = Field(30, ge=0)
    redact_pii: bool = True
    # which kinds to redact (see corpuspipe.zh.pii.KINDS); 15-digit legacy ID numbers are opt-in
    pii_kinds: tuple[str, ...] = ("id_card", "mobile", "email", "student_id", "exam_id", "staff_id", "name")
    pii_id_card_15: bool = False
