"""Splitting one decoded text file into essays, and finding each essay's header lines.

Works line by line (never per character).  An essay starts at a ``第X篇：title`` header, or at
a *bare title line* when enough independent signals agree (see :func:`_bare_title_score`): the
strongest is what follows a title in a compilation -- the lines that open a document (a
salutation, a date or promulgation line, a byline, a teaser; :func:`_opening_follows`).
Measured with ``bench/eval_split.py`` (142 real reports, resolutions and laws joined in 600
files, 903 boundaries; every document alone in 14 renderings, 2,052 single documents): boundary
recall 33/903 (0.037) before, 893/903 (0.989) after; false splits 0 per 1,000 single documents
before and after.  Titles longer than ``max_title_chars`` pass with that evidence, up to
``max_long_title_chars`` (:func:`title_line_ok`).  On the 100 MB crawl bench (``eval_split.py
--crawl``: every text file there is one essay) 15 of 14,584 files were split at site promotions
inside the page; none since promotions are neither titles nor openings (``_PROMO``).
The split streams (:func:`iter_split`): a pre-scan takes the whole-file facts, then lines are
made lazily and released behind each essay (:class:`LazyLines`); a 200 MB file never holds its
1.1M lines at once.
Within each essay the header zone (teaser, header/title line, site lines, a repeated title,
a byline) is classified; non-body lines are returned as removals so the caller can record
them as edits.  Site lines (``時間:``, ``導語:``, breadcrumbs) are recognised but kept: the
watermark stage removes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from typing import Iterator

from corpuspipe.stages.watermark.removal import removes_whole_line
from corpuspipe.zh import outline
from corpuspipe.zh.chars import HAN_BMP
from corpuspipe.zh.numerals import cn_small_value

_HAN = HAN_BMP

_ESSAY_HEADER = outline.essay_header_re()
_SENTENCE_PUNCT = re.compile(r"[。！？!?；;]|\.\s|\.$")
_BAD_TITLE_END = re.compile(r"[，,、：:…．.\-—]$")
# Line-start outline markers (corpuspipe.zh.outline, ingest's reading: spaces allowed inside).
_OUTLINE = outline.ingest_outline_re()
# A short label and a colon opening the line (注：…, 广告：…, 推荐阅读：…, 相关推荐：…) is a page's note or
# promotion, not a title: on the 100 MB crawl bench such footer lines opened 24 false essays.
_LABEL_LINE = re.compile(r"^[^\s：:，。]{1,4}[：:]")
_SITE_LINE = re.compile(
    r"^(?:(?:时间|時間|日期|发布时间|發布時間|发表时间|發表時間|来源|來源|导语|導語|"
    r"浏览|瀏覽|点击|點擊|阅读|閱讀|编辑|編輯|责任编辑|責任編輯)\s*[:：]"
    r"|(?:首页|首頁|当前位置|當前位置|您的位置|您现在的位置)\b"
    r")|>>|»|＞＞"
)
_TEASER_END = re.compile(r"(?:\.{3,}|…+|。{3,})\s*$")
_BRACKET_TAG = re.compile(r"\s*[\[【［〔][^\]】］〕]{1,16}[\]】］〕]\s*")
# Markup a converter or a crawler leaves on a line: a Markdown heading mark (``# 标题``, ``## 一、…``,
# a closing ``##``), emphasis around the whole line (``**标题**``), HTML tags (``<h1>标题</h1>``).
# 54 of the 55 laws of ../shared/external are Markdown: their titles were released as ``# 标题``.
_MD_HEADING = re.compile(r"^#{1,6}[ \t\u3000]+")
_MD_CLOSING = re.compile(r"[ \t\u3000]+#+$")
_EMPHASIS = re.compile(r"^(\*\*|__)(?=\S)(.+?)(?<=\S)\1$")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]{0,80})?>")
_NOSPACE = re.compile(r"\s+")
_DATE = r"(?P<y>(?:19|20)\d{2})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"
_BYLINE = re.compile(
    rf"^(?:(?:作者|作\s*者)\s*[:：]\s*)?(?P<author>[{_HAN}·•]{{2,6}})"
    rf"(?:\s+|\s*[,，]\s*)(?:(?:日期|时间|時間)\s*[:：]\s*)?{_DATE}$"
)
_AUTHOR_ONLY = re.compile(rf"^(?:作者|作\s*者)\s*[:：]\s*(?P<author>[{_HAN}·•A-Za-z ]{{2,20}})$")
_HAS_HAN = re.compile(f"[{_HAN}]")
_PARA_END = re.compile(r"[。！？!?”」』\"…]\s*$")

# -- lines that open a document right under its title (issue 12) ---------------------------------
# A salutation opens a speech or report: 各位代表： (48 of 52 government reports), 同志们： (CPC).
_SALUTATION = re.compile(
    rf"^(?:各位代表|各位委员|各位同志|同志们|代表们|女士们|先生们|朋友们|同学们|老师们|亲爱的[{_HAN}]{{1,8}})"
    r"\s*[：:！!，,]"
)
# A date line: 2021年12月24日 …会议通过 (laws), 2024年3月5日, （2001年2月6日…通过，根据…修正）,
# 2024-03-05, 一九五四年九月; never a sentence (no 。！？ in it).
_DATE_LINE = re.compile(
    r"^[（(]?\s*(?:(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月|(?:19|20)\d{2}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|[一二三四五六七八九〇零○]{4}年[一二三四五六七八九十]{1,3}月)"
)
# Section names that head a part of a document, never a document: 结束语 over 各位代表！ closes
# 11 of the real government reports (a salutation under a heading, not under a title).
_GENERIC_HEADING = re.compile(
    r"^(?:(?:前言|引言|导言|序言|绪论|总论|结束语|结语|结论|小结|后记|附录|附件\s*\d*|附表\s*\d*|说明|注释|致谢|目录)$"
    r"|(?:附件|附表|附录)\s*\d*\s*[：:])"  # 附件：（按顺序列明…材料） in a law's form template
)
_SENTENCE_END_INSIDE = re.compile(r"[。！？!?]")
# An addressee line opens an official document (公文 主送机关): 各省、自治区、直辖市人民政府，…：
_ADDRESSEE = re.compile(r"^各[^。！？!?]{1,80}[：:]$")
# The official-document title formula (公文标题: issuer + 关于 + matter + genre): …关于…的决议,
# …关于…的规定（试行）.  The genre word alone is not enough: 过去五年国内工作的基本总结 and
# 农村人民公社工作条例（试行草案） are headings and link fragments inside real reports.
_GENRE_END = re.compile(
    r"关于.{2,}(?:报告|决议|决定|规定|解释|办法|条例|通知|意见|方案|细则|纲要|章程|安排|批复|公告|通报)"
    r"(?:[（(][^）)]{1,6}[）)])?$"
)
# A section heading over a salutation (结束语, 形势和任务: 3 and 5 characters in the real reports)
# is not a speech title; the speech and report titles of the data run 10 characters and more.
_MIN_SALUTED_TITLE = 6
# A document number: 法释〔2022〕10号, 国发〔2020〕5号, 劳社部发[2008]3号.
_DOC_NUMBER = re.compile(rf"^[{_HAN}]{{1,10}}\s*[〔\[［【(（]\s*(?:19|20)\d{{2}}\s*[〕\]］】)）]\s*第?\s*\d{{1,5}}\s*号$")
# A note wholly in parentheses under a title: (譯自中共駐共產國際代表團檔案俄文稿), （摘要）.
_PAREN_NOTE = re.compile(r"^[（(][^（()）]{4,60}[）)]$")
# A subtitle line under a title: ——在中国共产党第二十次全国代表大会上的报告.
_SUBTITLE = re.compile(r"^(?:——|──|—|－－|--)\s*\S")
# A site's promotion inside a page: 【免费下载】…模板，点击领取>>, >>>点击查看更多规章制度<<<,
# （第一范文网会员可下载Word版）.  Never a document's title nor the line that opens one (点击：123, a
# click count with its colon, is a site line).  On the 100 MB crawl bench such lines under a
# sentence fragment (3.2004年11月16日最高人民法院审判 / >>>点击查看更多…) made 9 of its 15 false splits.
_PROMO = re.compile(r"点击(?!\s*[:：])|下载|免费领取")
# A site's own line addressing the reader: a page, the site or its app (本站, 公众号, 下一页, www.),
# visiting or following it (尽在…, 登录, 搜索, 关注我们), pagination (未完待续, 第2页), "more" and
# "coming" (更多精彩, 敬请期待, 每日更新), use notes (仅供参考), a chatty close (…收藏一下吧).  Shipped
# rules remove some such lines; this shape only keeps one from opening or titling an essay (an advert
# between the pages of one essay read as the next essay's title).  A title in the official formula
# (关于…的通知) is never one.  Measured: 12 of 12 advert wordings written before it (the shipped rules
# remove 2 of them), 0 of 1,021 real titles and isolated headings (reports, laws, headings_layout_gt).
_ADVERT_SHAPE = re.compile(
    r"本站|本网|网站|网址|网友|小编|公众号|微信号|二维码|扫码|[Aa][Pp][Pp]|投稿"
    r"|下一页|上一页|翻页|翻到|第\s*\d+\s*页|未完待续|点击|点这里|请点"
    r"|尽在|就上|就来|请到|登录|搜索|光临|关注我们|关注本"
    r"|[Ww][Ww][Ww]\.|[Hh][Tt][Tt][Pp][Ss]?:|\.(?:com|cn|net|org)(?![A-Za-z0-9])"
    r"|更多(?:精彩|好文|优秀|范文|文章|内容|资料)|敬请(?:期待|关注)|持续更新|(?:每日|每天)更新|仅供(?:学习|交流)?(?:参考|学习|交流)"
    r"|(?:收藏|分享|记得|喜欢|常来|关注).{0,12}(?:哦|吧|啦|哟|呦)[～~!！。]*$"
    r"|[\u4e00-\u9fff]{1,8}(?:网|站|文库)(?=$|[，,。！!～~\s—－-])"
)


def advert_shaped(s: str) -> bool:
    """Shaped like a site's advert (:data:`_ADVERT_SHAPE`) and not like an official title."""
    return _ADVERT_SHAPE.search(s) is not None and _GENRE_END.search(s) is None


