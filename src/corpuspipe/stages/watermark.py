"""Watermark and boilerplate removal: shipped regex rules plus a corpus-statistics detector.

Two kinds of removal, both recorded as lossless edits with stage ``"watermark"``:

* **Rules** (``rules/watermarks.toml``, extensible by users) name known watermarks: inline
  source notes, template tags, bare URLs, site header/footer lines, breadcrumbs.
* **Detected boilerplate**: lines and bracketed runs that recur verbatim (after folding
  script, width, digits and whitespace) in many documents.  Statistics are collected per shard
  (:func:`collect_boilerplate_stats`), summed by the flow, judged once for the corpus
  (:func:`select_boilerplate`) and applied per shard (:func:`remove_watermarks`).

All matching runs on a *view* of the text of identical length (Traditional folded to
Simplified one character to one character, full-width punctuation to half-width), so a span
found in the view is the same span in the real text and both scripts need only one pattern.
"""

from __future__ import annotations

import logging
import math
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence

import numpy as np
import regex
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator

from corpuspipe.zh.opencc import single_char_t2s
from corpuspipe.zh.outline import boilerplate_heading_re
from corpuspipe.core.config import WatermarkConfig
from corpuspipe.core.edits import Replacement
from corpuspipe.core.records import Essay

STAGE = "watermark"
BOILERPLATE_LINE_RULE = "boilerplate_line"
BOILERPLATE_RUN_RULE = "boilerplate_run"
LINE_PREFIX = "L|"  # doc-frequency keys of whole lines
RUN_PREFIX = "R|"  # doc-frequency keys of bracketed inline runs

_SHIPPED_RULES = "watermarks.toml"
_RULE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_log = logging.getLogger(__name__)

# Per document and rule.  The shipped rules take < 5 ms on a 1 MB document; a user's `(a|aa)+$` on
# 60 characters runs for minutes.  1 s stops it without ever touching a sane rule.
RULE_TIMEOUT_SECONDS = 1.0


def catastrophic_reason(pattern: str) -> str | None:
    """Why ``pattern`` backtracks exponentially, if it obviously does, else None.

    A cheap structural check on Python's own regex parser (< 1 ms per rule): an unbounded repeat
    whose body is, apart from parts that may match nothing, itself an unbounded repeat -- ``(a+)+``,
    ``(\\w*\\s?)*``, ``(?:x+)+y`` -- lets one input split across the two repeats in exponentially
    many ways.  Bodies with a required separator (``(?:\\.[a-z]+)*``, as in the shipped URL rule)
    are fine.  Subtler cases like ``(a|aa)+$`` pass this check and are caught by the per-document
    timeout instead.  Patterns Python cannot parse (regex-only syntax) are not judged here.
    """
    try:
        from re import _constants as C  # noqa: N812
        from re import _parser as P  # noqa: N812

        tree = P.parse(pattern)
    except Exception:  # noqa: BLE001  (a regex-only construct: no verdict)
        return None
    unbounded = (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None))

    def items(sub):
        # flatten one level of groups so (?:(a+))+ is seen like (a+)+
        for op, av in sub:
            if op is C.SUBPATTERN:
                yield from items(av[-1])
            else:
                yield op, av

    def is_unbounded(op, av) -> bool:
        return op in unbounded and op is not None and av[1] is C.MAXREPEAT and op is not getattr(
            C, "POSSESSIVE_REPEAT", object())

    def walk(sub) -> str | None:
        for op, av in sub:
            if is_unbounded(op, av):
                body = list(items(av[2]))
                inner = [(o, a) for o, a in body if is_unbounded(o, a)]
                rest_empty = all(P.SubPattern(sub.state, [(o, a)]).getwidth()[0] == 0
                                 for o, a in body if not is_unbounded(o, a))
                if inner and rest_empty:
                    return "a repeated group whose body is itself repeated (like (a+)+) backtracks exponentially"
            for child in _children(op, av):
                found = walk(child)
                if found:
                    return found
        return None

    def _children(op, av):
        if op is C.SUBPATTERN:
            return [av[-1]]
        if op in unbounded and op is not None:
            return [av[2]]
        if op is C.BRANCH:
            return list(av[1])
        if op in (C.ASSERT, C.ASSERT_NOT):
            return [av[1]]
        if op is getattr(C, "ATOMIC_GROUP", None):
            return [av]
        return []

    return walk(tree)


