"""What one line of a text is: a title, a ``第X篇`` essay header, a site line, a teaser, a byline, a
date or promulgation line, a line that opens a document, prose.  The splitter (:mod:`.starts`,
:mod:`.headerzone`) asks these questions; the measured reasons are beside each pattern."""

from __future__ import annotations

import re
from functools import lru_cache

from corpuspipe.stages.ingest.lines import Line, nospace, strip_markup
from corpuspipe.stages.watermark.removal import removes_whole_line
from corpuspipe.zh import outline
from corpuspipe.zh.chars import HAN_BMP

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


def ends_paragraph(s: str) -> bool:
    """Ends with sentence-final punctuation or a closing quote."""
    return _PARA_END.search(s) is not None


def ends_text(s: str) -> bool:
    """The text before a line ends here: a sentence, or scraped junk without Han characters
    (Wikisource's trailing Public domain / false lines)."""
    return ends_paragraph(s) or _HAS_HAN.search(s) is None


def official_title(s: str) -> bool:
    """Has the official-document title formula (:data:`_GENRE_END`)."""
    return _GENRE_END.search(s) is not None


def generic_heading(s: str) -> bool:
    """A section name that heads a part of a document, never a document (:data:`_GENERIC_HEADING`)."""
    return _GENERIC_HEADING.match(s) is not None


def note_or_promotion(s: str) -> bool:
    """A note wholly in parentheses or a site's promotion: never a title."""
    return _PAREN_NOTE.match(s) is not None or _PROMO.search(s) is not None


def is_site_line(s: str) -> bool:
    return _SITE_LINE.search(s) is not None


def bigrams(s: str) -> set[str]:
    s = nospace(s)
    return {s[i : i + 2] for i in range(len(s) - 1)}



def teaser_at(lines: list[Line], i: int, text: str, max_skip: int = 6) -> bool:
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
        or parse_byline(s) is not None
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


def is_prose(lines: list[Line], i: int, text: str, max_long: int) -> bool:
    """Body text: Han characters, not title-shaped, and none of the lines a header zone holds
    (site line, date or promulgation line, byline, document number, note, subtitle, teaser)."""
    s = lines[i].content
    if _HAS_HAN.search(s) is None or is_title_like(s, max_long):
        return False
    if (
        is_site_line(s)
        or _is_date_line(s)
        or parse_byline(s) is not None
        or _ROLE_BYLINE.match(s) is not None
        or _DOC_NUMBER.match(s) is not None
        or _PAREN_NOTE.match(s) is not None
        or _SUBTITLE.match(s) is not None
    ):
        return False
    return not (_TEASER_END.search(s) is not None and teaser_at(lines, i, text))


def prose_follows(lines: list[Line], i: int, min_chars: int = 60) -> bool:
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


def opening_follows(lines: list[Line], i: int, text: str) -> str | None:
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
    if parse_byline(s) is not None or _ROLE_BYLINE.match(s):
        return "byline"
    if is_site_line(s):
        return "site_line"
    key = nospace(s)
    if 4 <= len(key) <= len(nospace(lines[i].content)) and key in nospace(lines[i].content):
        return "repeated_title"
    if teaser_at(lines, j, text):
        return "teaser"
    return None


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
    return is_title_like(s, max_long_title_chars) and (after_teaser or opening_follows(lines, i, text) is not None)


def parse_byline(s: str) -> tuple[str | None, str | None] | None:
    m = _BYLINE.match(s)
    if m is not None:
        return m.group("author"), f"{m.group('y')}-{int(m.group('m')):02d}-{int(m.group('d')):02d}"
    m = _AUTHOR_ONLY.match(s)
    if m is not None:
        return m.group("author").strip(), None
    return None
