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
from bisect import bisect_right
from pathlib import PurePosixPath
from typing import Any, Iterable, Iterator, Literal, Sequence
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import regex
import xxhash
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator

from corpuspipe.zh.opencc import single_char_t2s
from corpuspipe.zh.outline import boilerplate_heading_re
from corpuspipe.zh.prose import is_genre_prose
from corpuspipe.core.config import WatermarkConfig
from corpuspipe.core.edits import Replacement
from corpuspipe.core.io import atomic_path, read_user_text
from corpuspipe.core.regex_prefilter import finditer_lines, line_plan
from corpuspipe.core.records import Essay, QuarantineEntry, Shard
from corpuspipe.core.stage import Context, CorpusStage

STAGE = "watermark"
BOILERPLATE_LINE_RULE = "boilerplate_line"
BOILERPLATE_RUN_RULE = "boilerplate_run"
BOILERPLATE_BLOCK_RULE = "boilerplate_block"
_DETECTOR_RULES = frozenset({BOILERPLATE_LINE_RULE, BOILERPLATE_RUN_RULE, BOILERPLATE_BLOCK_RULE})
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
    # Shipped rules are ours, reviewed and tested: matched with `re`, 2.1x faster than `regex` over the
    # 12 shipped rules (1.75 vs 3.76 s on a 7 MB shard of the crawl bench, identical spans).  A user's
    # rule keeps `regex` with its per-document timeout.
    _fast: re.Pattern[str] | None = PrivateAttr(default=None)
    # For a shipped single-line `^` rule: the literals one of which every match holds; only the
    # lines holding one are tried (core/regex_prefilter.py: the 9 line rules 45 % -> ~10 % of the stage).
    _lines_rx: re.Pattern[str] | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _RULE_NAME.match(v) or v in (BOILERPLATE_LINE_RULE, BOILERPLATE_RUN_RULE, BOILERPLATE_BLOCK_RULE):
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

    def trusted(self) -> "WatermarkRule":
        """This rule, matched with `re` and no timeout (only for the shipped rules)."""
        self._fast = re.compile(self.pattern, re.MULTILINE)
        self._lines_rx = line_plan(self.pattern)
        return self

    def finditer(self, view: str, timeout: float):
        return _matcher(self)(view, timeout)


def _matcher(rule: WatermarkRule):
    """The rule's ``finditer(view, timeout)`` as a plain closure (no pydantic attribute reads per call)."""
    fast, lines_rx, slow = rule._fast, rule._lines_rx, rule._regex
    if fast is None:
        return lambda view, timeout: slow.finditer(view, timeout=timeout)
    if lines_rx is None:
        return lambda view, timeout: fast.finditer(view)

    def by_lines(view: str, timeout: float):
        try:
            return list(finditer_lines(fast, lines_rx, view))
        except ValueError:  # an empty match: finditer's own rules
            return fast.finditer(view)

    return by_lines


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
    text = read_user_text(path, "rules file", RulesFileError)
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
    rules = {r.name: r.trusted() for r in shipped.rule}
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


def boilerplate_keys(texts: Sequence[str]) -> list[str]:
    """``[boilerplate_key(t) for t in texts]`` with one table lookup for all of them (the view keeps
    every string's length, so the joined view cuts back at the same offsets): the release report
    keys every removed boilerplate line, ~55k on the 100 MB crawl, at ~16 us each one by one."""
    view = key_view("".join(texts))
    out, pos = [], 0
    for t in texts:
        end = pos + len(t)
        out.append(view[pos:end].replace(" ", "").replace("\n", ""))
        pos = end
    return out


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
def essay_site(essay: Essay) -> str:
    """The site an essay came from: its URL's host (JSON Lines), else the top-level folder of its
    file ("." for files at the raw root).  Sites carry their own templates, so they vote apart."""
    return site_of(essay.source_path, essay.url)


