"""What dedup judges: one item per document, and the section units of its outline.

Sections are judged at the leaves of the outline (a parent's text contains its children's, so
parent/child pairs would all be "reuse" noise; ``sections.is_leaf`` in a release marks them).
Every leaf is one **whole-section** unit (id = its section_id): a section pair's ``jaccard_exact``
and containments, its relation (near_duplicate / reuse) and its cluster come from the two
sections' own texts.  A leaf with several paragraphs also gets one unit per paragraph,
``<section_id>#NNN``, carrying the section as ``entity``: an essay without an outline is one long
section, and a paragraph copied into it is a small share of it -- judged whole it would never be
found.  Paragraph units only *find* candidates and measure paragraph-level reuse (reported as
``paragraph_reuse`` with the best paragraph pair's scores in their own columns); they never make a
section a near-duplicate.  Before, a section's score was its best unit pair's: on the 88 gov
reports 31 section pairs whose lengths differ more than 2x were reported with Jaccard 1.0 and put
e.g. a 2013 "八是切实加强政府自身建设" subsection under an unrelated 4,462-char opening chapter.
All units of a document share ``group=doc_id`` so they are never paired with each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from corpuspipe.stages.dedup.config import DedupConfig
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
    """The document item and its section units (every leaf whole; paragraphs of multi-paragraph leaves).

    ``quality`` is the length of the judged text (document or whole section), the third key of the
    representative rule; ``flags`` and ``script`` are the document's and are shared by its units.
    ``cfg`` is accepted for the engine's uniform call; unit choice does not depend on it today.
    """
    n_flags = len(flags)
    doc = _item(DedupItem, (doc_id, text, len(text), None, None, n_flags, script))
    parents = {s.parent_path for s in sections if s.parent_path}
    units: list[DedupItem] = []
    add = units.append
    for s in sections:
        if s.path in parents:
            continue  # judged through its children
        sid = section_id(doc_id, s.path)
        start, end = s.char_start, s.char_end
        body = text[start:end]
        quality = end - start
        add(_item(DedupItem, (sid, body, quality, doc_id, sid, n_flags, script)))
        if "\n" not in body:
            continue  # one paragraph at most
        paragraphs = [p for p in body.split("\n") if p.strip()]
        if len(paragraphs) <= 1:
            continue
        units.extend([_item(DedupItem, (f"{sid}#{k:03d}", para, quality, doc_id, sid, n_flags, script))
                      for k, para in enumerate(paragraphs)])
    return doc, units


_item = tuple.__new__  # DedupItem(...) from a full tuple, without the NamedTuple's Python-level __new__