# A byline naming an office and a person: 国务院总理 李强, 记者 王小明.
_ROLE_BYLINE = re.compile(
    rf"^[{_HAN}]{{0,12}}(?:总理|主席|委员长|书记|部长|省长|市长|县长|院长|校长|主任|记者|通讯员|作者|编辑)"
    rf"\s*[:：]?\s*[{_HAN}·•]{{2,4}}$"
)


@dataclass(slots=True)
class Line:
    start: int  # offset of the first character
    end: int  # offset after the line break
    content: str  # stripped
    indent: int  # leading whitespace characters


@dataclass
class Removal:
    start: int  # file offsets
    end: int
    rule: str


@dataclass
class EssaySpan:
    start: int
    end: int
    title: str | None = None
    author: str | None = None
    date: str | None = None
    removals: list[Removal] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def iter_lines(text: str) -> Iterator[Line]:
    """Lines with offsets, one at a time; ``end`` includes the line break.

    Walks the text with ``find`` instead of ``split``: a split held a second full copy of a
    200 MB file (as 1.1M line strings) beside the stripped contents.
    """
    n = len(text)
    pos = 0
    while pos < n:
        nl = text.find("\n", pos)
        stop = n if nl < 0 else nl
        raw = text[pos:stop]
        content = raw.strip()
        if content[:1] == "#":  # a Markdown heading reads as its words (## 一、总则 is an outline item)
            content = strip_markup(content)
        end = n if nl < 0 else nl + 1
        yield Line(pos, end, content, len(raw) - len(raw.lstrip()) if content else 0)
        pos = end