def site_of(source_path: str, url: str | None) -> str:
    """:func:`essay_site` from a released row's ``source_path`` and ``url``."""
    if url:
        try:
            host = urlsplit(url.strip()).hostname or ""
        except ValueError:
            host = ""
        if host:
            return host.lower().removeprefix("www.")
    parts = PurePosixPath(source_path).parts
    return parts[0] if len(parts) > 1 else "."


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate line or run of a text: its span, its prefixed key and whether it sits at a page edge."""

    start: int
    end: int
    key: str
    edge: bool


def _nonblank(kview: str) -> list[tuple[int, int, str]]:
    return [(s, e, c) for s, e, c in _lines(kview) if c.strip()]


def edge_flags(kview: str, lines: Sequence[tuple[int, int, str]], cfg: WatermarkConfig) -> list[bool]:
    """Per non-blank line: is it in the header or footer zone (first/last ``edge_lines`` lines, or
    within ``edge_chars`` non-blank characters of either end)?  Site templates live there; the
    body of a report does not (the Wikisource licence block is the last ~15 lines / ~500 chars)."""
    n = len(lines)
    sizes = [len(c.replace(" ", "")) for _, _, c in lines]
    total = sum(sizes)
    out = []
    before = 0
    for i, size in enumerate(sizes):
        after = total - before - size
        out.append(i < cfg.edge_lines or i >= n - cfg.edge_lines or before < cfg.edge_chars or after < cfg.edge_chars)
        before += size
    return out


def candidates(text: str, cfg: WatermarkConfig) -> tuple[list[Candidate], int]:
    """Candidate lines and bracketed runs of one text, with their zone, and the text's identity.

    The identity is what a text votes under: the hash of its longest non-edge line when that line
    has ``identity_min_chars`` or more (a copy of a report with another site's header and footer
    still has the same longest paragraph, so it votes once), else the hash of the whole key text
    (title-only pages of one site differ in their title, so each votes).
    """
    kview = key_view(text)
    lines = _nonblank(kview)
    edges = edge_flags(kview, lines, cfg)
    out: list[Candidate] = []
    longest = ""
    view = normalized_view(text)  # identities keep digits: 正文1 and 正文2 are two texts
    for (s, e, content), edge in zip(lines, edges):
        key = content.replace(" ", "")
        if not edge and len(key) > len(longest):
            longest = "".join(view[s:e].split())
        if len(key) >= cfg.min_chars and not _HEADING.match(key):
            out.append(Candidate(s, e, LINE_PREFIX + key, edge))
    if lines:
        first, last = lines[0][0], lines[-1][1]
        for s, e, key in _run_keys(kview, cfg.min_chars):
            i = bisect_right([ln[0] for ln in lines], s) - 1
            out.append(Candidate(s, e, RUN_PREFIX + key, edges[i] if i >= 0 else s <= first or e >= last))
    basis = longest if len(longest) >= cfg.identity_min_chars else "".join(view.split())
    return out, xxhash.xxh3_64_intdigest(basis.encode("utf-8", "surrogatepass"))


def collect_boilerplate_stats(essays: list[Essay], cfg: WatermarkConfig) -> dict[str, int]:
    """Per shard: distinct texts (identities) per candidate key -- exact copies vote once.

    The stage itself writes (key, site, identity, edge) rows so votes of copies in different shards
    merge in the reduce; this in-memory form is what tests and small callers use."""
    votes: dict[str, set[int]] = {}
    for essay in essays:
        cands, ident = candidates(essay.body.text, cfg)
        for c in cands:
            votes.setdefault(c.key, set()).add(ident)
    return {k: len(v) for k, v in sorted(votes.items())}


def doc_frequency_threshold(n_docs: int, cfg: WatermarkConfig) -> int:
    """A key is boilerplate from this many distinct texts on: an absolute floor and a corpus share."""
    return max(cfg.min_doc_frequency, math.ceil(cfg.min_doc_share * n_docs))


def site_threshold(n_site: int, cfg: WatermarkConfig) -> int | None:
    """Distinct texts of one site a key needs to be that site's boilerplate (None: too small a site)."""
    if n_site < cfg.site_min_docs:
        return None
    return max(cfg.min_doc_frequency, math.ceil(cfg.site_min_share * n_site))


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


def is_protected(key: str) -> bool:
    """A line key that is genre prose (:func:`corpuspipe.zh.prose.is_genre_prose`) is never selected,
    at corpus or site level: in a corpus of the 14 newest reports the report opener
    「现在，我代表国务院，向大会报告政府工作…」 sits on every distinct text, at the page edge, exactly
    where a site header would, so frequency and position cannot tell them apart."""
    return key.startswith(LINE_PREFIX) and is_genre_prose(key[len(LINE_PREFIX):])