class RuleGuard:
    """Per-run state of rule matching: rules that timed out are disabled for the rest of the run.

    One guard per run (the engine passes it to every shard of one process); without one each
    remove_watermarks call makes its own.  ``counters()`` is what the stage reports.
    """

    def __init__(self, timeout: float = RULE_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self.timeouts: dict[str, int] = {}

    def disabled(self, name: str) -> bool:
        return name in self.timeouts

    def record_timeout(self, name: str, doc_id: str = "") -> None:
        self.timeouts[name] = self.timeouts.get(name, 0) + 1
        _log.warning("watermark rule %r ran over %.1f s on document %s and is disabled for the rest of this run",
                     name, self.timeout, doc_id or "?")

    def counters(self) -> dict[str, int]:
        out = {"rule_timeouts": sum(self.timeouts.values())}
        out.update({f"rule_timeouts.{k}": v for k, v in sorted(self.timeouts.items())})
        return out


# ----------------------------------------------------------------------------- rules
class WatermarkRule(BaseModel):
    """One named removal pattern, matched on the normalized view (see the TOML header)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    pattern: str
    scope: Literal["inline", "line"]
    description: str = ""
    # Optional prefilter: the rule only runs on texts whose lower-cased view contains one of these.
    require: tuple[str, ...] = ()
    _regex: regex.Pattern[str] = PrivateAttr()

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _RULE_NAME.match(v) or v in (BOILERPLATE_LINE_RULE, BOILERPLATE_RUN_RULE):
            raise ValueError(f"rule name must be lower_snake_case and not reserved: {v!r}")
        return v

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, v: str) -> str:
        # Messages never repeat the pattern: rules files sit beside secrets, and the CLI prints them.
        try:
            rx = regex.compile(v, regex.MULTILINE | regex.V0)
        except regex.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        why = catastrophic_reason(v)
        if why:
            raise ValueError(f"pattern refused: {why}")
        try:
            if rx.match("", timeout=RULE_TIMEOUT_SECONDS):
                raise ValueError("pattern matches the empty string")
        except TimeoutError:
            raise ValueError("pattern refused: it times out on the empty string") from None
        return v

    @field_validator("require")
    @classmethod
    def _check_require(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not x for x in v):
            raise ValueError("require strings must not be empty")
        return tuple(x.lower() for x in v)

    def model_post_init(self, __context: object) -> None:
        # `regex`, not `re`: it takes a per-call timeout= (re has none, so `(a|aa)+$` hung a build) and
        # runs `(a+)+$` on 'a'*34+'!' in ~1 ms where re needs minutes.  V0 keeps re's semantics.
        self._regex = regex.compile(self.pattern, regex.MULTILINE | regex.V0)

    @property
    def regex(self) -> regex.Pattern[str]:
        return self._regex


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: list[WatermarkRule] = []
    allowlist: dict[str, list[str]] = {}


class RulesFileError(ValueError):
    """A rules file that cannot be used; the message names the file and the rule, never its contents."""


def _safe_errors(exc: ValidationError, data: object) -> str:
    """pydantic's errors without ``input_value``: a rules file may hold an ``api_key = "…"`` line."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = list(err.get("loc", ()))
        where = ".".join(str(x) for x in loc)
        if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
            rules = data.get("rule") if isinstance(data, dict) else None
            name = None
            if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
                name = rules[loc[1]].get("name")
            label = f"rule {name!r}" if isinstance(name, str) and _RULE_NAME.match(name) else f"rule #{loc[1] + 1}"
            where = " ".join([label, *(str(x) for x in loc[2:])])
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where or 'file'}: {msg}")
    return "; ".join(parts)