def split_lines(text: str) -> list[Line]:
    """All lines of ``text`` (:func:`iter_lines` as a list)."""
    return list(iter_lines(text))


class LazyLines:
    """The lines of a text, made on demand and forgotten behind a moving floor (``release``).

    Reads like the list :func:`split_lines` returns (``len``, ``lines[j]``), so the splitter's
    code is unchanged, but only the window between the floor and the furthest line looked at
    is held: the splitter looks back no further than the start of the essay it is building and
    ahead a bounded distance (12 content lines, 10,000 characters).  A list of every line held
    1.1M ``Line`` objects and their stripped contents for a 200 MB file (~0.5 GB); the window is
    a few hundred lines.  Asking below the floor is a bug and raises IndexError.
    """

    __slots__ = ("text", "_n", "_lo", "_buf", "_levels", "_rest")
    _BATCH = 256  # lines parsed per refill

    def __init__(self, text: str):
        self.text = text
        self._n = text.count("\n") + (0 if not text or text.endswith("\n") else 1)
        self._lo = 0  # index of _buf[0]
        self._buf: list[Line] = []
        self._levels: list = []  # outline level per buffered line, _UNSET until asked
        self._rest = iter_lines(text)  # the lines not parsed yet

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, j: int) -> Line:
        k = j - self._lo
        if k < 0 or j >= self._n:
            raise IndexError(f"line {j} outside the window [{self._lo}, {self._n})")
        buf = self._buf
        if k >= len(buf):
            self._fill(k + 1)
        return buf[k]

    def level(self, j: int) -> tuple[str, int] | None:
        ln = self[j]
        k = j - self._lo
        lv = self._levels[k]
        if lv is _UNSET:
            lv = self._levels[k] = _outline_level(ln.content) if ln.content else None
        return lv

    def _fill(self, want: int) -> None:
        buf = self._buf
        buf.extend(islice(self._rest, want + self._BATCH - len(buf)))
        self._levels.extend([_UNSET] * (len(buf) - len(self._levels)))

    def release(self, upto: int) -> None:
        """Forget the lines before ``upto``."""
        k = min(upto - self._lo, len(self._buf))
        if k > 0:
            del self._buf[:k]
            del self._levels[:k]
            self._lo += k


class _Levels:
    """``levels[j]`` over a :class:`LazyLines` (the outline level of line j, computed once)."""

    __slots__ = ("_lines",)

    def __init__(self, lines: LazyLines):
        self._lines = lines

    def __getitem__(self, j: int) -> tuple[str, int] | None:
        return self._lines.level(j)


_UNSET = object()


def nospace(s: str) -> str:
    return _NOSPACE.sub("", s)


def strip_markup(s: str) -> str:
    """The line without Markdown heading marks, whole-line emphasis or HTML tags."""
    s = s.strip()
    if s[:1] == "#":
        s = _MD_CLOSING.sub("", _MD_HEADING.sub("", s, count=1))
    if "<" in s:
        s = _HTML_TAG.sub("", s).strip()
    m = _EMPHASIS.match(s)
    return m.group(2).strip() if m else s


def clean_title(s: str) -> str:
    """Strip whitespace, markup (:func:`strip_markup`) and bracketed site tags such as ``[范文模版]``
    or ``【精选】``."""
    return _BRACKET_TAG.sub(" ", strip_markup(s)).strip()


@lru_cache(maxsize=4096)
def removed_as_watermark(s: str) -> bool:
    """Would the shipped watermark rules remove this whole line (an advert, a page stamp, a
    counter)?  Such a line never titles an essay, however title-shaped: the 88 real reports and 55
    laws cut into pages with one of six adverts between them (2,466 pages), 92 were split at the
    advert when the next page opened with 各位代表！ or a date line (the advert read as the next
    document's title); none with this check and :func:`advert_shaped`.  The corpus's own
    boilerplate keys and a user's rules are only known later: the watermark stage re-joins an
    essay opened by such a line (``stages/watermark/rejoin.py``).  Cached: site lines repeat."""
    return removes_whole_line(s)


def is_title_like(s: str, max_chars: int) -> bool:
    """Short, unpunctuated, not an outline item: could be a title or a heading."""
    return (
        2 <= len(s) <= max_chars
        and _HAS_HAN.search(s) is not None
        and _SENTENCE_PUNCT.search(s) is None
        and _BAD_TITLE_END.search(s) is None
        and _OUTLINE.match(s) is None
        and _SITE_LINE.search(s) is None
        and _LABEL_LINE.match(s) is None
    )