def select_boilerplate(doc_freq: dict[str, int], n_docs: int, cfg: WatermarkConfig,
                       added: frozenset[str] = frozenset()) -> list[str]:
    """Corpus level: which normalized keys are boilerplate (thresholds scale with corpus size, allowlist
    and genre prose respected; ``added``: prose keys that copies show a site added). Sorted, deterministic."""
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
        and (k in added or not is_protected(k))
    )


def select_site_boilerplate(site_votes: dict[tuple[str, str], tuple[int, int]], site_docs: dict[str, int],
                            cfg: WatermarkConfig, added: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Site level: keys on most of one site's distinct texts (``site_min_share``), nearly always at a
    page edge (``edge_share``).  ``site_votes[(site, key)] = (texts, texts with it at an edge)``.

    Why both: a crawl site's own footer sits on most of its pages but on ~3 % of the corpus (under
    the corpus share), and position keeps a site that hosts only reports from losing a formula
    that opens many of them... as long as that formula is not on most of them, which it is not
    (the opener 「现在，我代表国务院…」 heads 6 of 88 reports)."""
    if not cfg.detect_boilerplate:
        return {}
    allow_keys = _allowlist_keys(cfg)
    out: dict[str, list[str]] = {}
    for (site, key), (n, n_edge) in sorted(site_votes.items()):
        need = site_threshold(site_docs.get(site, 0), cfg)
        if need is None or n < need or n_edge < cfg.edge_share * n:
            continue
        if len(key) - len(LINE_PREFIX) < cfg.min_chars or is_allowlisted(key, allow_keys, cfg.min_chars):
            continue
        if is_protected(key) and key not in added:
            continue
        out.setdefault(site, []).append(key)
    return out


def added_by_copies(carriers: dict[str, dict[int, set[str]]], ident_sites: dict[int, set[str]]) -> frozenset[str]:
    """Prose keys that copies prove a site added: ``carriers[key][ident]`` = sites where that text
    carries the key, ``ident_sites[ident]`` = every site the text is on.

    Genre prose travels with its text (every copy of a report has its opener); a site's own
    sentence is on that site's copy only.  A key is *added* when at least two texts lack it on
    another of their sites and such texts outnumber those carrying it on every site they are on.
    Without copies there is no evidence, and the key stays protected."""
    out = []
    for key, per_ident in sorted(carriers.items()):
        added = carried = 0
        for ident, sites in per_ident.items():
            everywhere = ident_sites.get(ident, set())
            if len(everywhere) < 2:
                continue
            if everywhere - sites:
                added += 1
            else:
                carried += 1
        if added >= 2 and added > carried:
            out.append(key)
    return frozenset(out)


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
def _prefilter(rules: tuple[WatermarkRule, ...]
               ) -> tuple[re.Pattern[str], dict[str, tuple[str, ...]], tuple[tuple[str, frozenset[str], bool, Any], ...]]:
    """One scan for every rule's required strings, longest first; and per required string, the
    required strings inside it (itself included): a found ``转载自`` also means ``转载`` and ``载``
    were there, though the scan reported only the longest.  Also per rule (name, required strings,
    line scope, its ``finditer``) read once: a pydantic private attribute costs a Python-level
    ``__getattr__`` per access (~8 % of the stage when read per rule and essay)."""
    words = tuple(sorted({w for r in rules for w in r.require}, key=lambda w: (-len(w), w)))
    inside = {p: tuple(w for w in words if w in p) for p in words}
    plan = tuple((r.name, frozenset(r.require), r.scope == "line", _matcher(r)) for r in rules)
    return re.compile("|".join(map(re.escape, words)) if words else r"(?!)"), inside, plan


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
    prefilter, inside, plan = _prefilter(tuple(rules))
    present: set[str] = set()
    for p in set(prefilter.findall(view.lower())):  # lower(): prefilter only
        present.update(inside[p])  # shorter words inside found ones
    for name, require, line_scope, finditer in plan:
        if require and present.isdisjoint(require):
            continue
        if guard.disabled(name):
            continue
        try:
            matches = list(finditer(view, guard.timeout))
        except TimeoutError:
            guard.record_timeout(name, doc_id)
            continue
        for m in matches:
            if m.end() == m.start():
                continue
            if line_scope:
                s, e = _line_bounds(view, m.start(), m.end())
                line_scoped.add((s, e))
            else:
                s, e = m.start(), m.end()
            spans.append(Span(s, e, name))
    if line_keys or run_keys:
        kview = key_view(text)
        for s, e, key in _line_keys(kview, min_chars) if line_keys else ():
            if key in line_keys:
                spans.append(Span(s, e, BOILERPLATE_LINE_RULE))
                line_scoped.add((s, e))
        for s, e, key in _run_keys(kview, min_chars) if run_keys else ():
            if key in run_keys:
                spans.append(Span(s, e, BOILERPLATE_RUN_RULE))
    spans = _drop_emptied_lines(view, _resolve_overlaps(spans), line_scoped)
    return _resolve_overlaps(spans + _block_leftovers(view, spans, min_chars))


_OPENERS = frozenset("《“「『（([")
_CLAUSE_END = frozenset("，。！？；：,.!?;:…")


def _is_fragment(content: str, min_chars: int) -> bool:
    """A link-broken piece of a block: too short to be a candidate and not ending a clause
    (``法律``, ``false``), or punctuation alone (``。``).  A poem's short lines end in ，/。 and stay."""
    bare = content.strip()
    letters = _PUNCT.sub("", bare)
    return len(bare.replace(" ", "")) < min_chars and (not letters or bare[-1] not in _CLAUSE_END)


