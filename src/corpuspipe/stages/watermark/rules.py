"""Watermark rules: the rule model, loading the shipped and a user's TOML file, and the regex guard.

A rule names a known watermark (inline source notes, template tags, bare URLs, site header and
footer lines, breadcrumbs) as a regular expression on the normalized view of the text
(:mod:`.views`).  The shipped rules (``rules/watermarks.toml``) are ours, reviewed and matched
with ``re``; a user's rules file is matched with ``regex`` under a per-document timeout, and a
pattern that obviously backtracks exponentially is refused when the file is read.
"""

from __future__ import annotations

import logging
import re
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import regex
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator

from corpuspipe.stages.watermark.config import WatermarkConfig
from corpuspipe.core.io import read_user_text
from corpuspipe.core.regex_prefilter import line_plan, line_starts, match_lines, match_windows, window_plan

STAGE = "watermark"
BOILERPLATE_LINE_RULE = "boilerplate_line"
BOILERPLATE_RUN_RULE = "boilerplate_run"
BOILERPLATE_BLOCK_RULE = "boilerplate_block"
DETECTOR_RULES = frozenset({BOILERPLATE_LINE_RULE, BOILERPLATE_RUN_RULE, BOILERPLATE_BLOCK_RULE})

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
    # For a shipped unanchored rule whose matches stay inside a line (the inline rules): the same,
    # ``finditer`` over the lines holding a literal (bare_url 0.133 -> 0.075 CPU s on a 14.5 MB slice).
    _window_rx: re.Pattern[str] | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _RULE_NAME.match(v) or v in DETECTOR_RULES:
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
        self._window_rx = None if self._lines_rx is not None else window_plan(self.pattern)
        return self

    def literal_plan(self) -> re.Pattern[str] | None:
        """The literals one of which every match holds, when only the lines holding one need trying."""
        return self._lines_rx if self._lines_rx is not None else self._window_rx

    def finditer(self, view: str, timeout: float):
        return _matcher(self)(view, timeout)


# Texts shorter than this (the splitter's title lines, one line each) are matched as before the
# literal plans: line rules scan for their own literals, inline rules run ``finditer`` on the whole
# text; the one pass for all rules and the per-line windows cost more than they save there
# (20,000 short lines: 0.220 s before them, 0.261 s with them everywhere).
LINE_INDEX_MIN_CHARS = 200


def _matcher(rule: WatermarkRule):
    """The rule's ``finditer(view, timeout, starts=None)`` as a plain closure (no pydantic attribute
    reads per call).  ``starts``: for a rule with a literal plan, the lines holding one of its
    literals (``regex_prefilter.LineIndex`` finds them for all rules in one pass), else it scans."""
    fast, slow = rule._fast, rule._regex
    if fast is None:
        return lambda view, timeout, starts=None: slow.finditer(view, timeout=timeout)
    plan = rule.literal_plan()
    if plan is None:
        return lambda view, timeout, starts=None: fast.finditer(view)
    at = match_lines if rule._lines_rx is not None else match_windows

    def by_lines(view: str, timeout: float, starts: list[int] | None = None):
        if starts is None and at is match_windows and len(view) < LINE_INDEX_MIN_CHARS:
            return fast.finditer(view)
        try:
            return at(fast, view, line_starts(plan, view) if starts is None else starts)
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