def essay_header_title(s: str, max_chars: int) -> str | None:
    m = _ESSAY_HEADER.match(s)
    if m is None:
        return None
    title = clean_title(m.group("title"))
    return title if is_title_like(title, max_chars) else None


def is_site_line(s: str) -> bool:
    return _SITE_LINE.search(s) is not None


def _bigrams(s: str) -> set[str]:
    s = nospace(s)
    return {s[i : i + 2] for i in range(len(s) - 1)}


def _dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


_cn_value = cn_small_value
_outline_level = outline.ingest_outline_level


def _teaser_at(lines: list[Line], i: int, text: str, max_skip: int = 6) -> bool:
    """A summary line ending in '...' that repeats the start of what follows.

    Crawled list pages glue a teaser (the first ~60 characters of the page) above each
    document.  Three shapes are seen: title + body start (seed 004), the body start alone above
    the title line, and title + body start *without* the salutation line the body opens with
    (``各位代表：`` heads 48 of the 52 real government reports; the page summary skips it).  So
    the teaser is compared with the following content lines, whitespace ignored, and up to
    ``max_skip`` header lines it does not repeat (a title, a salutation, date or promulgation
    lines: a law has up to 4) may be passed over.  The teaser must still be consumed entirely by
    text that follows.  When nothing is skipped this is exactly the old test
    (``nospace(following).startswith(core)``).  A line the teaser repeats may also be skipped
    (a law's body restates its title split over lines), so the walk tries both, depth-first.
    """
    s = lines[i].content
    m = _TEASER_END.search(s)
    if m is None:
        return False
    core = nospace(s[: m.start()])
    if len(core) < 8:
        return False
    # Content lines after the teaser; the line bound only caps runs of blank lines (scraped
    # reports hold 7 under the 2024 title; a table of contents puts 12 lines in 60 characters).
    nxt: list[str] = []
    for j in range(i + 1, min(len(lines), i + 1 + 4 * (len(core) + max_skip) + 64)):
        if lines[j].content:
            nxt.append(lines[j].content)
            if len(nxt) >= len(core) + max_skip:
                break

    def walk(k: int, rest: str, skips: int) -> bool:
        # Each step consumes part of the teaser or one of max_skip skips: at most
        # 2^max_skip paths, and only where a header line is also repeated by the teaser.
        while k < len(nxt):
            c = nospace(nxt[k])
            if c.startswith(rest):
                return True
            can_skip = skips < max_skip and _skippable_header(nxt[k])
            if rest.startswith(c):
                if can_skip and walk(k + 1, rest, skips + 1):
                    return True
                rest = rest[len(c) :]
                k += 1
            elif can_skip:
                skips += 1
                k += 1
            else:
                return False
        return False

    return walk(0, core, 0)


def _skippable_header(s: str) -> bool:
    """A line a teaser may leave out: the title, a salutation, a date line, a byline."""
    return (
        is_title_like(s, 200)
        or _SALUTATION.match(s) is not None
        or _is_date_line(s)
        or _parse_byline(s) is not None
        or _ROLE_BYLINE.match(s) is not None
    )


def _is_date_line(s: str) -> bool:
    """A date or promulgation line; a parenthesised one may be long (a law's amendment history:
    ``（2001年2月6日…通过，根据2020年12月23日…的决定》修正）``, 160 characters)."""
    wrapped = s[:1] in "（(" and s[-1:] in "）)"
    return (
        len(s) <= (400 if wrapped else 120)
        and _DATE_LINE.match(s) is not None
        and _SENTENCE_END_INSIDE.search(s) is None
    )


# Scraped pages leave lines holding only a zero-width space (U+200B) under a title: 7 of the 72
# government reports and resolutions start so.  str.strip() keeps them; they are no text.  Nor is
# a whole-line HTML comment (the laws' <!-- INFO END -->, right under one law's title).
_INVISIBLE = re.compile(r"^(?:[\u200b-\u200f\u2060\ufeff]+|<!--.*-->)$")


def _next_content(lines: list[Line], i: int, limit: int = 12) -> int | None:
    """Index of the first visible content line after i (None when only blank lines follow
    nearby)."""
    for j in range(i + 1, min(len(lines), i + 1 + limit)):
        c = lines[j].content
        if c and _INVISIBLE.match(c) is None:
            return j
    return None


# A line opening with these continues a sentence cut at a link (Wikisource: 《 / title / 》等…).
_CONTINUATION = frozenset("》」』”’）)］】〕，,。、；;：:！？!?")


def _is_prose(lines: list[Line], i: int, text: str, max_long: int) -> bool:
    """Body text: Han characters, not title-shaped, and none of the lines a header zone holds
    (site line, date or promulgation line, byline, document number, note, subtitle, teaser)."""
    s = lines[i].content
    if _HAS_HAN.search(s) is None or is_title_like(s, max_long):
        return False
    if (
        is_site_line(s)
        or _is_date_line(s)
        or _parse_byline(s) is not None
        or _ROLE_BYLINE.match(s) is not None
        or _DOC_NUMBER.match(s) is not None
        or _PAREN_NOTE.match(s) is not None
        or _SUBTITLE.match(s) is not None
    ):
        return False
    return not (_TEASER_END.search(s) is not None and _teaser_at(lines, i, text))