def _block_leftovers(view: str, spans: list[Span], min_chars: int) -> list[Span]:
    """Short lines (under ``min_chars``: no candidate of their own) left between removed lines, or
    between the last removed line and the end of the text, go with the block.

    Wikisource breaks its licence notice at every link: ``法律`` / ``、`` / ``公有领域`` / ``false``
    stayed at the end of 25 of 26 reports after every long line of the block was removed, and made
    ``truncated`` fire on all of them.  Only in a block of at least two *detected* lines, between
    them or after the last one: a short closing line above a removed footer (``谢谢大家！``) has body
    text above it and stays, and a rule's single header line never takes short lines with it.
    """
    covered = [(s.start, s.end, s.rule) for s in spans]
    lines = [(s, e, c) for s, e, c in _lines(view) if c.strip()]
    seq: list[tuple[str, int, int]] = []  # from the end up: ("anchor"|"removed"|"fragment", start, end)
    j = len(covered) - 1
    for s, e, c in reversed(lines):
        while j >= 0 and covered[j][0] > s:
            j -= 1
        content_end = e - (1 if view[e - 1 : e] == "\n" else 0)
        if j >= 0 and covered[j][0] <= s and covered[j][1] >= content_end:
            seq.append(("anchor" if covered[j][2] in _DETECTOR_RULES else "removed", s, e))
        elif _is_fragment(c, min_chars):
            seq.append(("fragment", s, e))
        elif seq and seq[-1][0] != "fragment" and c.rstrip()[-1:] in _OPENERS:
            seq.append(("anchor", s, e))  # a sentence broken at a link *into* the block: 依据《 / 中华人民共和国…法
        else:
            break
    if sum(kind == "anchor" for kind, _, _ in seq) < 2:
        return []
    top = max(i for i, (kind, _, _) in enumerate(seq) if kind == "anchor")
    out = [Span(s, e, BOILERPLATE_BLOCK_RULE) for i, (kind, s, e) in enumerate(seq)
           if kind == "fragment" and i < top or kind == "anchor" and (s, e) not in {(c[0], c[1]) for c in covered}]
    return sorted(out, key=lambda sp: sp.start)


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


EMPTIED_FLAG = "boilerplate_only"  # quarantined: nothing but boilerplate was left
KEPT_FLAG = "boilerplate_kept"  # the detector would have emptied a long text: kept untouched by it, flagged


def _keys_for(boilerplate: Sequence[str] | dict[str, Any], site: str) -> list[str]:
    if isinstance(boilerplate, dict):
        return [*boilerplate.get("corpus", ()), *(boilerplate.get("sites") or {}).get(site, ())]
    return list(boilerplate)


