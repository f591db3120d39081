"""Quality signals per document: measured, never acted on.

After dolma's taggers and NeMo-Curator's ``score_document``/``keep_document`` split: this stage
only *measures* (columns in ``documents.parquet``); ``corpuspipe export`` and the user's own SQL
decide.  A filter that removes text inside the pipeline would make a threshold a release
decision, and every change of taste a new major version.

The signals (all in ``[0, 1]`` except ``mean_sentence_chars``), on the clean Simplified text:

* ``han_ratio`` — Han characters / non-whitespace characters.
* ``punct_ratio`` — punctuation (CJK and ASCII) / non-whitespace characters.
* ``dup_line_char_frac`` — share of characters in lines that occur more than once in the
  document (Gopher's duplicate-line character fraction).
* ``top_{2,3,4}gram_frac`` — characters covered by the most frequent character n-gram
  (count × n / characters), Gopher's "top n-gram" on characters because Chinese has no spaces.
* ``dup_{5..10}gram_frac`` — share of characters inside character n-grams that occur more than
  once (RedPajama-V2 ``rps_doc_frac_chars_dupe_{5..10}grams``, on characters), each character
  counted once.
* ``mean_sentence_chars`` — characters per sentence (split at 。！？!?；; and line ends).
* ``boilerplate_frac`` — share of the essay's raw characters removed by the watermark stage
  (rule matches and corpus-detected boilerplate).

n-grams are exact rank-packed integer keys, one argsort per document for every n (see
:func:`_ngram_signals`; the former rolling-hash version with a sort per n is kept as the reference): no
Python object per n-gram.  Measured on the seed essays' clean texts (x40, 4.3 MB) on the shared
2-core machine at load average ~10: 1.0 MB/s with ``np.unique`` and a per-character punctuation
loop, 2.2 MB/s after (lookup table, plain sorts for the top n-grams, cumulative-sum coverage); the profile is then
almost all ``argsort``.  On a 14.5 MB crawl100 slice that was 3.3 MB/s; one exact-key sort per
document for every n, batched across documents (:func:`_ngram_signals_batch`), makes it 11 MB/s.  ``cluster_size`` is already a document column and
``best_containment`` (the largest containment of the document in, or of, another document) is
computed where it is read — by ``export`` and ``show`` from ``duplicates.parquet`` — because it
needs the corpus-level pairs, which the streaming writer does not hold.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Sequence

import numpy as np

from corpuspipe.stages.dedup.kernels import argsort_u64

SIGNALS: dict[str, str] = {
    "han_ratio": "Han characters / non-whitespace characters (0–1)",
    "punct_ratio": "punctuation / non-whitespace characters (0–1)",
    "dup_line_char_frac": "share of characters in lines repeated within the document (0–1)",
    "top_2gram_frac": "characters covered by the most frequent character 2-gram (0–1)",
    "top_3gram_frac": "characters covered by the most frequent character 3-gram (0–1)",
    "top_4gram_frac": "characters covered by the most frequent character 4-gram (0–1)",
    **{f"dup_{n}gram_frac": f"share of characters inside repeated character {n}-grams (0–1)" for n in range(5, 11)},
    "mean_sentence_chars": "mean characters per sentence (split at 。！？!?； and line ends; ≥ 0)",
    "boilerplate_frac": "share of the raw essay removed by the watermark stage (0–1)",
}

_SENT = re.compile(r"[。！？!?；;\n]+")
_BASE = np.uint64(1_000_003)


def _is_han(cp: np.ndarray) -> np.ndarray:
    return ((cp >= 0x4E00) & (cp <= 0x9FFF)) | ((cp >= 0x3400) & (cp <= 0x4DBF)) | \
        ((cp >= 0x20000) & (cp <= 0x2FA1F)) | ((cp >= 0xF900) & (cp <= 0xFAFF))


def _punct_table() -> np.ndarray:
    """Is-punctuation (Unicode category P*) for every BMP code point, built once (~40 ms)."""
    return np.array([unicodedata.category(chr(c)).startswith("P") for c in range(0x10000)], dtype=bool)


_PUNCT: np.ndarray | None = None


def _punct_count(cp: np.ndarray) -> int:
    global _PUNCT
    if _PUNCT is None:
        _PUNCT = _punct_table()
    bmp = cp[cp < 0x10000].astype(np.intp)
    return int(np.count_nonzero(_PUNCT[bmp]))


def _ngram_signals_hashed(cp: np.ndarray) -> dict[str, float]:
    """The reference: nine sorts of rolling 64-bit hashes (kept for tests and for documents with
    more than 65,535 distinct characters, which :func:`_ngram_signals` cannot pack).

    One sort per n: equal neighbours in sorted order are repeated n-grams; the longest run of
    equal values is the top n-gram's count.  A character is covered by a repeated n-gram when a
    repeated n-gram starts within the n positions before it (a cumulative sum, no loop).
    """
    out: dict[str, float] = {}
    L = len(cp)
    h = np.zeros(L, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for n in range(1, 11):
            m = L - n + 1
            if m <= 0:  # shorter than n: the caller's zeros stand
                break
            h = h[:m] * _BASE + cp[n - 1:n - 1 + m]  # h[i] = hash of cp[i:i+n]
            if n < 2:
                continue
            if n <= 4:  # only the longest run is needed: a plain sort (about half an argsort's time)
                srt = np.sort(h)
                bounds = np.flatnonzero(np.concatenate(([True], srt[1:] != srt[:-1], [True])))
                out[f"top_{n}gram_frac"] = float(np.diff(bounds).max()) * n / L
                continue
            order = np.argsort(h)
            srt = h[order]
            eq = srt[1:] == srt[:-1]
            if not eq.any():
                out[f"dup_{n}gram_frac"] = 0.0
                continue
            dup_sorted = np.zeros(m, dtype=bool)
            dup_sorted[1:] |= eq
            dup_sorted[:-1] |= eq
            starts = np.zeros(m, dtype=bool)
            starts[order] = dup_sorted
            c = np.concatenate(([0], np.cumsum(starts)))  # c[i] = repeated starts before position i
            pos = np.arange(L)
            hi = np.minimum(pos + 1, m)
            lo = np.clip(pos - n + 1, 0, m)
            out[f"dup_{n}gram_frac"] = float(np.count_nonzero(c[hi] - c[lo])) / L
    return out


_MAX_N = 10
_SCRATCH = threading.local()


def _rank_table() -> np.ndarray:
    """This thread's scratch table, code point -> rank in the current chunk's alphabet.  One per
    thread: the thread runner computes two shards' signals at once in one process, and a table
    shared between them let one thread's ranks leak into the other's keys (a flaky byte in
    top_4gram_frac between two builds of raw/; the threads test in test_quality).  A lookup is
    ~15 % faster than ranking by ``searchsorted``."""
    table = getattr(_SCRATCH, "rank", None)
    if table is None:
        table = _SCRATCH.rank = np.zeros(0x110000, dtype=np.uint64)
    return table


def _lead_equal(x: np.ndarray, k: int, bits: int) -> np.ndarray:
    """How many leading k-packed digits two keys share, from their XOR ``x`` (one binary search:
    the digits are equal down to the first threshold 2^(bits*j) that ``x`` reaches)."""
    thresholds = np.left_shift(np.uint64(1), np.arange(k, dtype=np.uint64) * np.uint64(bits))
    return k - np.searchsorted(thresholds, x, side="right")


def _ngram_signals(cp: np.ndarray) -> dict[str, float]:
    """Top 2/3/4-gram share and duplicated 5..10-gram fractions of one code-point array: the
    batched kernel (:func:`_ngram_chunk`) on a chunk of one document, or the hashed reference when
    its alphabet is too large to pack 4 characters to a key.

    Characters are ranked within the chunk (1..A, 0 = past a document's end) and k of them packed
    into one exact integer key per position, most significant first.  Sorting positions by the key
    puts them in lexicographic order of their next k characters, so every n <= k groups at once:
    equal n-grams are neighbours whose keys share n leading digits, and the top n-gram's count is
    the longest run of such neighbours.  Only positions whose k-gram repeats can start a longer
    repeated n-gram; those few are ordered by the following characters (a small lexsort), giving
    each one R = the longest repeated n-gram starting there.  Characters covered by repeated
    n-grams are then the union of the intervals [i, i+n) with R[i] >= n: equal-length intervals
    over sorted starts, so the union is a sum of min(gap, n).  Exact keys instead of hashes: no
    collisions, so the values equal the hashed reference's (which collides with probability
    ~L^2/2^64; the tests compare the two).  Measured on a 14.5 MB crawl100 slice (2,109 essays,
    ``bench/profile_pass1.py``): n-gram signals 3.1 -> 1.6 CPU s with one sort per document.
    The sort is a compiled radix argsort (``stages.dedup.kernels.argsort_u64``, the project's one
    compiled module): numpy's argsort was ~40 % of the stage; the slice's 2,106 texts' n-gram
    signals 0.451 -> 0.318 CPU s (best of 5), the same values (equal keys' order never shows:
    equal keys get equal R, and the extension's lexsort ties are equal windows).
    """
    if len(cp) < 2:
        return {}
    res = _ngram_chunk([cp])
    return res[0] if res is not None else _ngram_signals_hashed(cp)


def _pack_at(r: np.ndarray, at: np.ndarray, k: int, bits: int) -> np.ndarray:
    """Key of chars ``at .. at+k-1`` for selected positions (``r`` is padded with zeros)."""
    key = np.zeros(len(at), dtype=np.uint64)
    for j in range(k):
        key <<= np.uint64(bits)
        key |= r[at + j]
    return key


_CHUNK_CHARS = 1 << 15  # characters per batched sort (~15 crawl essays): 2^14..2^16 measured alike, 2^17+ slower


def _ngram_signals_batch(cps: Sequence[np.ndarray]) -> list[dict[str, float]]:
    """:func:`_ngram_signals` of many documents at once: the same keys with the document's index
    in the top bits, so one argsort per chunk of ~128k characters orders every document's
    windows, and every later step is one numpy call per chunk instead of ~70 per document.

    Why: after the one-sort rewrite the sorts were a fifth of the n-gram time and numpy's
    per-call overhead on ~2,000-character arrays the rest.  Windows never reach past their
    document's end (a digit past it is 0, as in the single version), and neighbours in sorted
    order from two documents share no digit (their document bits differ), so nothing crosses a
    document.  A chunk whose alphabet is too large to pack 4 characters beside the document index
    falls back to the per-document function.  Identical results (tests).  Measured (800 crawl100
    essays, best of 4, CPU s, load ~15): hashed reference 1.14, one sort per document 0.42,
    batched 0.30-0.38 for chunks of 2^14..2^17 characters; the quality stage on the 14.5 MB slice
    4.4 -> 1.25 CPU s (3.3 -> 11 MB/s).
    """
    out: list[dict[str, float]] = [{} for _ in cps]
    idx = [i for i, c in enumerate(cps) if len(c) >= 2]
    i = 0
    while i < len(idx):
        j, total = i, 0
        while j < len(idx) and (j == i or total + len(cps[idx[j]]) <= _CHUNK_CHARS):
            total += len(cps[idx[j]])
            j += 1
        chunk = idx[i:j]
        res = _ngram_chunk([cps[d] for d in chunk])
        if res is None:  # too many distinct characters to pack beside the document index
            res = [_ngram_signals(cps[d]) for d in chunk]
        for d, r in zip(chunk, res):
            out[d] = r
        i = j
    return out


def _ngram_chunk(docs: list[np.ndarray]) -> list[dict[str, float]] | None:
    """The n-gram signals of a chunk of documents (see :func:`_ngram_signals`), or None when its
    alphabet is too large to pack 4 characters beside the document index."""
    nd = len(docs)
    Ls = np.array([len(c) for c in docs], dtype=np.int64)
    C = np.concatenate(docs) if nd > 1 else docs[0]
    N = len(C)
    srt = np.sort(C)
    uniq = srt[np.concatenate(([True], srt[1:] != srt[:-1]))]
    A = len(uniq)
    bits = max(1, A.bit_length())
    dbits = max(1, (nd - 1).bit_length())
    k = min(_MAX_N, (64 - dbits) // bits)
    if k < 4:
        return None
    offs = np.concatenate(([0], np.cumsum(Ls)))
    D = np.repeat(np.arange(nd, dtype=np.int64), Ls)
    # ranks laid out with _MAX_N zeros after every document: a window past its document's end
    # reads zeros, so every digit is a plain slice (no per-digit mask)
    at = np.arange(N) + _MAX_N * D  # position of each character in the padded layout
    M = N + _MAX_N * nd
    r = np.zeros(M + _MAX_N, dtype=np.uint64)
    rank = _rank_table()
    rank[uniq] = np.arange(1, A + 1, dtype=np.uint64)
    r[at] = rank[C]
    key_all = r[:M].copy()
    for j in range(1, k):
        key_all <<= np.uint64(bits)
        key_all |= r[j:j + M]
    key = key_all[at] | (D.astype(np.uint64) << np.uint64(k * bits))
    order, sk = argsort_u64(key)  # a compiled radix sort; the order among equal keys never shows
    lcp = _lead_equal(sk[1:] ^ sk[:-1], k, bits)  # 0 between two documents
    Lsl = Ls.tolist()
    res: list[dict[str, float]] = [{} for _ in range(nd)]
    _top_fracs(lcp, offs, Lsl, res)
    best = np.zeros(N, dtype=np.int64)
    best[1:] = lcp
    best[:-1] = np.maximum(best[:-1], lcp)
    R = np.zeros(N, dtype=np.int64)  # per position: the longest repeated n-gram starting there
    R[order] = best
    if k < _MAX_N:
        _extend_repeats(R, r, at, order, sk, lcp, k, bits)
    _dup_fracs(R, D, Lsl, res)
    return res


def _top_fracs(lcp: np.ndarray, offs: np.ndarray, Lsl: list[int], res: list[dict[str, float]]) -> None:
    """``top_{2,3,4}gram_frac`` into ``res``: the longest run of sorted neighbours sharing n
    leading characters is the top n-gram's count (the sorted order holds document d at
    [offs[d], offs[d+1]): its index is the key's top bits)."""
    for n in range(2, 5):
        brk = lcp < n
        rid = np.concatenate(([0], np.cumsum(brk)))  # run id per sorted position
        run_len = np.bincount(rid)
        top = np.maximum.reduceat(run_len, rid[offs[:-1]]).tolist()
        for d in range(len(Lsl)):
            if n <= Lsl[d]:
                res[d][f"top_{n}gram_frac"] = float(top[d]) * n / Lsl[d]


def _extend_repeats(R: np.ndarray, r: np.ndarray, at: np.ndarray, order: np.ndarray, sk: np.ndarray,
                    lcp: np.ndarray, k: int, bits: int) -> None:
    """Raise ``R`` past the k packed characters: only positions whose k-gram repeats can start a
    longer repeated n-gram; those few are ordered by their following characters (a small
    lexsort within each equal-k-gram group) and their common lengths with their neighbours added."""
    full = lcp >= k
    rep = np.zeros(len(R), dtype=bool)
    rep[1:] |= full
    rep[:-1] |= full
    sel = order[rep]
    if not sel.size:
        return
    skr = sk[rep]
    grp = np.cumsum(np.concatenate(([True], skr[1:] != skr[:-1])))
    chunks = []
    first = k
    while first < _MAX_N:
        chunks.append((first, min(k, _MAX_N - first)))
        first += chunks[-1][1]
    sat = at[sel]
    keys = [_pack_at(r, sat + f, kk, bits) for f, kk in chunks]
    sub = np.lexsort((*reversed(keys), grp))
    s_sel, s_grp = sel[sub], grp[sub]
    same = s_grp[1:] == s_grp[:-1]
    ext = np.zeros(len(sub) - 1, dtype=np.int64)
    alive = same.copy()
    for kc, (_f, kk) in zip(keys, chunks):
        kv = kc[sub]
        e = _lead_equal(kv[1:] ^ kv[:-1], kk, bits)
        ext += np.where(alive, e, 0)
        alive &= e == kk
    ext = np.where(same, k + ext, 0)
    bsub = np.zeros(len(sub), dtype=np.int64)
    bsub[1:] = ext
    bsub[:-1] = np.maximum(bsub[:-1], ext)
    R[s_sel] = np.maximum(R[s_sel], bsub)


def _dup_fracs(R: np.ndarray, D: np.ndarray, Lsl: list[int], res: list[dict[str, float]]) -> None:
    """``dup_{5..10}gram_frac`` into ``res``: characters covered by the intervals [i, i+n) with
    R[i] >= n, a sum of min(gap, n) over sorted starts of one document."""
    nd = len(Lsl)
    P = np.flatnonzero(R >= 5)
    RP, DP = R[P], D[P]
    for n in range(5, _MAX_N + 1):
        m = RP >= n
        st, ds = P[m], DP[m]
        contrib = np.full(len(st), n, dtype=np.int64)
        if len(st) > 1:
            same_doc = ds[1:] == ds[:-1]
            contrib[:-1] = np.where(same_doc, np.minimum(np.diff(st), n), n)
        covered = np.bincount(ds, weights=contrib, minlength=nd).astype(np.int64).tolist()
        for d in range(nd):
            if n <= Lsl[d]:
                res[d][f"dup_{n}gram_frac"] = float(covered[d]) / Lsl[d]


def signals(text: str, raw_chars: int = 0, boilerplate_chars: int = 0) -> dict[str, float]:
    """All signals of one clean text (keys and order of :data:`SIGNALS`), rounded to 6 digits so
    the release bytes do not hang on the last float bit of a numpy reduction."""
    return signals_batch([text], [raw_chars], [boilerplate_chars])[0]


def signals_batch(texts: Sequence[str], raw_chars: Sequence[int], boilerplate_chars: Sequence[int]
                  ) -> list[dict[str, float]]:
    """:func:`signals` of many texts; the n-gram signals are computed for all of them at once."""
    cps = [np.frombuffer("".join(text.split()).encode("utf-32-le"), dtype=np.uint32) for text in texts]
    grams = _ngram_signals_batch(cps)
    return [_signals_one(t, cp, g, rc, bc) for t, cp, g, rc, bc in zip(texts, cps, grams, raw_chars, boilerplate_chars)]


def _signals_one(text: str, cp: np.ndarray, grams: dict[str, float], raw_chars: int, boilerplate_chars: int
                 ) -> dict[str, float]:
    n = len(cp)
    out: dict[str, float] = {k: 0.0 for k in SIGNALS}
    if n:
        out["han_ratio"] = float(np.count_nonzero(_is_han(cp))) / n
        out["punct_ratio"] = _punct_count(cp) / n
        out.update(grams)
    lines = [ln.strip() for ln in text.split("\n")]
    seen: dict[str, int] = {}
    for ln in lines:
        if ln:
            seen[ln] = seen.get(ln, 0) + 1
    total = sum(len(ln) for ln in lines)
    if total:
        out["dup_line_char_frac"] = sum(len(ln) * c for ln, c in seen.items() if c > 1) / total
    sentences = [s for s in _SENT.split(text) if s.strip()]
    if sentences:
        out["mean_sentence_chars"] = sum(len("".join(s.split())) for s in sentences) / len(sentences)
    if raw_chars:
        out["boilerplate_frac"] = min(1.0, boilerplate_chars / raw_chars)
    return {k: round(out[k], 6) for k in SIGNALS}