def _prose_follows(lines: list[Line], i: int, min_chars: int = 60) -> bool:
    """The next lines are running prose (a paragraph, not a heading or a list item): 60+
    characters within 4 content lines, with a comma or full stop.  Scraped pages cut a
    paragraph at link fragments (``…国务院总理李强所作的`` / ``政府工作报告`` / ``。会议…``)."""
    buf = ""
    for j in range(i + 1, min(len(lines), i + 13)):
        c = lines[j].content
        if not c or _INVISIBLE.match(c) is not None:
            continue
        if not buf and (_OUTLINE.match(c) is not None or c[0] in _CONTINUATION):
            return False
        buf += c
        if len(buf) >= min_chars:
            break
    return len(buf) >= min_chars and ("，" in buf or "。" in buf)


def _opening_follows(lines: list[Line], i: int, text: str) -> str | None:
    """What makes line i look like a document title from below: the kind of the next line.

    A title in a compilation is followed by the things that open a document -- a salutation
    (``各位代表：``), a date or promulgation line (``2021年12月24日 …会议通过``), a document number
    (``法释〔2022〕10号``), a subtitle (``——在…大会上的报告``), a byline (``国务院总理 李强``), a
    site line (``发布时间：``), a teaser, or the title repeated (``政府工作报告`` under
    ``2024年中华人民共和国国务院政府工作报告``).  A heading inside a document is followed by its
    paragraph instead.  Measured with ``bench/eval_split.py``: none of these follows a
    title-shaped line inside any of the 142 real documents (0 false splits in 2,052 renderings).
    """
    j = _next_content(lines, i)
    if j is None:
        return None
    s = lines[j].content
    if _PROMO.search(s) is not None:
        return None
    if _SALUTATION.match(s):
        return "salutation" if len(lines[i].content) >= _MIN_SALUTED_TITLE else None
    if _ADDRESSEE.match(s):
        return "addressee"
    if _is_date_line(s):
        return "date"
    if _DOC_NUMBER.match(s):
        return "doc_number"
    if _PAREN_NOTE.match(s) and _OUTLINE.match(s) is None:
        return "note"
    if _SUBTITLE.match(s) and _SENTENCE_END_INSIDE.search(s) is None:
        # a subtitle names an occasion (——在…大会上的报告); a dash before a sentence is prose
        # (——坚持发扬斗争精神。 under a site's ★瑞文网★ 每日更新心得体会 line on the crawl bench)
        return "subtitle"
    if _parse_byline(s) is not None or _ROLE_BYLINE.match(s):
        return "byline"
    if is_site_line(s):
        return "site_line"
    key = nospace(s)
    if 4 <= len(key) <= len(nospace(lines[i].content)) and key in nospace(lines[i].content):
        return "repeated_title"
    if _teaser_at(lines, j, text):
        return "teaser"
    return None


@dataclass
class _FileFacts:
    top_kind: str | None  # the highest outline level used in the file
    body_indent: int  # typical indentation of paragraphs


class _TitleIndex:
    """The titles seen so far, asked "does any share >= half its bigrams (Dice) with this line?".

    The list it replaces was compared with every title-like line, and it grows by one title
    per essay found: quadratic on a big compilation (a 20 MB file of concatenated reports:
    630k Dice computations, 1.6 s).  Distinct bigram sets are kept once, with an inverted
    index, so a query only counts overlaps with titles sharing a bigram; the score
    ``2*|a&b|/(|a|+|b|)`` is the same arithmetic as before, so the answer is identical.
    """

    __slots__ = ("_ids", "_sizes", "_postings")

    def __init__(self) -> None:
        self._ids: dict[frozenset[str], int] = {}
        self._sizes: list[int] = []
        self._postings: dict[str, list[int]] = {}

    def add(self, grams: set[str]) -> None:
        key = frozenset(grams)
        if not key or key in self._ids:
            return  # an empty set never reaches Dice 0.5
        tid = self._ids[key] = len(self._sizes)
        self._sizes.append(len(key))
        for g in key:
            self._postings.setdefault(g, []).append(tid)

    def any_similar(self, grams: set[str], threshold: float = 0.5) -> bool:
        if not grams:
            return False
        shared: dict[int, int] = {}
        for g in grams:
            for tid in self._postings.get(g, ()):
                shared[tid] = shared.get(tid, 0) + 1
        n = len(grams)
        sizes = self._sizes
        return any(2 * c / (n + sizes[tid]) >= threshold for tid, c in shared.items())