def _left_chars(text: str, spans: Sequence[Span]) -> int:
    pos, n = 0, 0
    for sp in spans:
        n += len("".join(text[pos : sp.start].split()))
        pos = max(pos, sp.end)
    return n + len("".join(text[pos:].split()))


def remove_watermarks(
    essays: list[Essay], cfg: WatermarkConfig, boilerplate: Sequence[str] | dict[str, Any] = (),
    guard: RuleGuard | None = None,
) -> dict[str, int]:
    """Apply rules + detected boilerplate as edits with stage "watermark"; return counts of chars removed per rule.

    ``boilerplate`` is the reduce's fact (``{"corpus": keys, "sites": {site: keys}}``) or a plain
    list of corpus-level keys.  Also bump essay.stats[f"watermark.{rule}"] with removed char counts,
    and essay.stats["watermark.rule_timeout.<rule>"] on the document where a rule timed out.

    An essay the removals would leave with under ``min_kept_chars`` non-space characters is never
    emptied silently: when the detector's share of what went exceeds ``max_emptied_chars`` (a real
    essay whose body recurs), the detector's spans are dropped and the essay is flagged
    ``boilerplate_kept``; otherwise (a title-only page plus a site line) it is flagged
    ``boilerplate_only`` and the stage quarantines it.
    Timeouts are counted in ``guard`` (``guard.counters()["rule_timeouts"]``): pass one guard per run."""
    rules = load_rules(cfg.rules_file)
    guard = guard if guard is not None else RuleGuard()
    per_site: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    removed: dict[str, int] = {}
    for essay in essays:
        site = essay_site(essay) if isinstance(boilerplate, dict) else ""
        if site not in per_site:
            keys = _keys_for(boilerplate, site)
            per_site[site] = (frozenset(k[len(LINE_PREFIX):] for k in keys if k.startswith(LINE_PREFIX)),
                              frozenset(k[len(RUN_PREFIX):] for k in keys if k.startswith(RUN_PREFIX)))
        line_keys, run_keys = per_site[site]
        before = dict(guard.timeouts)
        text = essay.body.text
        spans = find_spans(text, rules, line_keys, run_keys, cfg.min_chars, guard, essay.doc_id)
        for name in guard.timeouts.keys() - before.keys():
            essay.bump(f"{STAGE}.rule_timeout.{name}", 1)
        if not spans:
            continue
        if _left_chars(text, spans) < cfg.min_kept_chars and _left_chars(text, []) >= cfg.min_kept_chars:
            detected = sum(len("".join(text[sp.start:sp.end].split())) for sp in spans if sp.rule in _DETECTOR_RULES)
            if detected > cfg.max_emptied_chars:
                spans = [sp for sp in spans if sp.rule not in _DETECTOR_RULES]
                essay.add_flag(KEPT_FLAG)
                essay.bump(f"{STAGE}.{KEPT_FLAG}", detected)
            else:
                essay.add_flag(EMPTIED_FLAG)
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


# ----------------------------------------------------------------------------- the stage
_BP_PARTS = 16  # partitions of the boilerplate key space: the reduce holds one at a time
_EXAMPLE_CHARS = 80
_STATS_SCHEMA = pa.schema([("part", pa.int8()), ("key", pa.string()), ("site", pa.string()),
                           ("ident", pa.uint64()), ("edge", pa.bool_()), ("example", pa.string())])


def _write_parquet(table: pa.Table, out: Path, parts: int | None = None) -> None:
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, table.schema, compression="zstd", compression_level=1) as w:
        if parts is None:
            w.write_table(table)
        else:
            for p in range(parts):
                w.write_table(table.filter(pc.equal(table["part"], p)), row_group_size=1 << 30)


