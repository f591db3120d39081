"""Per-sentence gating of t2s (issue 11): converting only the sentences that need it changes no byte.

The reference is the plain engine (``converter('t2s').convert``) on the whole text, for the
converted text, and the stage run with that whole-text conversion swapped in, for the text, the
edits (offsets, rules) and ``rebuild_raw``.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import paths

from corpuspipe.config import NormalizeConfig
from corpuspipe.core.edits import TrackedText, rebuild_raw
from corpuspipe.core.records import Essay
from corpuspipe.stages import normalize as N
from corpuspipe.zh import opencc as _opencc

DATA = paths.DATA / "normalize"
CFG = NormalizeConfig()
ENGINE = _opencc.converter("t2s")
S2T = _opencc.converter("s2t")


def _read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def _whole_engine(text, cps, fl):  # the stage's conversion replaced by the engine on everything
    return ENGINE.convert(text)


def _run(text: str, whole: bool) -> Essay:
    e = Essay("t.txt", "0" * 64, 0, TrackedText(text), title="反覆討論" if whole is not None else None)
    with pytest.MonkeyPatch.context() as mp:
        if whole:
            mp.setattr(N.t2s, "_t2s_text", _whole_engine)
        counts = N.normalize_essays([e], CFG)
    e.stats["counts"] = counts  # type: ignore[assignment]
    return e


def assert_same_as_whole(text: str) -> Essay:
    """Gated t2s and the gated stage equal whole-text conversion; the edits stay lossless."""
    assert N.t2s_raw(text) == ENGINE.convert(text)
    gated, whole = _run(text, False), _run(text, True)
    assert gated.text == whole.text
    assert gated.body.edits == whole.body.edits
    assert gated.stats == whole.stats and gated.title == whole.title
    assert (gated.script, gated.trad_ratio, gated.flags) == (whole.script, whole.trad_ratio, whole.flags)
    assert rebuild_raw(gated.text, gated.body.edits) == text
    return gated


# -- the cut characters ---------------------------------------------------------------------------


def test_no_dictionary_phrase_holds_a_cut_character():
    """The premise of the gate, checked on the dictionaries in use: a phrase never crosses a cut."""
    assert N.CUT_CHARS == "。！？；!?\n"  # none had to be dropped
    for step in ENGINE._dict_chain_data:
        for _mx, _mn, mapping in step:
            for k, v in mapping.items():
                assert not set(k + v) & set(N.CUT_CHARS), (k, v)
    # the engine splits its input at every cut as well
    assert all(ENGINE.split_chars_re.fullmatch(c) for c in N.CUT_CHARS)


def test_only_sentences_with_a_trigger_are_converted():
    simp = _read("gov_2025_simplified.txt")
    assert N.t2s._t2s_blocks(simp, N.chars._codepoints(simp), N.chars._FLAGS[N.chars._codepoints(simp)]) == []
    i = simp.index("经济")
    text = simp[:i] + "經" + simp[i + 1 :]
    cps = N.chars._codepoints(text)
    blocks = N.t2s._t2s_blocks(text, cps, N.chars._FLAGS[cps])
    assert len(blocks) == 1
    s, e = blocks[0]
    assert s <= i < e and e - s < 200  # one sentence, not the 6,000-character text
    assert not set(text[s:e]) & set(N.CUT_CHARS)
    assert N.t2s_raw(text) == simp


# -- golden files and real reports -------------------------------------------------------------


@pytest.mark.parametrize("name", ["us_constitution_zhs.s2t.txt", "us_constitution_zhs.s2tw.txt", "us_constitution_zhs.s2hk.txt"])
def test_golden_files_gated_equals_whole(name):
    text = _read(name)
    e = assert_same_as_whole(text)
    assert e.stats["normalize.t2s"] > 100


def _inject(text: str, n: int, seed: int) -> str:
    """n stray Traditional characters (s2t of single characters), some next to a cut, one phrase."""
    rng = random.Random(seed)
    chars = list(text)
    cands = [i for i, c in enumerate(chars) if S2T.convert(c) != c]
    near_cut = [i for i in cands if (i > 0 and chars[i - 1] in N.CUT_CHARS) or (i + 1 < len(chars) and chars[i + 1] in N.CUT_CHARS)]
    picks = rng.sample(cands, min(n, len(cands))) + near_cut[:3]
    for i in picks:
        chars[i] = S2T.convert(chars[i])
    out = "".join(chars)
    k = len(out) // 3
    return out[:k] + "反覆研究；著重討論。" + out[k:]  # a sentence whose only trigger is 覆 (phrase-only); a 著 by a cut


@pytest.mark.parametrize("name", ["gov_2025_simplified.txt", "cpc_20_simplified.txt", "gov_1956_fullwidth_digits.txt"])
@pytest.mark.parametrize("n", [1, 5, 40])
def test_real_reports_with_stray_traditional_characters(name, n):
    text = _inject(_read(name), n, seed=n)
    assert text != _read(name)
    assert_same_as_whole(text)


@pytest.mark.parametrize("name", ["gov_1954_traditional.txt", "cpc_3_traditional.txt"])
def test_real_traditional_reports(name):
    assert_same_as_whole(_read(name))


# -- property: random mixes of sentences from both scripts ---------------------------------------


def _sentences() -> list[str]:
    simp = _read("us_constitution_zhs.txt")[:3000] + _read("cpc_20_simplified.txt")[:1500]
    out: list[str] = []
    cur = ""
    for c in simp:
        cur += c
        if c in "。；！？\n":
            if cur.strip():
                out.append(cur.strip("\n"))
            cur = ""
    out = sorted(set(out))[:120]
    extra = ["随着改革的深入，他著有《论持久战》", "意味着", "显著成效", "反覆研究", "覆盖全国", "甚么", "著名学者"]
    return out + extra


_SIMP = _sentences()
_TRAD = [S2T.convert(s) for s in _SIMP] + ["隨著改革的深入，意味著承擔著", "看 著", "乾隆年間"]
_SEP = ["。", "！", "？", "；", "!", "?", "\n", "\n\n", "", "，", " ", "\u3000", "：", "著", "1.", "(", ")"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_SIMP + _TRAD), st.sampled_from(_SEP)), min_size=1, max_size=14))
def test_gated_equals_whole_property(parts):
    assert_same_as_whole("".join(s + sep for s, sep in parts))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="反覆著乾隆於瞭解後來麼覆蓋这个個。！？；!?\n，、 著名显随", max_size=60))
def test_gated_equals_whole_on_dense_triggers(text):
    assert N.t2s_raw(text) == ENGINE.convert(text)


# -- faster scans that must find exactly what the plain regexes find ---------------------------

_WS_ALPHABET = " \t\u3000\u00a0\r\n,;:?!()a中，。"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=_WS_ALPHABET, max_size=40), st.integers(0, 5), st.integers(0, 5))
def test_gap_scan_equals_gap_regex(text, lo, cut):
    hi = max(lo, len(text) - cut)
    assert list(N.lines._gaps(text, lo, hi)) == [(m.start(), m.end()) for m in N.lines._GAP_RE.finditer(text, lo, hi)]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=_WS_ALPHABET, max_size=40))
def test_punctuation_scan_equals_run_regex(text):
    ref = [(m.start(), m.start("run"), m.group("run"), m.end()) for m in N.repairs._PUNCT_RUN_RE.finditer(text)]
    assert list(N.repairs._punct_runs(text)) == ref