def _bare_title_score(
    lines: list[Line],
    i: int,
    facts: _FileFacts,
    levels: list[tuple[str, int] | None],
    titles: _TitleIndex,
    before: int | None,
    prev: Line | None,
    opening: str | None = None,
    teaser_before: bool = False,
    genre_prose: bool = False,
    lookahead: int = 12,
) -> int:
    """Evidence that line i starts a new essay without a header.

    +2 the top outline level restarts at 1 right after it (and had passed 1 before it);
    +2 it shares >= half its character bigrams with another title in the file;
    +1 it is indented deeper than the file's paragraphs (centred titles);
    +1 the paragraph before it is complete (ends with sentence-final punctuation);
    +4 the next line opens a document (``opening``, see :func:`_opening_follows`; the caller
       passes it only when the line before is body text, not another header line);
    +4 the line before it is a teaser of what follows (``teaser_before``);
    +4 (without an opening; ``genre_prose``) it has the official title formula (…关于…的决议,
       …关于…的规定), a paragraph follows, and the line before it ends a text (sentence-final
       punctuation, or scraped junk without Han characters such as Wikisource's ``false``):
       the laws and NPC resolutions open with prose, no salutation or date line.
    A real heading inside a report rarely has more than two of these.  The opening signal is
    what bare titles lacked: in ``bench/eval_split.py`` a document's title is usually the only
    one of its kind in the file (no similar title) and its outline restarts more than 12 lines
    down (after 各位代表： and an opening paragraph), so the old four signals found 33 of 903
    real boundaries.

    ``before`` (the last top-level outline number since the essay started) and ``prev`` (the
    last content line since then) are running values kept by the caller: rescanning the
    essay for them at every title-like line made a 200 MB file take 1,445 s.
    """
    score = 0
    if facts.top_kind is not None and before is not None and before >= 2:
        after = None
        seen = 0
        for j in range(i + 1, len(lines)):
            if not lines[j].content:
                continue
            seen += 1
            if seen > lookahead:
                break
            lv = levels[j]
            if lv is not None and lv[0] == facts.top_kind:
                after = lv[1]
                break
        if after == 1:
            score += 2
    if titles.any_similar(_bigrams(lines[i].content)):
        score += 2
    if lines[i].indent > facts.body_indent:
        score += 1
    if prev is not None and _PARA_END.search(prev.content) is not None:
        score += 1
    if opening is not None and _GENERIC_HEADING.match(lines[i].content) is None:
        score += 4
    elif genre_prose:
        score += 4
    if teaser_before:
        score += 4
    return score


# Lines longer than this are never asked whether a rule removes them whole in the header zone (the
# shipped line rules stop at ~300 characters; a long first paragraph is body).
_MAX_WATERMARK_LINE = 160
# A bare title needs this much evidence, and at least one of the two strong signals.
_BARE_TITLE_MIN_SCORE = 4
# How far ahead a bare title looks for the text it would start (characters).
_LOOKAHEAD_CHARS = 10_000


def title_line_ok(lines: list[Line], i: int, text: str, max_title_chars: int, max_long_title_chars: int,
                  after_teaser: bool = False) -> bool:
    """Is line i shaped like a title?  Up to ``max_title_chars`` the shape alone decides (no
    sentence punctuation, no outline marker); a longer line up to ``max_long_title_chars`` must
    also be followed by a document opening or preceded by a teaser.  Real titles run longer
    than 40 characters: 5 of the 55 laws (41-53), the CPC reports with their occasion
    (``…——在中国共产党第二十次全国代表大会上的报告``, up to 59), the government reports with
    theirs (``…——2024年3月5日在第十四届全国人民代表大会第二次会议上``, 51-53).
    """
    s = lines[i].content
    if len(s) <= max_title_chars:
        return is_title_like(s, max_title_chars)
    return is_title_like(s, max_long_title_chars) and (after_teaser or _opening_follows(lines, i, text) is not None)


@dataclass
class _Prescan:
    """What the splitter needs from the whole file before its one streaming pass: the file's
    facts, its ``第X篇`` header lines (their titles seed the title index; the look-ahead stops at
    them) and its first content lines.  Taken in a pass that keeps no line: a few bytes per header."""

    facts: _FileFacts
    headers: dict[int, str]
    first: int | None  # first content line
    second: int | None  # second content line


def _prescan(text: str, max_title_chars: int) -> _Prescan:
    kinds: set[str] = set()
    indents: dict[int, int] = {}  # indent -> lines of more than 60 characters (for the median)
    headers: dict[int, str] = {}
    first = second = None
    for idx, ln in enumerate(iter_lines(text)):
        content = ln.content
        if content:
            if first is None:
                first = idx
            elif second is None:
                second = idx
            lv = _outline_level(content)
            if lv is not None:
                kinds.add(lv[0])
            if len(content) > 60:
                indents[ln.indent] = indents.get(ln.indent, 0) + 1
            t = essay_header_title(content, max_title_chars)
            if t is not None:
                headers[idx] = t
    top = next((k for k in ("l1", "l2", "l3") if k in kinds), None)
    return _Prescan(_FileFacts(top, _median(indents)), headers, first, second)


def _median(counts: dict[int, int]) -> int:
    """``sorted(values)[len // 2]`` from a histogram (0 when empty)."""
    total = sum(counts.values())
    if not total:
        return 0
    rank = total // 2
    for value in sorted(counts):
        rank -= counts[value]
        if rank < 0:
            return value
    raise AssertionError("unreachable")


def find_essay_starts(
    text: str, lines: list[Line], max_title_chars: int, min_essay_chars: int, max_long_title_chars: int | None = None
) -> list[int]:
    """Line indexes where essays start (the first is always 0); see :func:`iter_essay_starts`."""
    return list(iter_essay_starts(text, lines, max_title_chars, min_essay_chars, max_long_title_chars))