def stats_table(essays: Sequence[Essay], cfg: WatermarkConfig) -> tuple[pa.Table, pa.Table]:
    """(votes, documents) of one shard: a row per (essay, key) with the essay's site and identity and
    whether the key sits at a page edge there; a row per essay with its site and identity."""
    rows: dict[tuple[str, str, int], list] = {}
    doc_sites, doc_idents = [], []
    for essay in essays:
        text = essay.body.text
        site = essay_site(essay)
        cands, ident = candidates(text, cfg)
        doc_sites.append(site)
        doc_idents.append(ident)
        for c in cands:
            r = rows.get((c.key, site, ident))
            if r is None:
                rows[(c.key, site, ident)] = [c.edge, text[c.start:c.end].strip()[:_EXAMPLE_CHARS]]
            else:
                r[0] = r[0] or c.edge
    items = sorted(rows.items())
    keys = [k for (k, _, _), _ in items]
    votes = pa.table({
        "part": pa.array([xxhash.xxh3_64_intdigest(k.encode("utf-8", "surrogatepass")) % _BP_PARTS for k in keys],
                         pa.int8()),
        "key": pa.array(keys, pa.string()),
        "site": pa.array([s for (_, s, _), _ in items], pa.string()),
        "ident": pa.array([i for (_, _, i), _ in items], pa.uint64()),
        "edge": pa.array([v[0] for _, v in items], pa.bool_()),
        "example": pa.array([v[1] for _, v in items], pa.string()),
    }, schema=_STATS_SCHEMA)
    docs = pa.table({"site": pa.array(doc_sites, pa.string()), "ident": pa.array(doc_idents, pa.uint64())})
    return votes, docs


def _count_votes(t: pa.Table, by: list[str]) -> pa.Table:
    """Distinct identities per group, and how many of them hold the key at a page edge."""
    per_ident = t.group_by([*by, "ident"]).aggregate([("edge", "any")])
    per_ident = per_ident.append_column("e", pc.cast(per_ident["edge_any"], pa.int32()))
    return per_ident.group_by(by).aggregate([("ident", "count"), ("e", "sum")])


