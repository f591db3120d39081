"""Why a document carries each of its flags: the characters, the rule and the threshold.

A release stores a flag as a bare word (``documents.flags``).  ``corpuspipe show`` asks this module
what fired: each explanation re-runs the *same* check the stage ran (the stage modules' own
functions, patterns and constants are imported, never copied), on the text the stage saw:

* ingest flags (``mojibake``, ``short``, ``decode_replaced``) were raised before any later stage
  changed the text, so they are explained on the essay's raw text, rebuilt exactly from the clean
  text and its edits (``core.edits.rebuild_raw``);
* normalize flags (``truncated``, ``encoding_damage``, ``mostly_non_han``, ``punctuation_only``,
  ``rewritten_year``) were raised on the clean text (``encoding_damage`` also on the text before the
  punctuation pass, so the raw text is tried when the clean text shows nothing).

Thresholds that are configuration come from the release's own manifest (the config it was built
with).  When today's check no longer fires on the text (the code changed since the release was
built) the explanation says so instead of inventing evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from corpuspipe.release.report import FLAG_MEANINGS, plural
from corpuspipe.release.show import _flat as _visible

SAMPLES = 3  # places shown per flag
_AROUND = 12  # characters of context either side of a place


@dataclass
class FlagReason:
    flag: str
    why: str  # one line: the rule and the figures that passed its threshold
    samples: list[str] = field(default_factory=list)  # the characters in context, «» around them


def _places(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The first :data:`SAMPLES` places, touching spans merged (``��`` is one place)."""
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out = []
    for s, e in merged[:SAMPLES]:
        left = text[max(0, s - _AROUND):s]
        right = text[e:e + _AROUND]
        out.append(f"@{s}: …{_visible(left)}«{_visible(text[s:e])}»{_visible(right)}…")
    return out


def _mojibake(raw: str, clean: str, cfg: dict) -> FlagReason | None:
    from corpuspipe.stages.ingest import mojibake as m

    ev = m.mojibake_evidence(raw)
    if not ev:
        return None
    parts, spans = [], []
    if "lost_lead" in ev:
        parts.append(f"{ev['lost_lead']} '?' where a GBK lead byte was lost (a '?' between Han characters "
                     "next to an orphaned trail byte or a private-use character)")
        spans += [(x.start() + 1, x.end()) for x in m._LOST_LEAD.finditer(raw)]
    if "private_use" in ev:
        parts.append(f"{plural(ev['private_use'], 'private-use character')} (no font draws them in prose)")
        spans += [x.span() for x in m._PRIVATE_USE.finditer(raw)]
    if "outside_gb2312" in ev:
        parts.append(f"{ev['outside_gb2312']} characters that neither GB2312 nor Big5 encode, over "
                     f"{m._STRANGE_SHARE:.0%} of the non-ASCII characters of a Simplified text")
        spans += [(i, i + 1) for i, ch in enumerate(raw) if ord(ch) > 0x7F and m._outside_gb2312_and_big5(ch)]
    if "garbled_lines" in ev:
        parts.append(f"{plural(ev['garbled_lines'], 'line')} with at least 3 (and 3 %) characters neither GB2312 nor Big5 "
                     "encode (one mis-decoded paragraph)")
        spans += [(i, i + 1) for i, ch in enumerate(raw) if ord(ch) > 0x7F and m._outside_gb2312_and_big5(ch)]
    return FlagReason("mojibake", "ingest.mojibake_evidence on the raw text: " + "; ".join(parts) + " (any one fires)",
                      _places(raw, spans))


def _encoding_damage(raw: str, clean: str, cfg: dict) -> FlagReason | None:
    from corpuspipe.stages.quality import flags as q

    for name, text in (("clean", clean), ("raw (before the punctuation pass)", raw)):
        if not q.encoding_damage(text):
            continue
        if q._REPLACEMENT in text:
            spans = [(i, i + 1) for i, ch in enumerate(text) if ch == q._REPLACEMENT]
            return FlagReason("encoding_damage", f"{plural(len(spans), 'U+FFFD replacement character')} in the {name} text: "
                              "bytes a decoder dropped", _places(text, spans))
        runs = [x.span() for x in q._QMARK_RUN.finditer(text)]
        if runs:
            return FlagReason("encoding_damage", f"{plural(len(runs), 'run')} of '??' touching Han characters in the {name} "
                              "text (a lossy re-encode writes '?' per lost character)", _places(text, runs))
        inword = [x.span() for x in q._QMARK_IN_WORD.finditer(text)]
        han = len(q._HAN_RE.findall(text))
        return FlagReason("encoding_damage",
                          f"{len(inword)} '?' inside Chinese words of the {name} text (threshold {q.MIN_QMARKS}, "
                          f"and at least one per {q._HAN_PER_QMARK} Han characters: {han} Han) in a text that "
                          "otherwise writes full-width punctuation", _places(text, inword))
    return None


