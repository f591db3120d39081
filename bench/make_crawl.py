"""Generate a crawl-shaped corpus of Chinese essays with known duplicates, at up to gigabytes.

Why: figures measured on seed-shaped data (few bases, many copies) did not hold on a crawl
(mostly distinct essays, many sites, copy families of hundreds, title-only pages; NOTES.md).
This corpus has that shape, is deterministic for a seed, and its truth file says, per essay,
what it is and what it copies, so dedup precision/recall can be computed at any size.

Text: a word-level Markov model (order 2 by default) over jieba tokens of the real text in
../shared/external (gov reports, laws, the OpenCC golden document), so character 5-gram
statistics are those of real official prose while essays are distinct.  The model is trained
once and cached under ``bench/out/markov-*.npz``; it stores for every token position the
training positions sharing its context, so sampling the next token is one random index into a
sorted array and thousands of chains advance per numpy step (no Python loop per token).
Traditional copies render the *same token ids* through a vocabulary converted once with the
project's OpenCC layer (``zh.opencc.converter('s2t')``, word by word): converting whole texts
with the engine runs at 0.22 MB/s here, which would cost ~8 min per GB.

**Real pages** (issue 23; :class:`RealPages`, ``REAL_SHARE`` of the bytes, drawn after the Markov
essays from their own random streams, so every file of the classes above is byte-identical to
what the same seed wrote before): real documents of ``../shared/external`` placed the ways that
broke cleaning -- a long essay paginated with a site advert between its pages (``paginated``),
laws on law sites whose dated boilerplate (publish time, view and page counters) sits beside the
laws' own adoption, promulgation and effective-date lines (``dated``), an essay inside a page 1-2x
its length of other real text (``contained``, its ``source`` the essay's own page, a
``real_original``), and Markdown pages with ``#`` titles and ``##`` headings (``markdown``).
Their truth rows also list the planted non-body lines (``watermarks``) and the dated content
lines that must stay (``content_lines``).

**Dup-heavy** (``--dup-heavy``): every original comes with 80-120 copies (light edits, a dropped
block now and then, a fifth Traditional), so nearly every document and paragraph is in a family of
~100 -- the corpus that stresses the dedup reduce (issue 21: families of ~100 copies, 50 MB).

Usage: ``python bench/make_crawl.py --mb 100 --out bench/out/crawl100 [--seed 1] [--dup-heavy]``
Layout and truth format: bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_need.py, also when loaded by path (tests)
from _need import EXTERNAL, REPO, need_external  # noqa: E402  (../shared/external, or CORPUSPIPE_EXTERNAL)

CACHE_DIR = REPO / "bench" / "out"
GENERATOR_VERSION = 1

# --- knobs (recorded in corpus.json) ------------------------------------------------------------
NEAR_COPY_SHARE = 0.15
TRAD_COPY_SHARE = 0.10
TITLE_ONLY_SHARE = 0.01
NEAR_EDIT_RATES = (0.02, 0.03, 0.05, 0.08)  # share of Han characters edited in a near copy
TRAD_EDIT_RATES = (0.0, 0.0, 0.02)
FAMILY_EDIT_RATES = (0.005, 0.01, 0.02)
FAMILY_SIZE = 500  # copies of one essay (scaled down below FAMILY_FULL_MB)
FAMILY_FULL_MB = 20.0
DUP_HEAVY_SIZES = (80, 120)  # --dup-heavy: copies of every original, uniform in this range
DUP_HEAVY_TRAD_SHARE = 0.2  # of a dup-heavy family's copies: Traditional
DROP_SHARE, ADD_SHARE = 0.30, 0.20  # of near copies: drop / add 1-2 paragraphs
RING = 4000  # copies pick their source among the last RING originals (bounded memory)
BODY_CHARS_MEDIAN, BODY_CHARS_SIGMA = 1800, 0.7  # log-normal essay length
BODY_CHARS_RANGE = (150, 12000)
JSONL_SHARE = 0.01  # of essays, exported as crawler JSON Lines (40 per file)
JSONL_PER_FILE = 40
ENCODINGS = (("gb18030", 0.05), ("utf-16", 0.002), ("utf-8-sig", 0.003))  # of Simplified text pages
BIG5_SHARE = 0.15  # of pages on TW_SITE
YEARS = tuple(range(2012, 2025))

# 17 sites; the last three write Traditional boilerplate and host most Traditional copies.
SITES = (
    ("范文大全", "www.ybask.com"), ("好范文网", "www.haofanwen.com"), ("第一范文网", "www.diyifanwen.com"),
    ("中国范文网", "www.zgfanwen.cn"), ("公文易文秘", "www.gongwenyi.com"), ("文秘114", "www.wenmi114.com"),
    ("学习啦", "www.xuexila.com"), ("范文先生网", "www.fwsir.com"), ("应届毕业生网", "www.yjbys.com"),
    ("出国留学网", "www.liuxue86.com"), ("瑞文网", "www.ruiwen.com"), ("一流范文网", "www.169fanwen.com"),
    ("公文大全网", "www.gwdaquan.com"), ("写作帮", "www.xiezuobang.net"),
    ("台湾范文网", "www.twfanwen.tw"), ("港澳公文库", "www.hkgongwen.hk"), ("繁体范文网", "www.fantifanwen.com"),
)
TRAD_SITES = frozenset(range(14, 17))
TW_SITE = 14  # writes Taiwan-standard (s2tw) text, the only one with Big5 pages
TW_SHARE = 0.3  # of Traditional copies: rendered s2tw and hosted on TW_SITE
HEADERS = (  # page top: breadcrumbs, dates, disclaimers
    "首页 > {name} > {cat} > 正文",
    "当前位置：{name} >> {cat} >> 范文",
    "发布时间：{date}  来源：{name}  作者：佚名",
    "时间：{date} 浏览次数：{n}",
    "导语：本文由{name}网友投稿，仅供参考，不代表本站观点。",
    "{name}（{url}）为您提供优质{cat}，欢迎阅读参考。",
    "[{name}] {date} {cat}频道",
    "温馨提示：{name}所有内容均来自网络，如有侵权请联系删除。",
)
FOOTERS = (
    "本文由{name}整理，转载请注明出处：{url}",
    "更多精彩{cat}请访问{name}：{url}",
    "版权所有 © {name} {url} 保留所有权利",
    "【{name}】{cat}下载：本文共{n}字，欢迎收藏。",
    "上一篇：{cat}汇总  下一篇：{cat}精选",
    "免责声明：本站文章均来自网络，版权归原作者所有。{name}",
    "相关推荐：{cat}范文{n}篇（{url}）",
    "扫码关注{name}公众号，获取更多{cat}。",
)
PROMOS = (
    "【免费下载】{name}全套{cat}模板，点击领取>>",
    ">>>点击查看更多{cat}<<<",
    "（{name}会员可下载Word版）",
    "推荐阅读：{name}精选{cat}合集",
    "★{name}★ 每日更新{cat}",
    "广告：{name}代写{cat}，原创保证",
)
INLINES = (
    "[来源：{name} {url}]", "【来源：{name} {url}】", "[来源:{name} {url}]",
    "（本文来自{name}：{url}）", "[转载请注明：{name} {url}]", "（文章来源：{name}）",
)
CATEGORIES = ("工作总结", "工作报告", "心得体会", "调研报告", "讲话稿", "述职报告", "实施方案", "规章制度")
TITLE_SUFFIXES = ("", "", "工作总结", "心得体会", "调研报告", "的实施意见", "工作报告", "学习体会", "讲话稿")
L1 = "一二三四五六七八九十"
END_PUNCT = "。！？；"

HAN = re.compile(r"[\u4e00-\u9fff]")
LEADING_MARKER = re.compile(r"^\s*(?:[（(][一二三四五六七八九十\d]+[）)]|[一二三四五六七八九十]+[、.．]|\d+[、.．]|第[一二三四五六七八九十百\d]+[条章节])\s*")


# --- the Markov model ---------------------------------------------------------------------------
def training_files(external: Path) -> list[Path]:
    gov = [external / "gov_reports" / n for n in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl")]
    laws = sorted((external / "outline_laws" / "lawrefbook").glob("*.md"))
    return gov + laws + [external / "opencc_golden" / "us_constitution_zhs.txt"]


def training_paragraphs(external: Path) -> list[str]:
    """Simplified paragraphs of >= 20 Han chars from the external corpus (leading markers cut)."""
    from corpuspipe.zh.opencc import traditional_only_chars  # noqa: PLC0415

    trad = traditional_only_chars()
    texts: list[str] = []
    for f in training_files(external):
        if f.suffix == ".jsonl":
            texts.extend(json.loads(ln)["content"] for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip())
        else:
            texts.append(f.read_text(encoding="utf-8"))
    paras: list[str] = []
    for text in texts:
        for ln in text.splitlines():
            ln = ln.strip()
            if not ln or ln.startswith(("#", "<!--", "|")):
                continue
            ln = LEADING_MARKER.sub("", ln).replace(" ", "").replace("\u3000", "")
            han = HAN.findall(ln)
            if len(han) < 20 or sum(c in trad for c in han) > 0.02 * len(han):
                continue  # Traditional reports (1954…) would mix scripts in the model
            paras.append(ln)
    return paras


@dataclass
class Model:
    """Order-k word Markov model as arrays: sampling is a gather, not a dict lookup."""

    vocab: list[str]  # Simplified tokens, sorted; vocab[0] = "\n" (paragraph break)
    vocab_t: list[str]  # the same tokens converted s2t (OpenCC standard: 爲, 衆, 羣 — not in Big5)
    vocab_tw: list[str]  # converted s2tw (Taiwan standard: 為, 眾, 群 — what Big5 pages carry)
    words: np.ndarray  # int32 token ids of the training stream
    by_ctx: np.ndarray  # int64 positions sorted by (context, position)
    grp: np.ndarray  # int32 context group of each position
    start: np.ndarray  # int64 first index into by_ctx per group
    count: np.ndarray  # int64 positions per group
    order: int

    @property
    def para_start_group(self) -> int:
        return int(self.grp[self.order])  # the stream begins with `order` breaks


def train(order: int, external: Path = EXTERNAL, cache_dir: Path = CACHE_DIR) -> Model:
    import jieba  # noqa: PLC0415

    digest = hashlib.sha256(f"v{GENERATOR_VERSION} order{order} jieba{jieba.__version__}".encode())
    for f in training_files(external):  # raw bytes: cheaper than re-reading paragraphs (2.3 s)
        digest.update(f.name.encode("utf-8") + b"\0" + f.read_bytes())
    path = cache_dir / f"markov-{digest.hexdigest()[:16]}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        vocab = json.loads(bytes(z["vocab"]).decode("utf-8"))
        vocab_t = json.loads(bytes(z["vocab_t"]).decode("utf-8"))
        vocab_tw = json.loads(bytes(z["vocab_tw"]).decode("utf-8"))
        return Model(vocab, vocab_t, vocab_tw, z["words"], z["by_ctx"], z["grp"], z["start"], z["count"], order)
    paras = training_paragraphs(external)
    jieba.setLogLevel(60)
    t0 = time.perf_counter()
    toks: list[list[str]] = [jieba.lcut(p, HMM=False) for p in paras]
    vocab = sorted({t for ts in toks for t in ts} | {"\n"})
    assert vocab[0] == "\n"
    index = {t: i for i, t in enumerate(vocab)}
    stream: list[int] = [0] * order
    for ts in toks:
        stream.extend(index[t] for t in ts)
        stream.extend([0] * order)
    words = np.asarray(stream, dtype=np.int32)
    n, v = len(words), len(vocab)
    key = np.zeros(n, dtype=np.int64)
    for j in range(1, order + 1):  # context of position i = words[i-order:i]
        prev = np.zeros(n, dtype=np.int64)
        prev[j:] = words[:-j]
        key = key * v + prev
    key[: order] = -1  # no full context: never sampled from
    by_ctx = np.argsort(key, kind="stable")
    sorted_keys = key[by_ctx]
    uniq, start, count = np.unique(sorted_keys, return_index=True, return_counts=True)
    grp = np.empty(n, dtype=np.int32)
    grp[by_ctx] = np.repeat(np.arange(len(uniq), dtype=np.int32), count)
    from corpuspipe.zh.opencc import converter  # noqa: PLC0415

    vocab_t = [converter("s2t").convert(t) for t in vocab]
    vocab_tw = [converter("s2tw").convert(t) for t in vocab]
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp, words=words, by_ctx=by_ctx, grp=grp, start=start.astype(np.int64), count=count.astype(np.int64),
        vocab=np.frombuffer(json.dumps(vocab, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
        vocab_t=np.frombuffer(json.dumps(vocab_t, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
        vocab_tw=np.frombuffer(json.dumps(vocab_tw, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
    )
    tmp.rename(path)
    print(f"trained order-{order} model: {len(paras)} paragraphs, {n:,} tokens, {v:,} types, "
          f"{time.perf_counter() - t0:.1f} s -> {path.name}", file=sys.stderr)
    return Model(vocab, vocab_t, vocab_tw, words, by_ctx, grp, start.astype(np.int64), count.astype(np.int64), order)


class ParagraphSupply:
    """Markov paragraphs (token id arrays) generated in vectorized batches of many chains."""

    def __init__(self, model: Model, rng: np.random.Generator, chains: int = 2048, steps: int = 800):
        self.m, self.rng, self.chains, self.steps = model, rng, chains, steps
        self.punct_end = np.array([t in END_PUNCT for t in model.vocab], dtype=bool)
        self.is_clause_end = np.array([t in "，。！？；：、" for t in model.vocab], dtype=bool)
        self.lens = np.array([len(t) for t in model.vocab], dtype=np.int64)
        self.buf: list[np.ndarray] = []
        self.pos = 0

    def _batch(self) -> None:
        m, rng = self.m, self.rng
        g0 = m.para_start_group
        pos = m.by_ctx[m.start[g0] + rng.integers(0, m.count[g0], self.chains)]
        out = np.zeros((self.chains, self.steps + 1), dtype=np.int32)  # last column: a break
        last = len(m.words) - 1
        for s in range(self.steps):
            g = m.grp[pos]
            q = m.by_ctx[m.start[g] + (rng.random(self.chains) * m.count[g]).astype(np.int64)]
            out[:, s] = m.words[q]
            pos = np.minimum(q + 1, last)
        flat = out.ravel()
        idx = np.arange(len(flat))
        # index of the last sentence end at or before i: paragraphs are cut after it
        last_end = np.maximum.accumulate(np.where(self.punct_end[flat], idx, -1))
        breaks = np.flatnonzero(flat == 0)
        starts = np.concatenate(([0], breaks[:-1] + 1))
        ends = last_end[np.maximum(breaks - 1, 0)] + 1
        ok = ends - starts >= 4
        self.buf = [flat[a:b] for a, b in zip(starts[ok].tolist(), ends[ok].tolist())]
        self.pos = 0

    def next(self) -> np.ndarray:
        if self.pos >= len(self.buf):
            self._batch()
        p = self.buf[self.pos]
        self.pos += 1
        return p

    def heading(self, max_tokens: int = 8) -> np.ndarray:
        """A heading: the first clause of a fresh paragraph (without its punctuation).

        The rest of that paragraph, when long enough, is handed out next, so headings do not
        cost a paragraph each.
        """
        p = self.next()
        ends = np.flatnonzero(self.is_clause_end[p[: max_tokens + 1]])
        cut = int(ends[0]) if len(ends) and ends[0] >= 2 else min(max_tokens, len(p) - 1)
        cut = max(cut, 1)
        rest = p[cut + 1 :]
        if len(rest) >= 8:
            self.pos -= 1
            self.buf[self.pos] = rest
        return p[:cut]


# --- essays -------------------------------------------------------------------------------------
@dataclass
class Essay:
    """Blocks are (marker, token ids); extra blocks (added paragraphs) render the same way."""

    eid: str
    title_tokens: np.ndarray
    title_suffix: str
    blocks: list[tuple[str, np.ndarray]] = field(default_factory=list)


def make_essay(eid: str, supply: ParagraphSupply, r: random.Random, target: int) -> Essay:
    """Title, an optional preamble, then 一、 sections holding paragraphs or （一）/1. subsections."""
    e = Essay(eid, supply.heading(6), r.choice(TITLE_SUFFIXES))
    chars = 0

    def para(marker: str = "") -> None:
        nonlocal chars
        p = supply.next()
        e.blocks.append((marker, p))
        chars += int(supply.lens[p].sum())

    if r.random() < 0.15:  # no outline at all
        while chars < target:
            para()
        return e
    if r.random() < 0.7:
        para()  # preamble
    i = 0
    while chars < target and i < len(L1):
        e.blocks.append((L1[i] + "、", supply.heading()))
        style = r.random()
        if style < 0.5:
            for _ in range(r.randint(1, 3)):
                para()
        else:
            sub = "（{}）" if style < 0.8 else "{}."
            for k in range(r.randint(2, 4)):
                label = L1[k] if sub.startswith("（") else str(k + 1)
                if r.random() < 0.5:
                    e.blocks.append((sub.format(label), supply.heading()))
                    para()
                else:  # run-in heading: marker then the paragraph
                    para(sub.format(label))
        i += 1
    return e


def render_lines(e: Essay, vocab: list[str], suffix: str, blocks=None) -> tuple[str, list[str]]:
    get = vocab.__getitem__
    title = "".join(map(get, e.title_tokens.tolist())) + suffix
    lines = [m + "".join(map(get, toks.tolist())) for m, toks in (blocks if blocks is not None else e.blocks)]
    return title, lines


def edit_text(text: str, rate: float, rng: np.random.Generator) -> str:
    """Edit ``rate`` of the Han characters: 60% substitute, 20% insert, 20% delete.

    Replacement characters are drawn from the same text, so the script and character
    distribution stay those of the document.  numpy over code points: no loop per character.
    """
    if rate <= 0:
        return text
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).copy()
    han = np.flatnonzero((cps >= 0x4E00) & (cps <= 0x9FFF))
    k = int(round(rate * len(han)))
    if k == 0:
        return text
    where = np.sort(rng.choice(han, size=k, replace=False))
    op = rng.random(k)
    repl = cps[han[rng.integers(0, len(han), k)]]
    sub = where[op < 0.6]
    cps[sub] = repl[op < 0.6]
    ins_at = where[(op >= 0.6) & (op < 0.8)]
    ins_val = repl[(op >= 0.6) & (op < 0.8)]
    keep = np.ones(len(cps), dtype=bool)
    keep[where[op >= 0.8]] = False
    ins_at_kept = np.cumsum(keep)[ins_at] - keep[ins_at]  # index in the kept array
    out = np.insert(cps[keep], ins_at_kept, ins_val)
    return out.astype("<u4").tobytes().decode("utf-32-le")


# --- pages --------------------------------------------------------------------------------------
class Site:
    def __init__(self, i: int, conv):
        name, url = SITES[i]
        self.i, self.trad = i, i in TRAD_SITES
        self.dir = url.split(".")[1]
        cat = CATEGORIES[i % len(CATEGORIES)]
        fill = dict(name=name, url=url, cat=cat, date="{date}", n="{n}")
        pick = lambda seq, k: [seq[(i * 5 + j * 3) % len(seq)] for j in range(k)]  # noqa: E731
        self.headers = [t.format(**fill) for t in pick(HEADERS, 1 + i % 3)]
        self.footers = [t.format(**fill) for t in pick(FOOTERS, 1 + (i + 1) % 3)]
        self.promo = PROMOS[i % len(PROMOS)].format(**fill)
        self.inline = INLINES[i % len(INLINES)].format(**fill)
        self.header_before_title = i % 2 == 0
        if self.trad:
            conv = conv.convert
            self.headers = [conv(h) for h in self.headers]
            self.footers = [conv(f) for f in self.footers]
            self.promo, self.inline = conv(self.promo), conv(self.inline)

    def page(self, title: str, lines: list[str], date: str, r: random.Random) -> tuple[str, str]:
        """(full page text, body for a JSON export) with this site's boilerplate placed on it."""
        n = str(r.randint(100, 99999))
        body = list(lines)
        if body and r.random() < 0.5:  # inline source marks after a sentence
            for _ in range(r.randint(1, 2)):
                j = r.randrange(len(body))
                cut = [m.end() for m in re.finditer("[。！？]", body[j])]
                at = r.choice(cut) if cut else len(body[j])
                body[j] = body[j][:at] + self.inline + body[j][at:]
        export = "\n".join(body)
        if len(body) > 3 and r.random() < 0.4:
            body.insert(r.randrange(1, len(body)), self.promo)
        heads = [h.format(date=date, n=n) for h in self.headers]
        foots = [f.format(date=date, n=n) for f in self.footers]
        top = heads + [title] if self.header_before_title else [title] + heads
        return "\n".join(top + body + foots) + "\n", export


