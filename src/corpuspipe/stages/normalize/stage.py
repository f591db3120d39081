"""The ``normalize`` shard stage: the steps in their fixed order, as edits, with counters and flags.

Steps (each a module of this package): t2s + 著 + character repairs (``t2s.py``, ``repairs.py``),
PII (``corpuspipe.zh.pii``), line structure (``lines.py``), punctuation and spacing
(``repairs.py``); then t2s again over what the joins exposed.  ``TrackedText.apply`` rebuilds all
of an essay's edits per call, so steps that touch nothing make no call and the character-level
steps share one (:func:`_char_layer`).
"""

from __future__ import annotations

import bisect
import re
from typing import Iterable, Mapping

import numpy as np

from corpuspipe.core.config import PipelineConfigBase
from corpuspipe.core.edits import Replacement
from corpuspipe.core.records import Essay, Shard
from corpuspipe.core.stage import Context, ShardStage, StageReport
from corpuspipe.stages.normalize.chars import _F_FIX, _F_PRE, _F_SIMP, _F_TRAD, _F_ZHU, _FLAGS, _codepoints, _script_from_counts
from corpuspipe.stages.normalize.config import NormalizeConfig
from corpuspipe.stages.normalize.lines import _line_structure
from corpuspipe.stages.normalize.repairs import _char_repairs, _pre_repairs, _punctuation, _spacing
from corpuspipe.stages.normalize.t2s import _t2s_replacements, to_simplified
from corpuspipe.stages.quality.flags import encoding_damage, quality_flags, truncated
from corpuspipe.zh.pii import find_pii
from corpuspipe.zh.zhe import zhe_spans

STAGE = "normalize"
# -- flags ---------------------------------------------------------------------------------------

_YEAR_RANGE_RE = re.compile(r"((?:19|20)\d\d)\s*[-－—–~～至到]\s*\1\s*年")
def _flags(essay: Essay) -> None:
    text = essay.body.text
    if _YEAR_RANGE_RE.search(text):
        essay.add_flag("rewritten_year")
    if truncated(text):
        essay.add_flag("truncated")
    for flag in quality_flags(text):
        essay.add_flag(flag)


# -- driver --------------------------------------------------------------------------------------


def _apply(essay: Essay, reps: list[Replacement], counts: dict[str, int], count: bool = True) -> None:
    if not reps:
        return  # every step emits only real changes, so no no-op filtering here
    essay.body.apply(reps, STAGE)
    if count:
        _count_reps(essay, reps, counts)


def _count_reps(essay: Essay, reps: Iterable[Replacement], counts: dict[str, int]) -> None:
    per_rule: dict[str, list[int]] = {}
    for r in reps:
        c = per_rule.setdefault(r.rule, [0, 0])
        c[0] += 1
        c[1] += r.end - r.start
    for rule, (n, chars) in per_rule.items():
        _count(counts, rule, n, chars)
        essay.bump(f"normalize.{rule}", n)
        if rule.startswith("pii_"):
            essay.bump(f"redacted.{rule[4:]}", n)


def _count(counts: dict[str, int], rule: str, edits: int, chars: int) -> None:
    counts[f"{rule}.edits"] = counts.get(f"{rule}.edits", 0) + edits
    counts[f"{rule}.chars"] = counts.get(f"{rule}.chars", 0) + chars




def _char_layer(essay: Essay, text: str, cps: np.ndarray, fl: np.ndarray, cfg: NormalizeConfig, counts: dict[str, int]) -> None:
    """t2s, the 著 pass and character repairs as ONE apply when t2s keeps the length.

    Each ``apply`` rebuilds all of an essay's Edit objects, so fewer calls is most of the
    stage's speed on Traditional essays.  Repairs of non-Han characters never overlap t2s spans
    (those cover Han runs only); a 著 or 臵 inside a t2s span is folded into it (rule
    ``t2s+zhe``), which is what a second ``apply`` would have merged it into anyway.
    """
    t2s: list[Replacement] = []
    new = text
    if cfg.convert_traditional:
        t2s, new = _t2s_replacements(text, cps, fl)
    if len(new) != len(text):  # rare: a phrase changed length; plain sequential applies
        _apply(essay, t2s, counts)
        if cfg.convert_traditional and (fl & _F_ZHU).any():
            _apply(essay, [Replacement(s, e, "着", "zhe") for s, e in zhe_spans(essay.body.text)], counts)
        if (fl & _F_FIX).any():
            _apply(essay, _char_repairs(essay.body.text, cfg), counts)
        return
    singles: list[Replacement] = []
    if cfg.convert_traditional and (fl & _F_ZHU).any():
        singles += [Replacement(s, e, "着", "zhe") for s, e in zhe_spans(new)]
    if (fl & _F_FIX).any():
        singles += _char_repairs(new, cfg)
    if not singles:
        _apply(essay, t2s, counts)
        return
    _count_reps(essay, t2s, counts)
    _count_reps(essay, singles, counts)
    starts = [r.start for r in t2s]
    merged: dict[int, Replacement] = {}
    loose: list[Replacement] = []
    for r in singles:
        i = bisect.bisect_right(starts, r.start) - 1
        if i >= 0 and t2s[i].start <= r.start and r.end <= t2s[i].end:
            base = merged.get(i, t2s[i])
            k = r.start - base.start
            after = base.after[:k] + r.after + base.after[k + len(r.after) :]
            rule = base.rule if r.rule in base.rule.split("+") else f"{base.rule}+{r.rule}"
            merged[i] = Replacement(base.start, base.end, after, rule)
        else:
            loose.append(r)
    reps = [merged.get(i, r) for i, r in enumerate(t2s)] + loose
    essay.body.apply(reps, STAGE)