def _junk(flag: str) -> Callable[[str, str, dict], FlagReason | None]:
    def explain(raw: str, clean: str, cfg: dict) -> FlagReason | None:
        from corpuspipe.stages.quality import flags as q

        if flag not in q.junk_flags(clean):
            return None
        han, latin, other, punct = q._letter_counts(clean)
        letters = han + latin + other
        if flag == "punctuation_only":
            return FlagReason(flag, f"no letters at all: {punct} punctuation/symbol characters and spaces")
        if other > han + latin:
            why = (f"letters of other scripts or symbols ({other}) outnumber Han ({han}) and Latin/digits ({latin}) "
                   "together")
        else:
            why = f"Han {han} of {letters} letters = {han / letters:.0%}, under 20 % of 20 or more letters"
        return FlagReason(flag, why, [f"starts: {_visible(clean[:40])}…"])
    return explain


def _truncated(raw: str, clean: str, cfg: dict) -> FlagReason | None:
    from corpuspipe.stages.quality import flags as q

    if not q.truncated(clean):
        return None
    body = clean.rstrip()
    last = body.rpartition("\n")[2].strip()
    bare = "".join(last.split())
    return FlagReason("truncated",
                      f"the last line is running prose ({len(bare)} non-space characters, at least "
                      f"{q._TRUNCATED_MIN_CHARS}, or a clause comma) that does not end with one of "
                      f"{''.join(sorted(q._END_OK))}: it ends with {_visible(last[-1:])!r}",
                      [f"last line: …{_visible(last[-40:])}"])


def _rewritten_year(raw: str, clean: str, cfg: dict) -> FlagReason | None:
    from corpuspipe.stages.normalize.stage import _YEAR_RANGE_RE

    spans = [x.span() for x in _YEAR_RANGE_RE.finditer(clean)]
    if not spans:
        return None
    return FlagReason("rewritten_year", f"{plural(len(spans), 'year range')} whose two ends are the same year "
                      "(a template's year rewritten mechanically)", _places(clean, spans))


def _short(raw: str, clean: str, cfg: dict) -> FlagReason | None:
    limit = int((cfg.get("ingest") or {}).get("min_essay_chars", 50))
    n = sum(map(len, clean.split()))
    return FlagReason("short", f"{n} non-space characters in the released text, under ingest.min_essay_chars = "
                      f"{limit} (counted after ingest; later repairs may change the count a little)")


def _decode_replaced(raw: str, clean: str, cfg: dict) -> FlagReason | None:
    spans = [(i, i + 1) for i, ch in enumerate(raw) if ch == "\ufffd"]
    return FlagReason("decode_replaced", f"no encoding decoded the file strictly; "
                      f"{plural(len(spans), 'undecodable byte sequence')} became U+FFFD", _places(raw, spans))


_EXPLAIN: dict[str, Callable[[str, str, dict], FlagReason | None]] = {
    "mojibake": _mojibake,
    "encoding_damage": _encoding_damage,
    "mostly_non_han": _junk("mostly_non_han"),
    "punctuation_only": _junk("punctuation_only"),
    "truncated": _truncated,
    "rewritten_year": _rewritten_year,
    "short": _short,
    "decode_replaced": _decode_replaced,
}


def flag_reasons(doc: dict[str, Any], edits: list, config: dict | None = None) -> list[FlagReason]:
    """One :class:`FlagReason` per flag of ``doc`` (a ``documents`` row), in the row's order.

    ``edits``: all of the document's edits (``show.edits_of``), to rebuild its raw text;
    ``config``: the release's config (``MANIFEST.json`` → ``config``) for configured thresholds.
    """
    from corpuspipe.core.edits import rebuild_raw

    flags = list(doc.get("flags") or [])
    if not flags:
        return []
    clean = doc.get("text") or ""
    try:
        raw = rebuild_raw(clean, edits)
    except Exception:  # noqa: BLE001 -- a partial edit list (a section's): explain on the clean text
        raw = clean
    out = []
    for flag in flags:
        explain = _EXPLAIN.get(flag)
        reason = explain(raw, clean, config or {}) if explain else None
        if reason is None:
            meaning = FLAG_MEANINGS.get(flag, "")
            meaning = re.sub(r"\s*\([\w/.]+\.py\)$", "", meaning)  # the code reference is for the report
            if explain is not None:
                meaning = ("today's check does not fire on this text (the release was built by other code); "
                           "the flag means: " + meaning)
            reason = FlagReason(flag, meaning or "no explanation recorded for this flag")
        out.append(reason)
    return out