# --- real pages (issue 23) ------------------------------------------------------------------------
REAL_SHARE = 0.02  # of the target bytes: the four classes of real pages together
REAL_CLASS_SHARES = (("paginated", 0.35), ("dated", 0.25), ("contained", 0.25), ("markdown", 0.15))
REAL_MIN = {"paginated": 4, "dated": 5, "contained": 2, "markdown": 2}  # pages of each class at least
SEGMENT_CHARS = (1500, 4500)  # a real document is cut into excerpts of this many characters
# Their own sites (SITES stays as it was: its choices drive the Markov pages above).
REAL_SITES = (
    ("精品范文网", "www.jpfanwen.com"), ("范文之家", "www.fanwenzhijia.com"), ("公文在线", "www.gongwenzx.com"),
    ("法律法规网", "www.falvfagui.com"), ("法规文库", "www.faguiwenku.cn"),
    ("资料中心", "www.ziliaozx.com"), ("文档仓库", "www.wendangku.net"), ("知识笔记", "www.zhishibiji.net"),
)
PAGINATING, LAW_SITES, CONTAINING, MARKDOWN_SITE = (0, 1, 2), (3, 4), 5, 7  # containers: CONTAINING + 1
# An advert between the pages of one essay: a site reference and/or an invitation to come back.
ADVERT_A = ("好文章尽在{name}", "更多精彩内容尽在{name}", "海量范文就上{name}", "想看更多好文章就来{name}",
            "精彩范文尽在{name}，网址{url}")