def normalize_essay(essay: Essay, cfg: NormalizeConfig, counts: dict[str, int] | None = None) -> dict[str, int]:
    """Normalize one essay in place (see :func:`normalize_essays`)."""
    counts = {} if counts is None else counts
    text = essay.body.text
    cps = _codepoints(text)
    fl = _FLAGS[cps]
    first_run = not any(STAGE in e.stage.split("+") for e in essay.body.edits)
    if first_run:
        # the script of the text as it reached us; a re-run keeps the first answer
        trad, simp = int(np.count_nonzero(fl & _F_TRAD)), int(np.count_nonzero(fl & _F_SIMP))
        essay.script, essay.trad_ratio = _script_from_counts(trad, simp, cfg)
    if (fl & _F_PRE).any():
        # own apply, first: every later step must see the repaired characters
        _apply(essay, _pre_repairs(text, cfg), counts)
        text = essay.body.text
        cps = _codepoints(text)
        fl = _FLAGS[cps]
    counts[f"script.{essay.script}"] = counts.get(f"script.{essay.script}", 0) + 1
    _char_layer(essay, text, cps, fl, cfg, counts)
    if cfg.convert_traditional:
        for attr in ("title", "author"):
            val = getattr(essay, attr)
            if val:
                setattr(essay, attr, to_simplified(val))
    if cfg.redact_pii:
        _apply(essay, find_pii(essay.body.text, cfg.pii_kinds, cfg.pii_id_card_15), counts)
    joins = _line_structure(essay.body.text, cfg)
    _apply(essay, joins, counts)
    if cfg.fix_punctuation:
        _apply(essay, _punctuation(essay.body.text, keep_qmark=encoding_damage(essay.body.text)), counts)
    spacing = _spacing(essay.body.text)
    _apply(essay, spacing, counts)
    if cfg.convert_traditional and (joins or spacing):
        # Joining broken lines and removing spaces between Han characters can bring a dictionary
        # phrase together (反 覆 -> 反覆, which t2s makes 反复): convert what the repairs exposed, so
        # a second run changes nothing.  Only those two passes join Han runs, so only their edits trigger it.
        text = essay.body.text
        cps = _codepoints(text)
        _char_layer(essay, text, cps, _FLAGS[cps], cfg, counts)
    _flags(essay)
    return counts


def normalize_essays(essays: list[Essay], cfg: NormalizeConfig) -> dict[str, int]:
    """Set essay.script/trad_ratio from the RAW essay text (before conversion), convert to Simplified, repair text,
    redact PII; all as edits with stage "normalize"; flags; also convert essay.title (and author) to Simplified.
    Returns counts per rule (edits and chars) for the manifest; also bump essay.stats."""
    counts: dict[str, int] = {}
    for essay in essays:
        normalize_essay(essay, cfg, counts)
    return dict(sorted(counts.items()))


class Normalize(ShardStage):
    """Traditional -> Simplified, text repairs, PII redaction; script and flags."""

    name = STAGE
    config_sections = ("normalize",)

    def process(self, batch: Shard, ctx: Context) -> Shard:
        ctx.count_all(self.name, normalize_essays(batch.essays, ctx.cfg.normalize))
        return batch

    def report(self, counts: Mapping[str, int], fact: None, cfg: PipelineConfigBase) -> StageReport:
        """Its counters (edits and characters per rule) also as the manifest's ``normalize``, and the
        PII rules' ones as ``redactions``."""
        ordered = dict(sorted(counts.items()))
        return StageReport(counts=ordered, entries={
            "normalize": ordered, "redactions": {k: v for k, v in ordered.items() if k.startswith("pii")}})