class Watermark(CorpusStage):
    """Rules (shipped + user file) plus boilerplate detected from corpus and site statistics.

    collect: per shard, one row per (essay, candidate key) with the essay's site, its identity (so
    exact copies and re-hosted copies vote once, wherever their shards are) and whether the key sits
    at a page edge, as Parquet with one row group per key-space partition; reduce: per partition,
    distinct identities per key (corpus level) and per (site, key) against their thresholds (memory:
    one partition, never the corpus's millions of distinct lines at once); apply: remove rule
    matches and the selected keys of the corpus and of the essay's own site as edits, and
    quarantine essays left with nothing but boilerplate.
    """

    name = "watermark"
    config_sections = ("watermark",)
    applies = True

    def input_files(self, cfg) -> list[Path]:
        return [Path(cfg.watermark.rules_file)] if cfg.watermark.rules_file else []

    def collect(self, batch: Shard, ctx: Context) -> dict[str, Any]:
        votes, docs = stats_table(batch.essays, ctx.cfg.watermark)
        out = ctx.work / "watermark" / f"{ctx.shard_key}.stats.parquet"
        docs_out = ctx.work / "watermark" / f"{ctx.shard_key}.docs.parquet"
        _write_parquet(votes, out, _BP_PARTS)
        _write_parquet(docs, docs_out)
        return {"stats": str(out), "docs": str(docs_out), "documents": len(batch.essays)}

    def reduce(self, partials: Sequence[Any], ctx: Context) -> dict[str, Any]:
        cfg = ctx.cfg.watermark
        empty: dict[str, Any] = {"corpus": [], "sites": {}, "selected": []}
        if not cfg.detect_boilerplate or not partials:
            return empty
        docs = pa.concat_tables([pq.read_table(p["docs"]) for p in partials])
        if docs.num_rows == 0:
            return empty
        distinct = docs.group_by(["site", "ident"]).aggregate([])
        n_texts = len(pc.unique(distinct["ident"]))
        per_site = distinct.group_by("site").aggregate([("ident", "count")])
        site_docs = dict(zip(per_site["site"].to_pylist(), per_site["ident_count"].to_pylist()))
        threshold = doc_frequency_threshold(n_texts, cfg)
        site_floor = min((t for t in (site_threshold(n, cfg) for n in site_docs.values()) if t), default=None)
        files = [pq.ParquetFile(p["stats"]) for p in partials]
        corpus_freq: dict[str, int] = {}
        site_votes: dict[tuple[str, str], tuple[int, int]] = {}
        examples: dict[str, str] = {}
        carriers: dict[str, dict[int, set[str]]] = {}  # genre-prose keys: sites per text carrying them
        for part in range(_BP_PARTS):
            tables = [f.read_row_group(part) for f in files if f.num_row_groups > part]
            tables = [t for t in tables if t.num_rows]
            if not tables:
                continue
            t = pa.concat_tables(tables)
            whole = _count_votes(t, ["key"])
            hits = whole.filter(pc.greater_equal(whole["ident_count"], threshold))
            corpus_freq.update(zip(hits["key"].to_pylist(), hits["ident_count"].to_pylist()))
            if site_floor is not None:
                by_site = _count_votes(t, ["site", "key"])
                by_site = by_site.filter(pc.greater_equal(by_site["ident_count"], site_floor))
                for site, key, n, ne in zip(by_site["site"].to_pylist(), by_site["key"].to_pylist(),
                                            by_site["ident_count"].to_pylist(), by_site["e_sum"].to_pylist()):
                    site_votes[(site, key)] = (n, ne)
            wanted = set(corpus_freq) | {k for _, k in site_votes}
            prose = sorted(k for k in wanted if k not in carriers and is_protected(k))
            if prose:
                pr = t.filter(pc.is_in(t["key"], pa.array(prose, pa.string())))
                for key, site, ident in zip(pr["key"].to_pylist(), pr["site"].to_pylist(), pr["ident"].to_pylist()):
                    carriers.setdefault(key, {}).setdefault(ident, set()).add(site)
            if wanted:
                ex = t.filter(pc.is_in(t["key"], pa.array(sorted(wanted), pa.string())))
                ex = ex.group_by("key").aggregate([("example", "min")])
                examples.update(zip(ex["key"].to_pylist(), ex["example_min"].to_pylist()))
        added: frozenset[str] = frozenset()
        if carriers:
            ident_sites: dict[int, set[str]] = {}
            for site, ident in zip(distinct["site"].to_pylist(), distinct["ident"].to_pylist()):
                ident_sites.setdefault(ident, set()).add(site)
            added = added_by_copies(carriers, ident_sites)
        if len(carriers) > len(added):
            ctx.count(self.name, "boilerplate_keys_protected_prose", len(carriers) - len(added))
        corpus = select_boilerplate(corpus_freq, n_texts, cfg, added)
        sites = select_site_boilerplate(site_votes, site_docs, cfg, added)
        chosen = set(corpus)
        sites = {s: [k for k in ks if k not in chosen] for s, ks in sorted(sites.items())}
        sites = {s: ks for s, ks in sites.items() if ks}
        selected = [{"scope": "corpus", "site": "", "key": k, "texts": corpus_freq[k], "example": examples.get(k, "")}
                    for k in corpus]
        selected += [{"scope": "site", "site": s, "key": k, "texts": site_votes[(s, k)][0],
                      "example": examples.get(k, "")} for s, ks in sites.items() for k in ks]
        ctx.count(self.name, "boilerplate_keys_selected", len(selected))
        ctx.count(self.name, "boilerplate_keys_selected.corpus", len(corpus))
        ctx.count(self.name, "boilerplate_keys_selected.site", len(selected) - len(corpus))
        ctx.count(self.name, "distinct_texts", n_texts)
        return {"corpus": corpus, "sites": sites, "selected": selected}

    _guard: RuleGuard | None = None

    def apply(self, batch: Shard, ctx: Context) -> Shard:
        # one guard per process: a user rule that times out is disabled for every later shard here
        guard = Watermark._guard = Watermark._guard or RuleGuard()
        before = guard.counters()
        removed = remove_watermarks(batch.essays, ctx.cfg.watermark, ctx.facts.get(self.name) or (), guard=guard)
        after = guard.counters()
        ctx.count_all(self.name, {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)})
        ctx.count_all(self.name, {f"removed.{rule}": n for rule, n in removed.items()})
        kept = []
        for e in batch.essays:
            if EMPTIED_FLAG in e.flags:
                batch.quarantine.append(QuarantineEntry(
                    path=e.source_path, reason=EMPTIED_FLAG,
                    detail=f"essay {e.essay_index}: nothing but site boilerplate once its lines were removed"))
                ctx.count(self.name, "quarantined.boilerplate_only")
            else:
                kept.append(e)
                if KEPT_FLAG in e.flags:
                    ctx.count(self.name, "flagged.boilerplate_kept")
        batch.essays = kept
        return batch