def _read_rules_file(text: str, origin: str) -> _RulesFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesFileError(f"{origin}: not valid TOML: {exc}") from None
    if not isinstance(data.get("rule", []), list) or not data.get("rule") and not data.get("allowlist"):
        raise RulesFileError(f"{origin}: no [[rule]] table (see the shipped rules/watermarks.toml for the format)")
    try:
        parsed = _RulesFile.model_validate(data)
    except ValidationError as exc:
        raise RulesFileError(f"{origin}: {_safe_errors(exc, data)}") from None
    extra_keys = set(parsed.allowlist) - {"phrases"}
    if extra_keys:
        raise RulesFileError(f"{origin}: [allowlist] only takes 'phrases', got {sorted(extra_keys)}")
    names = [r.name for r in parsed.rule]
    if len(names) != len(set(names)):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise RulesFileError(f"{origin}: duplicate rule names {dup}")
    return parsed


def check_rules_file(path: str | Path) -> int:
    """Preflight: the file exists, is UTF-8 TOML with rules, and every pattern compiles and is not
    obviously catastrophic.  Returns the number of rules; RulesFileError otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesFileError(f"rules file not found: {path}") from None
    except UnicodeDecodeError:
        raise RulesFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise RulesFileError(f"cannot read rules file {path}: {exc.strerror or exc}") from None
    return len(_read_rules_file(text, str(path)).rule)


def _stamp(path: str | None) -> tuple[int, int] | None:
    """(mtime, size) of a rules file: the memo below must never serve a file's old rules after an edit
    (a long-lived ``serve`` process or worker builds again after the user changed the file)."""
    if path is None:
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _load_files(extra_rules_file: str | None) -> tuple[tuple[WatermarkRule, ...], tuple[str, ...]]:
    return _load_files_at(extra_rules_file, _stamp(extra_rules_file))


@lru_cache(maxsize=8)
def _load_files_at(extra_rules_file: str | None, stamp: tuple[int, int] | None
                   ) -> tuple[tuple[WatermarkRule, ...], tuple[str, ...]]:
    shipped_text = resources.files("corpuspipe").joinpath("rules", _SHIPPED_RULES).read_text(encoding="utf-8")
    shipped = _read_rules_file(shipped_text, _SHIPPED_RULES)
    rules = {r.name: r for r in shipped.rule}
    phrases = list(shipped.allowlist.get("phrases", []))
    if extra_rules_file is not None:
        path = Path(extra_rules_file)
        extra = _read_rules_file(path.read_text(encoding="utf-8"), str(path))
        rules.update({r.name: r for r in extra.rule})  # same name: the user's rule wins
        phrases.extend(extra.allowlist.get("phrases", []))
    return tuple(rules.values()), tuple(phrases)


def load_rules(extra_rules_file: str | None = None) -> list[WatermarkRule]:
    """Shipped TOML rules plus a user's TOML file (same format), validated."""
    return list(_load_files(extra_rules_file)[0])


def load_allowlist(cfg: WatermarkConfig) -> list[str]:
    """Shipped allowlist phrases, the rules file's ``[allowlist] phrases`` and ``cfg.allowlist``."""
    return [*_load_files(cfg.rules_file)[1], *cfg.allowlist]


# ----------------------------------------------------------------------------- view
_DIGIT = re.compile(r"\d")  # every Unicode decimal digit
_SPACE = re.compile(r"[^\S\n]")  # every whitespace character but the newline
_FOLD_PUNCT = {
    "【": "[", "】": "]", "〔": "[", "〕": "]", "〖": "[", "〗": "]",
    "“": '"', "”": '"', "‘": "'", "’": "'", "»": ">", "›": ">",
    "\u3000": " ", "\xa0": " ", "\u200b": " ", "\ufeff": " ", "\t": " ",
}