def iter_essay_starts(
    text: str, lines, max_title_chars: int, min_essay_chars: int, max_long_title_chars: int | None = None,
    pre: _Prescan | None = None,
) -> Iterator[int]:
    """Line indexes where essays start, in order, as they are found (the first is always 0).

    One pass over the lines with running values (last top-level outline number and last
    content line of the current essay), so the time is linear in the file: ingesting a 20 MB
    compilation of real reports went from 11.8 s to 2.1 s (profiled: 8 s of it were rescans and
    slices in the bare-title score), and a 200 MB one (1,445 s before) takes 8x the CPU time of
    the 20 MB one (2.5 s vs 16.6 s, ``bench/bench_ingest_bigfile.py``; still 1.9 s CPU for 20 MB
    with the opening-line signals of issue 12, which changed the spans on purpose: see
    ``bench/eval_split.py``).  A start is final when it is yielded: the scan never looks back
    before the previous start (a teaser above a start moves it up, a preamble too short to be
    an essay joins the first one), so with :class:`LazyLines` the caller may release every line
    before it (issue 11: a 200 MB file in bounded memory).  The whole-file facts (outline kind,
    paragraph indent, ``第X篇`` headers) come from :func:`_prescan`.
    """
    yield 0
    max_long = max(max_title_chars, max_long_title_chars or max_title_chars)
    if pre is None:
        pre = _prescan(text, max_title_chars)
    first = pre.first
    if first is None:
        return
    header_titles = pre.headers
    levels = _Levels(lines) if isinstance(lines, LazyLines) else [
        _outline_level(ln.content) if ln.content else None for ln in lines
    ]
    facts = pre.facts
    titles = _TitleIndex()
    for t in header_titles.values():
        titles.add(_bigrams(t))
    first_title = first
    if _teaser_at(lines, first, text) and pre.second is not None:
        first_title = pre.second  # a file opening with a teaser: its title comes next
    if title_line_ok(lines, first_title, text, max_title_chars, max_long, after_teaser=first_title != first):
        titles.add(_bigrams(lines[first_title].content))
    n = len(lines)

    def chars_until_next_start(i: int) -> int:
        """Content characters after line i up to the next header line, stopping once past
        _LOOKAHEAD_CHARS (the value the old line-by-line loop returned)."""
        acc = 0
        for j in range(i + 1, n):
            c = lines[j].content
            if not c:
                continue
            if j in header_titles:
                return acc
            acc += len(c)
            if acc >= _LOOKAHEAD_CHARS:
                return acc
        return acc

    top = facts.top_kind
    found = False  # a start after the preamble seen yet?
    last = 0  # the last start yielded
    seg_chars = 0
    before: int | None = None  # last top-level outline number since the essay's start line
    prev: Line | None = None  # last content line since the essay's start line
    prev_i: int | None = None
    prev2_i: int | None = None  # the content line before prev_i
    seg_start: int | None = first
    seg_prose = False  # has the current essay a line of prose (Han, not title-shaped) yet?
    for i in range(first, n):
        ln = lines[i]
        if not ln.content:
            continue
        start = False
        if i in header_titles:
            start = True
        elif (
            i != first
            and seg_chars >= min_essay_chars
            and is_title_like(ln.content, max_long)
            # a note wholly in parentheses or a site's promotion is not a title
            and _PAREN_NOTE.match(ln.content) is None
            and _PROMO.search(ln.content) is None
        ):
            # An opening counts only once the essay has prose: before that, title-shaped lines
            # are one document's header zone (政府工作报告 / ——… / 国务院总理 / 李克强 over 各位代表：
            # in the 2017 report; a law restating its title over 法释〔2022〕10号; a title, a
            # zero-width space, then the resolution's own title and date in the 2020/2021 ones).
            in_header = not seg_prose
            opening = None if in_header else _opening_follows(lines, i, text)
            genre_prose = (
                opening is None
                and not in_header
                and prev is not None
                # the text before ends: a sentence, or scraped junk without Han (Wikisource's
                # trailing Public domain / false lines)
                and (_PARA_END.search(prev.content) is not None or _HAS_HAN.search(prev.content) is None)
                and len(ln.content) >= 10
                and _GENRE_END.search(ln.content) is not None
                and _prose_follows(lines, i)
            )
            # A teaser under the title that started this essay is that essay's, not a new one's.
            teaser_before = prev_i is not None and prev2_i != seg_start and _teaser_at(lines, prev_i, text)
            if (
                (len(ln.content) <= max_title_chars or opening is not None or teaser_before)
                and _bare_title_score(
                    lines, i, facts, levels, titles, before, prev, opening, teaser_before, genre_prose
                )
                >= _BARE_TITLE_MIN_SCORE
                and chars_until_next_start(i) >= min_essay_chars
                and not advert_shaped(ln.content)
                and not removed_as_watermark(ln.content)
            ):
                start = True
                titles.add(_bigrams(ln.content))
        if start:
            seg_chars, before, seg_start, seg_prose = 0, None, i, False
            # A teaser just before a start belongs to the essay it summarises.
            j = i - 1
            while j >= 0 and not lines[j].content:
                j -= 1
            moved = j if j >= 0 and _teaser_at(lines, j, text) else i
            if not found:
                found = True
                # Keep a preamble as its own essay only when it holds real text.  (Its lines are
                # still in the window: nothing is released before the first start.)
                if moved != 0 and sum(
                    len(lines[k].content)
                    for k in range(0, moved)
                    if not is_site_line(lines[k].content) and not _teaser_at(lines, k, text)
                ) >= min_essay_chars:
                    last = moved
                    yield moved
            elif moved != last:  # starts only move up to the previous content line: never back
                last = moved
                yield moved
        seg_chars += len(ln.content)
        lv = levels[i]
        if lv is not None and lv[0] == top:
            before = lv[1]
        prev, prev_i, prev2_i = ln, i, prev_i
        if not seg_prose and _is_prose(lines, i, text, max_long):
            seg_prose = True


