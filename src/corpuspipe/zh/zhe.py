"""著 after t2s: which 著 of converted text is the particle or verb 着.

OpenCC's t2s never turns 著 into 着 (NOTES.md): Traditional writes one character for both the
particle/verb zhe/zhuó (隨著, 看著, 意味著, 著力, 著眼) and zhù "to write, notable" (著作, 著名,
顯著, 土著), while mainland text writes the first 着.  The pass converts a 著 only where its
neighbours *say* 着 -- a verb ending right before it (随著, 存在著, 朝著, 肩负著) or a 着-word it
opens (著力, 著眼, 著重, 著手) -- and never where they say zhù.  Any other 著 stays: in a
Simplified essay 著 is already zhù (见微知著), and upstream OpenCC keeps 著 in 慰藉著受傷的心靈
(its t2s case ``BYVoid_OpenCC_Issue_767_solace``), where no listed verb precedes it.

Measured with ``bench/eval_zhe.py`` (the Simplified reports, the 55 laws and the OpenCC golden
document converted s2tw -- 着 becomes 著 -- and back with ``to_simplified``): the old pass (every
著 not in a zhù context became 着) restored 1,260 of 1,266 着, turned 1 of 371 zhù 著 into 着
(见微知著) and passed 54 of the 55 upstream t2s cases; this one restores 1,254 (99.1 %), turns none,
and passes 55.  The verb list was completed from that pass's misses (腐蚀着 关心着 交织着 …), so
its recall there is not a held-out figure; zhù words are few and lexical, so a verb character that
opens none of them cannot make a false 着.
"""

from __future__ import annotations

import re

# zhù: these before 著 (显著 卓著 编著 原著 论著 专著 土著 名著 巨著 译著 遗著 合著 昭著 拙著 撰著 彰著
# 鸿著 见微知著), these after it (著作 著名 著称 著述 著书 著者 著录 著译), and 他著有《…》.
ZHU_BEFORE = frozenset("显卓编原论专土名巨译遗合昭拙撰彰鸿知")
ZHU_AFTER = frozenset("作名称述书者录译")
ZHU_OWNER = frozenset("他她其曾共均")
# 着 words 著 opens: 着力 着眼 着重 着手 着想 着落 着陆 着装 着迷 着急 着凉 着火 着魔 着色 着意 着笔 着墨 着实
ZHE_AFTER = frozenset("力眼重手想落陆装迷急凉火魔色意笔墨实")
# The last character of a verb (or preposition) the particle 着 follows: 随着 本着 沿着 朝着 向着 顺着
# 接着 跟着 沉着 执着 穿着 衣着 附着 怀着 抱着 带着 有着 存在着 面临着 肩负着 承担着 意味着 标志着
# 发挥着 保持着 围绕着 充满着 经历着 见证着 激励着 鼓舞着 进行着 发展着 变化着 继续着 决定着 起着
# 阻碍着 打着 过着 威胁着 藏着 当着 占着 受着 危害着 托着 关系着 推动着 代表着 体现着 创造着
# 覆盖着 承载着 硬着 闪耀着 背着 等待着 看着 想着 说着 笑着 走着 坐着 站着 躺着 拿着 忙着 挂着 写着
# 记着 活着 睡着 盼着 含着 守着 护着 追着 望着 盯着 靠着 听着 唱着 跳着 干着 做着 留着 保存着 蕴含着
# 饱含着 隐藏着 透着 映着 照着 刻着 印着 扛着 挑着 提着 举着 握着 捧着 顶着 戴着 披着 系着 扣着
# 牵着 拉着 拖着 赶着 奔着 跑着 飞着 流着 亮着 燃烧着 冒着 散发着 洋溢着 伴随着 影响着 引领着 为着
# 对着 腐蚀着 关心着 交织着 孕育着 制约着 保卫着 团结着 吸引着 束缚着 凝聚着 实践着 具备着 潜伏着 警惕着
# 损伤着 展开着 呼喊着 洗涤着 振奋着 闹着 笼罩着 遭遇着 增长着 领导着 依仗着 夹着 侵犯着 破坏着
# 改变着 占据着 注视着 丰富着 吮着 呼唤着 盘踞着 揹著 (Taiwan 背着, which t2s keeps).  Never a character that
# opens a zhù word (合著 论著 名著).
ZHE_BEFORE = frozenset(
    "随本沿朝向顺接跟沉执穿衣附怀抱带有在临负担味志挥持绕满历证励舞行展化续定起碍打过胁藏当占受害托系"
    "动表现造盖载硬耀背待看想说笑走坐站躺拿忙挂写记活睡盼含守护追望盯靠听唱跳干做留存蕴饱隐透映照刻印"
    "扛挑提举握捧顶戴披扣牵拉拖赶奔跑飞流亮烧冒散溢伴响领"
    "为对蚀心织育约卫结引缚聚践备伏惕伤开喊涤奋闹罩遇长导仗夹犯坏变据视富吮唤踞揹"
)
_ZHU_RE = re.compile("著")
NEIGHBOR_WS = frozenset(" \t\u3000\u00a0\r\n")  # skipped when looking for a neighbour (显 著 -> 显著 later)


def prev_char(text: str, i: int) -> str:
    """The character before position ``i``, across whitespace ('' at the start)."""
    while i > 0 and text[i - 1] in NEIGHBOR_WS:
        i -= 1
    return text[i - 1] if i > 0 else ""


def next_char(text: str, i: int) -> str:
    """The character at or after position ``i``, across whitespace ('' at the end)."""
    n = len(text)
    while i < n and text[i] in NEIGHBOR_WS:
        i += 1
    return text[i] if i < n else ""


def is_zhe(before: str, after: str) -> bool:
    """Does a 著 between these neighbours read 着?  zhù contexts win over 着 ones (显著重要, 著名)."""
    if before in ZHU_BEFORE or after in ZHU_AFTER or (after == "有" and before in ZHU_OWNER):
        return False
    return before in ZHE_BEFORE or after in ZHE_AFTER


def zhe_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the 著 in ``text`` (already converted t2s) that are 着."""
    if "著" not in text:
        return []
    return [(m.start(), m.end()) for m in _ZHU_RE.finditer(text)
            if is_zhe(prev_char(text, m.start()), next_char(text, m.end()))]