@lru_cache(maxsize=1)
def _luts() -> tuple[np.ndarray, np.ndarray]:
    """Code-point lookup tables of the view and of the key view; one code point to one, so a
    span in either view is the same span in the text."""
    view = np.arange(0x110000, dtype=np.uint32)
    for trad, simp in single_char_t2s():
        view[ord(trad)] = ord(simp)
    view[0xFF01:0xFF5F] -= 0xFEE0  # full-width ASCII to half-width
    for src, dst in _FOLD_PUNCT.items():
        view[ord(src)] = ord(dst)
    key = view.copy()
    every_char = np.arange(0x110000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    for rx, dst in ((_DIGIT, "0"), (_SPACE, " ")):  # string offset == code point
        key[[m.start() for m in rx.finditer(every_char)]] = ord(dst)
    return view, key


def _apply_lut(text: str, lut: np.ndarray) -> str:
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return lut[codes].tobytes().decode("utf-32-le", "surrogatepass")


def normalized_view(text: str) -> str:
    """Same-length view of ``text``: Simplified script, half-width punctuation."""
    return _apply_lut(text, _luts()[0])


def key_view(text: str) -> str:
    """Same-length view for boilerplate keys: the normalized view with every digit as 0 and
    every whitespace but the newline as a space."""
    return _apply_lut(text, _luts()[1])


def boilerplate_key(text: str) -> str:
    """Key of one line or run: normalized view, digits as 0, whitespace removed."""
    return key_view(text).replace(" ", "").replace("\n", "")


# Bracketed inline runs considered by the detector (on the view; 【】 are already [ ]).
_RUN = re.compile(r"\[[^\[\]\n]{1,80}\]|\([^()\n]{1,80}\)")
_PUNCT = re.compile(r"[\W_]+")
# On a key (view, digits as 0, no whitespace): the outline markers the sectioning stage reads.
_HEADING = boilerplate_heading_re()


def _lines(view: str) -> Iterator[tuple[int, int, str]]:
    """(start, end_including_newline, content) for each line of the view."""
    pos = 0
    for line in view.split("\n"):
        end = pos + len(line)
        yield pos, min(end + 1, len(view)), line
        pos = end + 1


def _line_keys(kview: str, min_chars: int) -> Iterator[tuple[int, int, str]]:
    """Candidate lines of a key view.  Outline headings (一、… （二）… 第三章…) are structure, never
    boilerplate, even when a template repeats them (一、2024年工作回顾 heads 13 of 88 real reports)."""
    for start, end, content in _lines(kview):
        if len(content) < min_chars:
            continue
        key = content.replace(" ", "")
        if len(key) >= min_chars and not _HEADING.match(key):
            yield start, end, key


def _run_keys(kview: str, min_chars: int) -> Iterator[tuple[int, int, str]]:
    for m in _RUN.finditer(kview):
        key = m.group().replace(" ", "")
        if len(key) >= min_chars:
            yield m.start(), m.end(), key


# ----------------------------------------------------------------------------- statistics
def collect_boilerplate_stats(essays: list[Essay], cfg: WatermarkConfig) -> dict[str, int]:
    """Per shard: document frequency of normalized candidate lines and inline runs (a key counted once per doc)."""
    doc_freq: dict[str, int] = {}
    for essay in essays:
        kview = key_view(essay.body.text)
        keys = {LINE_PREFIX + k for _, _, k in _line_keys(kview, cfg.min_chars)}
        keys.update(RUN_PREFIX + k for _, _, k in _run_keys(kview, cfg.min_chars))
        for k in keys:
            doc_freq[k] = doc_freq.get(k, 0) + 1
    return doc_freq


def doc_frequency_threshold(n_docs: int, cfg: WatermarkConfig) -> int:
    """A key is boilerplate from this many documents on: an absolute floor and a corpus share."""
    return max(cfg.min_doc_frequency, math.ceil(cfg.min_doc_share * n_docs))


def _allowlist_keys(cfg: WatermarkConfig) -> list[str]:
    keys = {_PUNCT.sub("", boilerplate_key(p)) for p in load_allowlist(cfg)}
    return sorted((k for k in keys if k), key=len, reverse=True)  # longest phrases first


def is_allowlisted(key: str, allow_keys: Sequence[str], min_chars: int) -> bool:
    """True when the key is (almost) only made of allowlisted phrases: under min_chars remain."""
    rest = _PUNCT.sub("", key.split("|", 1)[-1])
    for phrase in allow_keys:
        if phrase in rest:
            rest = rest.replace(phrase, "")
    return len(rest) < min_chars


def select_boilerplate(doc_freq: dict[str, int], n_docs: int, cfg: WatermarkConfig) -> list[str]:
    """Corpus level: which normalized keys are boilerplate (thresholds scale with corpus size, allowlist respected). Sorted, deterministic."""
    if not cfg.detect_boilerplate or n_docs <= 0:
        return []
    threshold = doc_frequency_threshold(n_docs, cfg)
    allow_keys = _allowlist_keys(cfg)
    return sorted(
        k
        for k, df in doc_freq.items()
        if df >= threshold
        and k.startswith((LINE_PREFIX, RUN_PREFIX))
        and len(k) - len(LINE_PREFIX) >= cfg.min_chars
        and not is_allowlisted(k, allow_keys, cfg.min_chars)
    )


# ----------------------------------------------------------------------------- removal
@dataclass(frozen=True, slots=True)
class Span:
    """A proposed removal in current-text coordinates."""

    start: int
    end: int
    rule: str


def _line_bounds(view: str, start: int, end: int) -> tuple[int, int]:
    """The line(s) holding view[start:end], including the final newline."""
    line_start = view.rfind("\n", 0, start) + 1
    nl = view.find("\n", max(end - 1, start))
    return line_start, (len(view) if nl < 0 else nl + 1)


@lru_cache(maxsize=8)
def _prefilter(rules: tuple[WatermarkRule, ...]) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """One scan for every rule's required strings, longest first."""
    words = tuple(sorted({w for r in rules for w in r.require}, key=lambda w: (-len(w), w)))
    return re.compile("|".join(map(re.escape, words)) if words else r"(?!)"), words


def find_spans(
    text: str,
    rules: Sequence[WatermarkRule],
    line_keys: frozenset[str] = frozenset(),
    run_keys: frozenset[str] = frozenset(),
    min_chars: int = 8,
    guard: RuleGuard | None = None,
    doc_id: str = "",
) -> list[Span]:
    """All removals for one text: rule matches and detected boilerplate, non-overlapping, sorted.

    Each rule gets ``guard.timeout`` seconds on this text; one that runs over adds no span, is
    recorded in the guard and skipped for every later text of the run.
    """
    guard = guard if guard is not None else RuleGuard()
    view = normalized_view(text)
    spans: list[Span] = []
    line_scoped: set[tuple[int, int]] = set()
    prefilter, words = _prefilter(tuple(rules))
    present = set(prefilter.findall(view.lower()))  # lower(): prefilter only
    present.update(w for w in words if any(w in p for p in present))  # shorter words inside found ones
    for rule in rules:
        if rule.require and present.isdisjoint(rule.require):
            continue
        if guard.disabled(rule.name):
            continue
        try:
            matches = list(rule.regex.finditer(view, timeout=guard.timeout))
        except TimeoutError:
            guard.record_timeout(rule.name, doc_id)
            continue
        for m in matches:
            if m.end() == m.start():
                continue
            if rule.scope == "line":
                s, e = _line_bounds(view, m.start(), m.end())
                line_scoped.add((s, e))
            else:
                s, e = m.start(), m.end()
            spans.append(Span(s, e, rule.name))
    if line_keys or run_keys:
        kview = key_view(text)
        for s, e, key in _line_keys(kview, min_chars) if line_keys else ():
            if key in line_keys:
                spans.append(Span(s, e, BOILERPLATE_LINE_RULE))
                line_scoped.add((s, e))
        for s, e, key in _run_keys(kview, min_chars) if run_keys else ():
            if key in run_keys:
                spans.append(Span(s, e, BOILERPLATE_RUN_RULE))
    return _drop_emptied_lines(view, _resolve_overlaps(spans), line_scoped)


def _resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Union overlapping spans; the widest span of a cluster names it (line rules win over inline)."""
    out: list[Span] = []
    widest: list[int] = []
    for sp in sorted(spans, key=lambda s: (s.start, -s.end, s.rule)):
        if out and sp.start < out[-1].end:
            last = out[-1]
            rule = sp.rule if sp.end - sp.start > widest[-1] else last.rule
            widest[-1] = max(widest[-1], sp.end - sp.start)
            out[-1] = Span(last.start, max(last.end, sp.end), rule)
        else:
            out.append(sp)
            widest.append(sp.end - sp.start)
    return out


def _drop_emptied_lines(view: str, spans: list[Span], line_scoped: set[tuple[int, int]]) -> list[Span]:
    """An inline removal that leaves only blanks on its line takes the whole line with it."""
    out: list[Span] = []
    i = 0
    while i < len(spans):
        sp = spans[i]
        if (sp.start, sp.end) in line_scoped:
            out.append(sp)
            i += 1
            continue
        ls, le = _line_bounds(view, sp.start, sp.end)
        j = i
        kept: list[str] = []
        pos = ls
        while j < len(spans) and spans[j].start < le:
            kept.append(view[pos : spans[j].start])
            pos = max(pos, spans[j].end)
            j += 1
        kept.append(view[pos:le])
        if not "".join(kept).strip() and spans[j - 1].end <= le:
            out.append(Span(ls, le, sp.rule))
        else:
            out.extend(spans[i:j])
        i = j
    return out


def remove_watermarks(
    essays: list[Essay], cfg: WatermarkConfig, boilerplate: Sequence[str] = (), guard: RuleGuard | None = None
) -> dict[str, int]:
    """Apply rules + detected boilerplate as edits with stage "watermark"; return counts of chars removed per rule.
    Also bump essay.stats[f"watermark.{rule}"] with removed char counts, and
    essay.stats["watermark.rule_timeout.<rule>"] on the document where a rule timed out.
    Timeouts are counted in ``guard`` (``guard.counters()["rule_timeouts"]``): pass one guard per run."""
    rules = load_rules(cfg.rules_file)
    guard = guard if guard is not None else RuleGuard()
    line_keys = frozenset(k[len(LINE_PREFIX) :] for k in boilerplate if k.startswith(LINE_PREFIX))
    run_keys = frozenset(k[len(RUN_PREFIX) :] for k in boilerplate if k.startswith(RUN_PREFIX))
    removed: dict[str, int] = {}
    for essay in essays:
        before = dict(guard.timeouts)
        spans = find_spans(essay.body.text, rules, line_keys, run_keys, cfg.min_chars, guard, essay.doc_id)
        for name in guard.timeouts.keys() - before.keys():
            essay.bump(f"{STAGE}.rule_timeout.{name}", 1)
        if not spans:
            continue
        essay.body.apply([Replacement(s.start, s.end, "", s.rule) for s in spans], STAGE)
        for s in spans:
            n = s.end - s.start
            removed[s.rule] = removed.get(s.rule, 0) + n
            essay.bump(f"{STAGE}.{s.rule}", n)
    return dict(sorted(removed.items()))


def removed_text(essays: Iterable[Essay]) -> list[tuple[str, str]]:
    """(rule, removed raw text) of every watermark edit, for reports and review."""
    return [(e.rule, e.before) for essay in essays for e in essay.body.edits if e.stage == STAGE]