ADVERT_B = ("记得常来看看哦", "欢迎常来", "记得收藏本站哦", "喜欢就收藏我们吧", "每天都有更新")
ADVERT_C = ("{name}与您同行", "{name}陪你写好每一篇", "{name}伴您左右")
# Dated boilerplate: the digits change on every page (publish time, views, comments, page counters).
DATED_HEADERS = ("发布时间：{date}  浏览：{n}次", "{date} {hh}:{mm}  来源：{name}", "更新时间：{cdate}  阅读：{n}")
DATED_FOOTERS = ("第1页 共{k}页", "本文已被浏览{n}次", "阅读：{n}  评论：{m}")
_WIKI_TAIL = ("本作品", "这部作品", "Public domain")
_L1_HEADING = re.compile(r"^[一二三四五六七八九十]+、\S{2,30}$")
_OPENING = re.compile(r"^(?:各位代表|同志们|各位委员)|^(?:19|20)\d{2}年\d{1,2}月\d{1,2}日")


@dataclass
class RealDoc:
    ref: str  # where the text is from, relative to ../shared/external
    title: str
    paragraphs: list[str]
    date_lines: list[str] = field(default_factory=list)  # a law's adoption / promulgation / effective lines


def real_documents(external: Path) -> tuple[list[RealDoc], list[RealDoc]]:
    """(reports, laws) in Simplified script: the government work reports (not the 20 resolutions on
    them: one template family, near-duplicates of each other), the CPC congress reports (not the
    Traditional ones), the laws with their date lines apart.  Wikisource's licence tail is cut."""
    from corpuspipe.zh.opencc import traditional_only_chars  # noqa: PLC0415

    trad = traditional_only_chars()
    reports: list[RealDoc] = []
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        for i, ln in enumerate((external / "gov_reports" / name).read_text(encoding="utf-8").splitlines()):
            row = json.loads(ln)
            text = row["content"]
            cut = [text.find(m) for m in _WIKI_TAIL if m in text]
            text = text[: min(cut)] if cut else text
            han = HAN.findall(text)
            if "决议" in row["title"] or len(text) < 3000 or sum(c in trad for c in han) > 0.01 * len(han):
                continue
            paras = [p.strip() for p in text.split("\n") if p.strip()]
            reports.append(RealDoc(f"gov_reports/{name}#{i}", re.sub(r"\s*\(.*\)$", "", row["title"]), paras))
    laws: list[RealDoc] = []
    for path in sorted((external / "outline_laws" / "lawrefbook").glob("*.md")):
        lines = path.read_text(encoding="utf-8").split("\n")
        info = lines.index("<!-- INFO END -->") if "<!-- INFO END -->" in lines else 0
        dates = [ln.strip() for ln in lines[1:info] if ln.strip()]
        paras = [re.sub(r"^#+\s*", "", ln).strip() for ln in lines[info + 1 :] if ln.strip()]
        laws.append(RealDoc(f"outline_laws/lawrefbook/{path.name}", lines[0].lstrip("#").strip(), paras, dates))
    return reports, laws


