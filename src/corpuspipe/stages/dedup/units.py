"""What dedup judges: one item per document, and the section units of its outline.

Sections are judged at the leaves of the outline (a parent's text contains its children's, so
parent/child pairs would all be "reuse" noise).  A leaf with several paragraphs is judged paragraph
by paragraph: an essay without an outline is one long section, and a copied paragraph is a small
share of it — judged whole it would never be found.  Paragraph units are ``<section_id>#NNN`` and
carry their section as ``entity``: a section pair's scores are those of its best unit pair.  All
units of a document share ``group=doc_id`` so they are never paired with each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from corpuspipe.core.config import DedupConfig
from corpuspipe.core.records import SectionRow, section_id
from corpuspipe.stages.dedup.minhash import DedupItem


def items_for_document(
    doc_id: str,
    text: str,
    sections: Sequence[SectionRow],
    *,
    flags: Sequence[str],
    script: str,
    cfg: DedupConfig,
) -> tuple[DedupItem, list[DedupItem]]:
    """The document item and its section units (leaf sections; paragraphs of multi-paragraph leaves).

    ``quality`` is the length of the judged text (document or whole section), the third key of the
    representative rule; ``flags`` and ``script`` are the document's and are shared by its units.
    ``cfg`` is accepted for the engine's uniform call; unit choice does not depend on it today.
    """
    n_flags = len(flags)
    doc = DedupItem(id=doc_id, text=text, quality=len(text), flags=n_flags, script=script)
    parents = {s.parent_path for s in sections if s.parent_path}
    units: list[DedupItem] = []
    for s in sections:
        if s.path in parents:
            continue  # judged through its children
        sid = section_id(doc_id, s.path)
        body = text[s.char_start : s.char_end]
        quality = s.char_end - s.char_start
        paragraphs = [p for p in body.split("\n") if p.strip()]
        if len(paragraphs) <= 1:
            units.append(DedupItem(sid, body, quality, group=doc_id, entity=sid, flags=n_flags, script=script))
            continue
        for k, para in enumerate(paragraphs):
            units.append(
                DedupItem(f"{sid}#{k:03d}", para, quality, group=doc_id, entity=sid, flags=n_flags, script=script)
            )
    return doc, units