def analyse_essay(
    text: str,
    lines: list[Line],
    a: int,
    b: int,
    max_title_chars: int,
    known_title: str | None = None,
    max_long_title_chars: int | None = None,
) -> EssaySpan:
    """Classify the header zone of lines[a:b] and return the essay span with its removals."""
    start = lines[a].start if a < len(lines) else len(text)
    end = lines[b - 1].end if b > a else start
    span = EssaySpan(start, end, title=known_title)
    i = a
    # Leading blank lines.
    while i < b and not lines[i].content:
        i += 1
    if i > a:
        span.removals.append(Removal(lines[a].start, lines[i].start if i < b else end, "blank_lines"))

    def consume(j: int, rule: str) -> int:
        """Remove line j plus the blank lines after it; return the next line index."""
        k = j + 1
        while k < b and not lines[k].content:
            k += 1
        stop = lines[k].start if k < b else lines[b - 1].end
        span.removals.append(Removal(lines[j].start, stop, rule))
        return k

    max_long = max(max_title_chars, max_long_title_chars or max_title_chars)
    seen_title_line = known_title is not None
    after_teaser = False
    teaser_after_title = False
    repeated = False
    header_titles: list[str] = [known_title] if known_title else []
    budget = 8  # header zones are short; never scan deep into the body
    while i < b and budget > 0:
        budget -= 1
        s = lines[i].content
        if not seen_title_line and _teaser_at(lines, i, text):
            i = consume(i, "teaser")
            after_teaser = True
            continue
        if not seen_title_line:
            head = essay_header_title(s, max_title_chars)
            if head is not None:
                span.title = head
                header_titles = [head, s]
                seen_title_line = True
                i = consume(i, "essay_header")
                continue
        if is_site_line(s) or (not seen_title_line and len(s) <= _MAX_WATERMARK_LINE and (
                removed_as_watermark(s) or (advert_shaped(s) and is_title_like(s, max_long)))):
            # site lines stay for the watermark stage; one above the title (an advert, a page stamp,
            # 温馨提示：…如有侵权请联系删除。) neither titles the essay nor hides the title below it
            i += 1
            while i < b and not lines[i].content:
                i += 1
            continue
        if not seen_title_line and title_line_ok(lines, i, text, max_title_chars, max_long, after_teaser):
            span.title = clean_title(s)
            header_titles = [span.title]
            seen_title_line = True
            i = consume(i, "title_line")
            continue
        if seen_title_line and not teaser_after_title and known_title is None and _teaser_at(lines, i, text):
            # A teaser under the title line (title, teaser, body): the same summary, placed lower.
            teaser_after_title = True
            i = consume(i, "teaser")
            continue
        if seen_title_line and not repeated and header_titles and _is_repeat(s, header_titles):
            repeated = True
            i = consume(i, "repeated_title")
            continue
        if seen_title_line and span.author is None:
            byline = _parse_byline(s)
            if byline is not None:
                span.author, span.date = byline
                i = consume(i, "byline")
                continue
        break
    _strip_trailing(text, lines, a, b, span)
    return span


def _is_repeat(s: str, titles: list[str]) -> bool:
    key = nospace(s)
    return any(key in (nospace(t), nospace(clean_title(t))) for t in titles if t)


def _parse_byline(s: str) -> tuple[str | None, str | None] | None:
    m = _BYLINE.match(s)
    if m is not None:
        return m.group("author"), f"{m.group('y')}-{int(m.group('m')):02d}-{int(m.group('d')):02d}"
    m = _AUTHOR_ONLY.match(s)
    if m is not None:
        return m.group("author").strip(), None
    return None


def _strip_trailing(text: str, lines: list[Line], a: int, b: int, span: EssaySpan) -> None:
    """Remove whitespace after the last content character of the essay."""
    last_end = max((r.end for r in span.removals), default=span.start)
    j = b - 1
    while j >= a and not lines[j].content:
        j -= 1
    if j < a:
        return
    seg = text[lines[j].start : lines[j].end]
    cut = max(lines[j].start + len(seg.rstrip()), last_end)
    if cut < span.end:
        span.removals.append(Removal(cut, span.end, "blank_lines"))


def iter_split(
    text: str, max_title_chars: int, min_essay_chars: int, max_long_title_chars: int | None = None
) -> Iterator[EssaySpan]:
    """Essay spans that partition ``text`` exactly, with their non-body removals, one at a time.

    Lines are made lazily and released as each essay is handed out (:class:`LazyLines`), so
    memory is the text plus one essay's lines, not every line of the file.
    ``max_long_title_chars`` (None: same as ``max_title_chars``, the old behaviour) lets a
    longer line be a title when the evidence around it is strong (:func:`title_line_ok`).
    """
    if not text:
        return
    lines = LazyLines(text)
    a: int | None = None
    first = True
    for b in iter_essay_starts(text, lines, max_title_chars, min_essay_chars, max_long_title_chars):
        if a is not None:
            span = analyse_essay(text, lines, a, b, max_title_chars, max_long_title_chars=max_long_title_chars)
            if first:
                span.start, first = 0, False
            yield span
            lines.release(b)
        a = b
    assert a is not None
    span = analyse_essay(text, lines, a, len(lines), max_title_chars, max_long_title_chars=max_long_title_chars)
    if first:
        span.start = 0
    span.end = len(text)
    yield span


def split_text(
    text: str, max_title_chars: int, min_essay_chars: int, max_long_title_chars: int | None = None
) -> list[EssaySpan]:
    """Essay spans that partition ``text`` exactly, with their non-body removals (:func:`iter_split`)."""
    return list(iter_split(text, max_title_chars, min_essay_chars, max_long_title_chars))