def segments(doc: RealDoc, r: random.Random) -> list[list[str]]:
    """The document cut at paragraph ends into excerpts of SEGMENT_CHARS (the last may be shorter)."""
    out: list[list[str]] = []
    cur: list[str] = []
    want = r.randint(*SEGMENT_CHARS)
    for p in doc.paragraphs:
        cur.append(p)
        if sum(map(len, cur)) >= want:
            out.append(cur)
            cur, want = [], r.randint(*SEGMENT_CHARS)
    if cur and (sum(map(len, cur)) >= 600 or not out):
        out.append(cur)
    return out


class RealPages:
    """The real-text classes of issue 23, written after the Markov pages with their own random streams.

    Every real document is used by one class only (its excerpts never overlap), so the truth's copy
    relations stay exact: the only planted relation is ``contained`` -> its ``real_original``."""

    def __init__(self, external: Path, seed: int, budget: int, emit_page) -> None:
        self.r = random.Random(seed * 1_000_003 + 23)
        self.budget = budget
        self.emit_page = emit_page  # (kind, site index, title, text, truth extras, ext) -> essay_id
        reports, laws = real_documents(external)
        self.r.shuffle(reports)
        self.r.shuffle(laws)
        self.laws = laws
        # excerpts of reports for the paginated / contained / markdown classes; laws past the
        # dated class's share feed the paginated class too
        self.pool = [(d, k, seg) for d in reports for k, seg in enumerate(segments(d, self.r))]
        self.r.shuffle(self.pool)
        self.sites = [self._site(i) for i in range(len(REAL_SITES))]

    def _site(self, i: int) -> dict:
        name, url = REAL_SITES[i]
        fill = dict(name=name, url=url, cat="范文", date="{date}", n="{n}")
        heads = [HEADERS[(i * 3 + j) % len(HEADERS)].format(**fill) for j in range(1 + i % 2)]
        foots = [FOOTERS[(i * 5 + j) % len(FOOTERS)].format(**fill) for j in range(1 + (i + 1) % 2)]
        if i % 3 == 2:  # a slogan in the site's own words: no rule and no advert shape knows it
            advert = ADVERT_C[i % len(ADVERT_C)].format(name=name)
        else:
            advert = ADVERT_A[i % len(ADVERT_A)].format(name=name, url=url) + "，" + ADVERT_B[i % len(ADVERT_B)]
        return dict(name=name, url=url, heads=heads, foots=foots, advert=advert,
                    footer_advert=i % 2 == 0,  # the advert also closes every page (the detector can see it)
                    before_title=i % 2 == 1)

    def _date(self) -> str:
        return f"{self.r.choice(YEARS)}-{self.r.randint(1, 12):02d}-{self.r.randint(1, 28):02d}"

    def _frame(self, site: dict) -> tuple[list[str], list[str]]:
        date, n = self._date(), str(self.r.randint(100, 99999))
        return [h.format(date=date, n=n) for h in site["heads"]], [f.format(date=date, n=n) for f in site["foots"]]

    def _page(self, site: dict, title: str, body: list[str], gap: str) -> tuple[str, list[str]]:
        heads, foots = self._frame(site)
        top = heads + [title] if site["before_title"] else [title] + heads
        return gap.join(top + body + foots) + "\n", heads + foots

    def run(self) -> None:
        spent = {k: 0 for k, _ in REAL_CLASS_SHARES}
        made = {k: 0 for k, _ in REAL_CLASS_SHARES}
        share = dict(REAL_CLASS_SHARES)
        makers = {"paginated": self.paginated, "dated": self.dated, "contained": self.contained,
                  "markdown": self.markdown}
        progress = True
        while progress:
            progress = False
            for kind, _ in REAL_CLASS_SHARES:
                if spent[kind] >= share[kind] * self.budget and made[kind] >= REAL_MIN[kind]:
                    continue
                n = makers[kind]()
                if n:
                    spent[kind] += n
                    made[kind] += 1
                    progress = True

    def _take(self, min_chars: int = 0):
        for j, (doc, k, seg) in enumerate(self.pool):
            if sum(map(len, seg)) >= min_chars:
                return self.pool.pop(j)
        return None

    def paginated(self) -> int:
        """A real excerpt in 2-4 pages with the site's advert between them; half the cuts, where the
        text allows, fall right before a paragraph that opens like a document (各位代表！, a date)."""
        got = self._take(1800)
        if got is None:
            return 0
        doc, k, seg = got
        site_i = self.r.choice(PAGINATING)
        site = self.sites[site_i]
        pages = min(self.r.randint(2, 4), len(seg))
        if pages < 2:
            return 1  # one long paragraph: nothing to paginate (the excerpt is dropped)
        openers = [j for j in range(1, len(seg)) if _OPENING.match(seg[j])]
        cuts: set[int] = set()
        while len(cuts) < pages - 1:
            if openers and self.r.random() < 0.5:
                cuts.add(self.r.choice(openers))
            else:
                cuts.add(self.r.randrange(1, len(seg)))
        body: list[str] = []
        for j, para in enumerate(seg):
            if j in cuts:
                body.append(site["advert"])
            body.append(para)
        ads = [site["advert"]] * len(cuts)
        if site["footer_advert"]:
            body.append(site["advert"])
            ads.append(site["advert"])
        title = doc.title if k == 0 else f"{doc.title}（节选{k + 1}）"
        text, frame = self._page(site, title, body, self.r.choice(("\n", "\n\n")))
        self.emit_page("paginated", site_i, title, text, dict(watermarks=frame + ads, pages=pages, real=doc.ref,
                                                              chars=sum(map(len, seg))), "txt")
        return len(text.encode("utf-8"))

    def dated(self) -> int:
        """A law on a law site: dated boilerplate (publish time, views, page counters) above and below
        the law's own adoption, promulgation and effective-date lines."""
        if not self.laws:
            return 0
        law = self.laws.pop()
        if not law.date_lines:
            return 1
        site_i = self.r.choice(LAW_SITES)
        name = REAL_SITES[site_i][0]
        seg = segments(law, self.r)[0]
        date = self._date()
        fill = dict(date=date, cdate=f"{date[:4]}年{date[5:7]}月{date[8:]}日", hh=f"{self.r.randint(0, 23):02d}",
                    mm=f"{self.r.randint(0, 59):02d}", n=self.r.randint(100, 99999), m=self.r.randint(0, 300),
                    k=self.r.randint(1, 9), name=name)
        heads = [DATED_HEADERS[(site_i + j) % len(DATED_HEADERS)].format(**fill) for j in range(1 + site_i % 2)]
        foots = [DATED_FOOTERS[(site_i + j) % len(DATED_FOOTERS)].format(**fill) for j in range(2)]
        top = heads + [law.title] if site_i % 2 else [law.title] + heads
        text = "\n".join(top + law.date_lines + seg + foots) + "\n"
        self.emit_page("dated", site_i, law.title, text, dict(
            watermarks=heads + foots, content_lines=list(law.date_lines), real=law.ref,
            chars=sum(map(len, seg)) + sum(map(len, law.date_lines))), "txt")
        return len(text.encode("utf-8"))

    def contained(self) -> int:
        """An excerpt released as its own page (``real_original``), and a page that holds it inside
        1-2x its length of another document's text (``contained``: before, after or around it)."""
        got = self._take(1200)
        if got is None:
            return 0
        doc, k, seg = got
        size = sum(map(len, seg))
        title = doc.title if k == 0 else f"{doc.title}（节选{k + 1}）"
        site = self.sites[CONTAINING]
        text, frame = self._page(site, title, list(seg), "\n")
        orig = self.emit_page("real_original", CONTAINING, title, text, dict(watermarks=frame, real=doc.ref,
                                                                             chars=size), "txt")
        want = size * self.r.uniform(1.0, 2.0)
        other: list[str] = []
        host_title = None
        while sum(map(len, other)) < want:
            more = self._take()
            if more is None:
                break
            if host_title is None:
                host_title = more[0].title if more[1] == 0 else f"{more[0].title}（节选{more[1] + 1}）"
            paras = list(more[2])
            while paras and (len(paras[0]) < 40 or "。" not in paras[0]):
                paras.pop(0)  # a report's own title block (政府工作报告 / ——… / 各位代表：) opens no page here
            other.extend(paras)
        if host_title is None:
            return len(text.encode("utf-8"))
        filler, chars = [], 0
        for para in other:
            if chars >= want:
                break
            filler.append(para)
            chars += len(para)
        at = self.r.choice((0, len(filler), self.r.randrange(len(filler) + 1)))
        body = filler[:at] + list(seg) + filler[at:]
        page, frame2 = self._page(self.sites[CONTAINING + 1], host_title, body, "\n")
        self.emit_page("contained", CONTAINING + 1, host_title, page, dict(
            source=orig, watermarks=frame2, real=doc.ref, chars=size + chars, contained_chars=size), "txt")
        return len(text.encode("utf-8")) + len(page.encode("utf-8"))

    def markdown(self) -> int:
        """A real excerpt saved as Markdown: ``# title``, outline headings as ``## 一、…``."""
        got = self._take(1000)
        if got is None:
            return 0
        doc, k, seg = got
        title = doc.title if k == 0 else f"{doc.title}（节选{k + 1}）"
        body = [f"## {p}" if _L1_HEADING.match(p) else p for p in seg]
        text = f"# {title}\n\n" + "\n\n".join(body) + "\n"
        self.emit_page("markdown", MARKDOWN_SITE, title, text, dict(watermarks=[], real=doc.ref,
                                                                      chars=sum(map(len, seg))), "md")
        return len(text.encode("utf-8"))


