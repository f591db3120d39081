"""Is a recurring line genre prose (keep) or a site's own sentence (boilerplate)?

Formulaic prose recurs verbatim across the documents of one genre exactly as a site's header or
footer recurs across its pages: the government work report opener 「现在，我代表国务院，向大会报告政府
工作，请予审议，并请全国政协委员提出意见。」 heads all 13 reports of 2013-2025, so in a corpus of
recent reports it passes every frequency and position threshold of the boilerplate detector.
What tells it apart is its shape and its vocabulary: it is a finished sentence of several clauses
that speaks about the matter of the document, while a site's sentence labels itself
(``导语：``, ``温馨提示：``, ``免责声明：``), carries a URL or site name in Latin letters, or talks about
the page, the site and the reader (本站, 转载, 版权, 下载, 收藏, 关注, 您...).

The word list only ever *withdraws* protection: a site sentence it misses keeps being removed
as long as it has a label, a Latin letter, or fewer than two clause commas; a genre sentence that
happens to contain one of the words is removed as before this module existed.
"""

from __future__ import annotations

import re

from corpuspipe.zh.chars import HAN_BMP, SENTENCE_END

# Words about the page, the site, copying and the reader; never the subject of a report or law.
SITE_WORDS = (
    "本站", "本网", "网站", "网友", "网页", "转载", "版权", "侵权", "来源", "出处", "原创", "下载", "收藏",
    "小编", "点击", "关注", "公众号", "扫码", "微信", "会员", "投稿", "浏览", "访问", "链接", "网址", "本文",
    "本页", "本篇", "作品", "文库", "维基", "模板", "声明", "阅读", "删除", "更多", "欢迎", "分享", "评论",
    "点赞", "登录", "注册", "广告", "免费", "整理", "您", "参考", "仅供", "编辑", "栏目", "频道",
)
_SITE_WORDS_RE = re.compile("|".join(map(re.escape, SITE_WORDS)))
_HAN = re.compile(f"[{HAN_BMP}]")
_LATIN = re.compile("[A-Za-z]")
_CLAUSE = re.compile("[,，;；、]")
_LABEL_WITHIN = 8  # 导语：, 温馨提示：, 免责声明：, 注：  -- a colon this early labels the line
MIN_HAN = 20
MIN_CLAUSES = 2


def is_genre_prose(line: str) -> bool:
    """True for a finished multi-clause sentence with no label, no Latin letters and no site word.

    ``line`` may be a boilerplate key (script, width and digits folded, spaces removed)."""
    s = "".join(line.split())
    if not s or s[-1] not in SENTENCE_END:
        return False
    if len(_HAN.findall(s)) < MIN_HAN or len(_CLAUSE.findall(s)) < MIN_CLAUSES:
        return False
    head = s[:_LABEL_WITHIN]
    if ":" in head or "：" in head or _LATIN.search(s) or _SITE_WORDS_RE.search(s):
        return False
    return True
