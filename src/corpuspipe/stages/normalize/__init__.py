"""Script and text normalization: Traditional -> Simplified, text repair, PII redaction.

The :class:`Normalize` stage (``stage.py``) and its knowledge, one module per job: what a
character is (``chars.py``: the flag table, the essay's script), t2s gated per sentence and its
edits (``t2s.py``), line structure (``lines.py``: blank lines, lines broken mid-sentence, page
numbers), repairs inside a line (``repairs.py``: full-width alnum, invisible characters, PDF
glyphs, punctuation, spacing), its settings (``config.py``).

Every change goes through ``essay.body.apply`` (stage ``normalize``) so the raw text can be
rebuilt.  Steps run in a fixed order (t2s + 著 + character repairs, PII, line structure,
punctuation, spacing) and each step's decisions only look at features the later steps cannot
change (Han-ness, the class of a line's last character, commas and sentence ends of a paragraph,
Han counts), which is what makes normalizing twice give the same text as normalizing once.

Speed: one numpy lookup per essay classifies every character (``chars.py``); only the sentences
holding a t2s trigger character meet the converter (``t2s.py``).

Measured (``bench/profile_normalize.py``: 152 essays ingested from raw/ + gov reports + laws,
5.9 MB per kind, CPU seconds on a shared 2-core machine, noisy +-20 %):

* limits: classifying every character (UTF-32 + flag lookup) ~880 MB/s; the sentence gate
  ~140 MB/s; the fast converter on whole essays ~35 MB/s; the plain engine 2.4-2.8 MB/s.
* stage: Simplified 12.7 MB/s, Simplified with one stray Traditional character per essay
  10.8 MB/s (was 5.4 with per-document gating), 25 % Traditional essays 5.1, all Traditional
  2.0 MB/s.  Not the 25 MB/s aimed at: ``TrackedText.apply`` (core/edits.py) takes ~40 % of the
  stray-character run (28k edits, mostly blank-line ``whitespace`` edits) and ~60 % of the
  Traditional run (152k t2s edits, one per changed stretch); the rest is line structure
  (~12 %), spacing, PII and punctuation (~5 % each).  ``TrackedText.apply`` rebuilds all edits per
call, so steps that touch nothing make no call and the character-level steps share one.
"""

from corpuspipe.stages.normalize.chars import script_ratio
from corpuspipe.stages.normalize.config import NormalizeConfig
from corpuspipe.stages.normalize.stage import STAGE, Normalize, normalize_essay, normalize_essays
from corpuspipe.stages.normalize.t2s import CUT_CHARS, fix_zhe, needs_t2s, t2s_raw, t2s_whole, to_simplified

__all__ = [
    "CUT_CHARS",
    "STAGE",
    "Normalize",
    "NormalizeConfig",
    "fix_zhe",
    "needs_t2s",
    "normalize_essay",
    "normalize_essays",
    "script_ratio",
    "t2s_raw",
    "t2s_whole",
    "to_simplified",
]