@dataclass
class Stats:
    files: int = 0
    essays: int = 0
    bytes: int = 0
    kinds: dict = field(default_factory=dict)
    encodings: dict = field(default_factory=dict)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=100.0, help="size of the raw files, MB = 10^6 bytes")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--order", type=int, default=2, choices=(2, 3))
    ap.add_argument("--real-share", type=float, default=REAL_SHARE,
                    help="bytes of the real-text pages (issue 23 classes) as a share of --mb")
    ap.add_argument("--dup-heavy", action="store_true",
                    help="every original comes with a family of %d-%d copies (near, 1/5 Traditional) "
                         "instead of the crawl's mix" % DUP_HEAVY_SIZES)
    a = ap.parse_args(argv)
    need_external()
    if a.out.exists() and any(a.out.iterdir()) and not ((a.out / "truth.jsonl").exists() or (a.out / "raw").is_dir()):
        print(f"error: --out {a.out} exists and is not a corpus made by this script; not deleting it", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    model = train(a.order)
    t_model = time.perf_counter() - t0
    from corpuspipe.zh.opencc import converter  # noqa: PLC0415

    s2t = converter("s2t")
    r = random.Random(a.seed)
    rng = np.random.Generator(np.random.PCG64(a.seed))
    supply = ParagraphSupply(model, rng)
    suffix_t = {s: s2t.convert(s) for s in TITLE_SUFFIXES}
    suffix_tw = {s: converter("s2tw").convert(s) for s in TITLE_SUFFIXES}
    sites = [Site(i, converter("s2tw" if i == TW_SITE else "s2t")) for i in range(len(SITES))]
    simp_sites = [s for s in sites if not s.trad]
    trad_sites = [s for s in sites if s.trad and s.i != TW_SITE]
    made_dirs: set[Path] = set()

    if a.out.exists():
        shutil.rmtree(a.out)
    raw = a.out / "raw"
    raw.mkdir(parents=True)
    target = int(a.mb * 1e6)
    family_n = FAMILY_SIZE if a.mb >= FAMILY_FULL_MB else max(10, round(FAMILY_SIZE * a.mb / FAMILY_FULL_MB))
    st = Stats()
    truth: list[dict] = []
    ring: list[tuple[Essay, str, list[str]]] = []  # (essay, title, lines) of recent originals
    jsonl_buf: dict[int, list[tuple[dict, dict]]] = {}
    pending: dict[int, int] = {}  # approximate bytes of JSON Lines not yet written, per site
    used_names: set[str] = set()

    def new_path(site: Site, date: str, ext: str) -> str:
        while True:
            name = f"{site.dir}/{date[:4]}/{date[5:7]}/{r.getrandbits(48):012x}.{ext}"
            if name not in used_names:
                used_names.add(name)
                return name

    def write(rel: str, data: bytes, encoding: str) -> None:
        p = raw / rel
        if p.parent not in made_dirs:
            p.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(p.parent)
        p.write_bytes(data)
        st.files += 1
        st.bytes += len(data)
        st.encodings[encoding] = st.encodings.get(encoding, 0) + 1

    def flush_jsonl(site_i: int) -> None:
        recs = jsonl_buf.pop(site_i, [])
        pending.pop(site_i, None)
        if not recs:
            return
        site = sites[site_i]
        rel = new_path(site, recs[0][0]["crawl_time"][:10], "jsonl")
        lines = []
        for k, (rec, row) in enumerate(recs):
            lines.append(json.dumps(rec, ensure_ascii=False, sort_keys=True))
            row.update(path=rel, line=k, encoding="utf-8")
            truth.append(row)
        write(rel, ("\n".join(lines) + "\n").encode("utf-8"), "jsonl")

    def emit(kind: str, eid: str, source: str | None, title: str, lines: list[str], script: str = "simplified",
             edit_rate: float = 0.0, dropped: int = 0, added: int = 0, chars: int | None = None) -> None:
        trad = script != "simplified"
        if script == "traditional_tw":
            site = sites[TW_SITE]
        else:
            site = r.choice(trad_sites if trad and r.random() < 0.7 else simp_sites)
        y, mo, d = r.choice(YEARS), r.randint(1, 12), r.randint(1, 28)
        date = f"{y}-{mo:02d}-{d:02d}"
        text, export = site.page(title, lines, date, r)
        row = dict(essay_id=eid, path="", line=None, kind=kind, source=source, site=SITES[site.i][1],
                   script=script,
                   chars=sum(len(ln) for ln in lines) if chars is None else chars,
                   edit_rate=edit_rate, dropped=dropped, added=added, title=title, encoding="")
        st.essays += 1
        st.kinds[kind] = st.kinds.get(kind, 0) + 1
        if kind != "title_only" and r.random() < JSONL_SHARE:
            url = f"https://{SITES[site.i][1]}/{date[:4]}/{r.getrandbits(32):08x}.html"
            rec = {"crawl_time": f"{date}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z", "text": export,
                   "title": title, "url": url}
            jsonl_buf.setdefault(site.i, []).append((rec, row))
            pending[site.i] = pending.get(site.i, 0) + len(export.encode("utf-8")) + 200
            if len(jsonl_buf[site.i]) >= JSONL_PER_FILE:
                flush_jsonl(site.i)
            return
        enc = "utf-8"
        if site.i == TW_SITE and r.random() < BIG5_SHARE:
            enc = "big5"
        elif not trad:
            u = r.random()
            for name, share in ENCODINGS:
                if u < share:
                    enc = name
                    break
                u -= share
        try:
            data = text.encode(enc)
        except UnicodeEncodeError:
            enc, data = "utf-8", text.encode("utf-8")
        rel = new_path(site, date, "txt")
        row.update(path=rel, encoding=enc)
        truth.append(row)
        write(rel, data, enc)

    def eid_next() -> str:
        return f"e{st.essays:07d}"

    def trad_copy(src) -> tuple[str, list[str], str, float]:
        """A Traditional copy of ``src`` (title, lines, script, edit rate): s2tw for the Taiwan site
        (Big5), else s2t; a third of them edited (draws from ``r`` and ``rng`` in this order)."""
        tw = r.random() < TW_SHARE
        vocab, suffixes = (model.vocab_tw, suffix_tw) if tw else (model.vocab_t, suffix_t)
        title, lines = render_lines(src, vocab, suffixes[src.title_suffix])
        rate = r.choice(TRAD_EDIT_RATES)
        if rate:
            lines = edit_text("\n".join(lines), rate, rng).split("\n")
        return title, lines, "traditional_tw" if tw else "traditional", rate

    def body_target() -> int:
        x = int(r.lognormvariate(np.log(BODY_CHARS_MEDIAN), BODY_CHARS_SIGMA))
        return min(max(x, BODY_CHARS_RANGE[0]), BODY_CHARS_RANGE[1])

    # the family: one ~1,200-char essay and its lightly edited copies
    root_id = eid_next()
    root = make_essay(root_id, supply, r, 1200)
    title, lines = render_lines(root, model.vocab, root.title_suffix)
    emit("original", root_id, None, title, lines)
    body = "\n".join(lines)
    for _ in range(family_n):
        rate = r.choice(FAMILY_EDIT_RATES)
        edited = edit_text(body, rate, rng).split("\n")
        emit("family", eid_next(), root_id, title, edited, edit_rate=rate)

    while a.dup_heavy and st.bytes + sum(pending.values()) < target:
        # families of ~100 copies: each copy a light edit (some dropped/added blocks) or a Traditional rendering
        eid = eid_next()
        e = make_essay(eid, supply, r, body_target())
        title, lines = render_lines(e, model.vocab, e.title_suffix)
        emit("original", eid, None, title, lines)
        for _ in range(r.randint(*DUP_HEAVY_SIZES)):
            if r.random() < DUP_HEAVY_TRAD_SHARE:
                t_title, t_lines, script, rate = trad_copy(e)
                emit("trad_copy", eid_next(), eid, t_title, t_lines, script, rate)
                continue
            blocks, c_lines, dropped = list(e.blocks), lines, 0
            if len(blocks) >= 4 and r.random() < DROP_SHARE:
                del blocks[r.randrange(1, len(blocks))]
                dropped = 1
                _, c_lines = render_lines(e, model.vocab, "", blocks)
            rate = r.choice(NEAR_EDIT_RATES + FAMILY_EDIT_RATES)
            edited = edit_text("\n".join(c_lines), rate, rng).split("\n")
            emit("near_copy", eid_next(), eid, title, edited, "simplified", rate, dropped)

    while st.bytes + sum(pending.values()) < target:
        u = r.random()
        eid = eid_next()
        if u < TITLE_ONLY_SHARE:
            t = "".join(map(model.vocab.__getitem__, supply.heading(6).tolist())) + r.choice(TITLE_SUFFIXES)
            emit("title_only", eid, None, t, [])
        elif u < TITLE_ONLY_SHARE + NEAR_COPY_SHARE and ring:
            src, title, lines = ring[r.randrange(len(ring))]
            blocks = list(src.blocks)
            dropped = added = 0
            if len(blocks) >= 4 and r.random() < DROP_SHARE:
                for _ in range(r.randint(1, 2)):
                    del blocks[r.randrange(1, len(blocks))]
                    dropped += 1
            if r.random() < ADD_SHARE:
                for _ in range(r.randint(1, 2)):
                    blocks.insert(r.randrange(len(blocks) + 1), ("", supply.next()))
                    added += 1
            if dropped or added:
                _, lines = render_lines(src, model.vocab, "", blocks)
            rate = r.choice(NEAR_EDIT_RATES)
            edited = edit_text("\n".join(lines), rate, rng).split("\n")
            emit("near_copy", eid, src.eid, title, edited, "simplified", rate, dropped, added)
        elif u < TITLE_ONLY_SHARE + NEAR_COPY_SHARE + TRAD_COPY_SHARE and ring:
            src, _title, _lines = ring[r.randrange(len(ring))]
            title, lines, script, rate = trad_copy(src)
            emit("trad_copy", eid, src.eid, title, lines, script, rate)
        else:
            e = make_essay(eid, supply, r, body_target())
            title, lines = render_lines(e, model.vocab, e.title_suffix)
            emit("original", eid, None, title, lines)
            ring.append((e, title, lines))
            if len(ring) > RING:
                del ring[r.randrange(len(ring))]
    for site_i in sorted(jsonl_buf):
        flush_jsonl(site_i)

    real_budget = int(a.real_share * target)
    real: RealPages | None = None

    def emit_page(kind: str, site_i: int, title: str, text: str, extra: dict, ext: str) -> str:
        eid = eid_next()
        assert real is not None
        rr = real.r
        date = f"{rr.choice(YEARS)}-{rr.randint(1, 12):02d}-{rr.randint(1, 28):02d}"
        host = REAL_SITES[site_i][1]
        while True:
            rel = f"{host.split('.')[1]}/{date[:4]}/{date[5:7]}/{rr.getrandbits(48):012x}.{ext}"
            if rel not in used_names:
                used_names.add(rel)
                break
        row = dict(essay_id=eid, path=rel, line=None, kind=kind, source=None, site=host, script="simplified",
                   chars=0, edit_rate=0.0, dropped=0, added=0, title=title, encoding="utf-8")
        row.update(extra)
        truth.append(row)
        st.essays += 1
        st.kinds[kind] = st.kinds.get(kind, 0) + 1
        write(rel, text.encode("utf-8"), "utf-8")
        return eid

    real = RealPages(EXTERNAL, a.seed, real_budget, emit_page)
    real.run()

    truth.sort(key=lambda row: row["essay_id"])
    with open(a.out / "truth.jsonl", "w", encoding="utf-8") as fh:
        for row in truth:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    meta = {
        "generator_version": GENERATOR_VERSION, "seed": a.seed, "mb": a.mb, "order": a.order,
        "real_share": a.real_share, "dup_heavy": a.dup_heavy,
        "files": st.files, "essays": st.essays, "bytes": st.bytes, "family_root": root_id, "family_size": family_n,
        "kinds": dict(sorted(st.kinds.items())), "encodings": dict(sorted(st.encodings.items())),
        "sites": [url for _n, url in SITES], "real_sites": [url for _n, url in REAL_SITES],
        "knobs": {k: v for k, v in globals().items() if k.isupper() and isinstance(v, (int, float, tuple))
                  and k not in ("SITES", "REAL_SITES")},
    }
    (a.out / "corpus.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                       encoding="utf-8")
    dt = time.perf_counter() - t0
    print(f"{st.bytes / 1e6:.1f} MB in {st.files:,} files ({st.essays:,} essays) -> {a.out}  "
          f"{dt:.1f} s ({st.bytes / 1e6 / max(dt, 1e-9):.1f} MB/s; model {t_model:.1f} s)")
    print("kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(st.kinds.items())))
    print("encodings: " + ", ".join(f"{k} {v}" for k, v in sorted(st.encodings.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
