"""Filters on recognised text: joining, repetition repair, script conversion, full-width punctuation,
的/地/得 fixes.

Pure functions on strings; no model is involved.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from functools import lru_cache

from hushscribe.errors import HushError

# Languages written without spaces between words (ISO 639 codes).
SPACELESS_LANGUAGES = frozenset({"zh", "yue", "ja", "th", "lo", "my", "km", "bo"})

# Languages whose text OpenCC may convert between Simplified and Traditional.
CHINESE_LANGUAGES = frozenset({"zh", "yue"})

SCRIPT_SIMPLIFIED = "simplified"
SCRIPT_TRADITIONAL = "traditional"
SCRIPTS = (SCRIPT_SIMPLIFIED, SCRIPT_TRADITIONAL)

# OpenCC configurations; Cantonese gets the Hong Kong variant because that is where it is written.
OPENCC_TO_SIMPLIFIED = "t2s"
OPENCC_TO_TRADITIONAL = "s2t"
OPENCC_TO_TRADITIONAL_HK = "s2hk"

# Code points of scripts written without spaces: CJK ideographs, kana, bopomofo, Thai, Lao,
# Tibetan, Myanmar, Khmer.
SPACELESS_LETTER_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # halfwidth katakana
    (0x20000, 0x3134F),  # CJK extensions B-G
)
# Full-width punctuation never takes a space on either side, whatever script is next to it.
CJK_PUNCTUATION_RANGES = (
    (0x3000, 0x303F),  # CJK symbols and punctuation: 。、「」
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFF65),  # full-width forms ，！？ and halfwidth CJK punctuation
    (0xFFE0, 0xFFEF),  # full-width signs
)
HAN_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"  # a regex class body
CJK_IDEOGRAPH_RE = re.compile(f"[{HAN_CHARS}]")

# Boundary kinds for join_texts.
_PUNCT, _SPACELESS, _SPACED, _AMBIGUOUS = "punct", "spaceless", "spaced", "ambiguous"


def base_language(language: str | None) -> str | None:
    """'zh-CN' -> 'zh', 'zh-en' -> 'zh' (code-switched text is spaced like its first language)."""
    if not language:
        return None
    return re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0] or None


def _in_ranges(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in ranges)


def is_spaceless(ch: str) -> bool:
    """A character of a script written without spaces (Chinese, Japanese, Thai, …): text may break
    before or after it, and it needs no space next to its own kind."""
    return _in_ranges(ch, SPACELESS_LETTER_RANGES) or _in_ranges(ch, CJK_PUNCTUATION_RANGES)


def _boundary_kind(ch: str) -> str:
    if _in_ranges(ch, CJK_PUNCTUATION_RANGES):
        return _PUNCT
    if _in_ranges(ch, SPACELESS_LETTER_RANGES):
        return _SPACELESS
    if ch.isalpha():  # Latin, Cyrillic, Hangul (Korean is written with spaces), ...
        return _SPACED
    return _AMBIGUOUS  # digits, ASCII punctuation, symbols


def _separator(left: str, right: str, left_lang: str | None, right_lang: str | None) -> str:
    kinds = {_boundary_kind(left[-1]), _boundary_kind(right[0])}
    if _PUNCT in kinds or kinds == {_SPACELESS}:
        return ""
    if _SPACED in kinds:
        return " "
    # Digits or ASCII punctuation at the boundary: the languages decide.
    languages = {base_language(lang) for lang in (left_lang, right_lang)} - {None}
    return "" if languages and languages <= SPACELESS_LANGUAGES else " "


def join_texts(parts: list[tuple[str, str | None]]) -> str:
    """Join (text, ISO language) pieces in order, spaced as the characters at each boundary want."""
    pieces = [(text.strip(), lang) for text, lang in parts if text and text.strip()]
    if not pieces:
        return ""
    out = [pieces[0][0]]
    for (left, left_lang), (right, right_lang) in zip(pieces, pieces[1:]):
        out.append(_separator(left, right, left_lang, right_lang))
        out.append(right)
    return "".join(out)


# Longest repeated unit (characters, separators included) that repetition repair looks for.
MAX_LOOP_UNIT_CHARS = 40
# Separators a loop's last copy may lack ("Thank you. Thank you." ends without the space).
LOOP_SEPARATORS = " \t\n,，、.。;；!！?？"


@lru_cache(maxsize=8)
def _loop_pattern(max_repeats: int) -> re.Pattern[str]:
    # Lazy unit: the shortest unit that repeats more than max_repeats times in a row.
    return re.compile(r"(.{1,%d}?)\1{%d,}" % (MAX_LOOP_UNIT_CHARS, max_repeats), re.DOTALL)


def _common_prefix(text: str, start: int, unit: str) -> str:
    n = 0
    while n < len(unit) and start + n < len(text) and text[start + n] == unit[n]:
        n += 1
    return unit[:n]


# Text that zlib packs smaller than this is repetitive: a loop whose copies differ (Whisper's own threshold).
MAX_COMPRESSION_RATIO = 2.4


def loops(text: str) -> bool:
    """Whether recognised text has fallen into a loop: more than four copies of a unit in a row, or copies that
    differ a little (their separators, a character) and still pack as tightly as a loop does."""
    data = text.encode("utf-8")
    return repair_repetitions(text)[1] or len(data) / max(1, len(zlib.compress(data))) > MAX_COMPRESSION_RATIO


def repair_repetitions(text: str, *, max_repeats: int = 4) -> tuple[str, bool]:
    """Cut each run of more than `max_repeats` consecutive copies of a unit (up to
    MAX_LOOP_UNIT_CHARS characters, separators included) down to `max_repeats` copies.

    Returns (text, whether anything was cut). Units without a letter (numbers such as
    1000000, "……", spaces) are never cut: their repeats are meaningful, not loops.
    """
    if max_repeats < 1:
        raise ValueError(f"max_repeats must be at least 1, got {max_repeats}")
    pattern = _loop_pattern(max_repeats)
    out: list[str] = []
    pos = 0
    cut = False
    while (match := pattern.search(text, pos)) is not None:
        unit, start, end = match.group(1), match.start(), match.end()
        if not any(ch.isalpha() for ch in unit):
            out.append(text[pos:end])
            pos = end
            continue
        partial = _common_prefix(text, end, unit)
        kept = unit * max_repeats
        if partial and partial.rstrip(LOOP_SEPARATORS) == unit.rstrip(LOOP_SEPARATORS):
            # The last copy lacks its separator: keep that form for the last kept copy.
            kept = unit * (max_repeats - 1) + partial
            end += len(partial)
        elif partial and not text[end + len(partial):].strip():
            end += len(partial)  # a copy cut short at the end of the text (token cap)
        out.append(text[pos:start] + kept)
        pos = end
        cut = True
    out.append(text[pos:])
    return "".join(out), cut


def _is_chinese(text: str, language: str | None) -> bool:
    lang = base_language(language)
    if lang is None:
        return CJK_IDEOGRAPH_RE.search(text) is not None
    return lang in CHINESE_LANGUAGES


@lru_cache(maxsize=None)
def _opencc_converter(config: str):
    import opencc  # imported late: only Chinese output needs it

    return opencc.OpenCC(config)


def check_script(script: str | None) -> None:
    if script is not None and script not in SCRIPTS:
        raise HushError(f"unknown script {script!r}: use {' or '.join(map(repr, SCRIPTS))}, "
                        "or leave it unset for Simplified Chinese")


def convert_script(text: str, language: str | None, script: str | None) -> str:
    """Write Chinese text in Simplified or Traditional characters; other languages are untouched.

    `script` None means Simplified. Cantonese ('yue') gets Hong Kong Traditional.
    """
    check_script(script)
    if not text or not _is_chinese(text, language):
        return text
    if script == SCRIPT_TRADITIONAL:
        config = OPENCC_TO_TRADITIONAL_HK if base_language(language) == "yue" else OPENCC_TO_TRADITIONAL
    else:
        config = OPENCC_TO_SIMPLIFIED
    return _opencc_converter(config).convert(text)


# ---- full-width punctuation --------------------------------------------------------------
# Next to these an ASCII mark is Chinese or Japanese punctuation: Han, kana, bopomofo, and CJK
# punctuation (、「」《》（）). Hangul is left out: Korean is written with ASCII punctuation.
CJK_PUNCTUATION_CONTEXT = (HAN_CHARS + "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"  # kana
                           "\u3100-\u312f"  # bopomofo
                           "\u3001-\u303f\uff08\uff09")  # 、。「」《》〇々 and full-width ( )
TO_FULL_WIDTH = str.maketrans(",.?!:;", "，。？！：；")
# A mark (or a run of ?/!) with CJK before it and CJK or a line's end after it, Whisper's spaces around
# it included. 3.5, 1,000, 10:30, e.g., URLs and "..." never have CJK on both sides of one mark.
_ASCII_MARK_IN_CJK_RE = re.compile(
    rf"(?<=[{CJK_PUNCTUATION_CONTEXT}])[ \t]*([,.:;]|[?!]+)[ \t]*(?=[{CJK_PUNCTUATION_CONTEXT}]|[\r\n]|\Z)")


def cjk_punctuation(text: str) -> str:
    """Write ASCII , . ? ! : ; between CJK characters (or after one at a line's end) as ，。？！：；,
    dropping the spaces around the mark. Marks next to Latin letters, digits or Hangul are kept,
    and so is "..." (Chinese …… is a rewrite, not the same mark full-width; Whisper's dots often mark a cut).
    """
    return _ASCII_MARK_IN_CJK_RE.sub(lambda m: m.group(1).translate(TO_FULL_WIDTH), text)


# ---- 的/地/得 -----------------------------------------------------------------------------
# Each rule changes only forms that are wrong in every reading; ambiguous ones are left alone.

# (a) verb/adjective + 的 + degree complement -> 得 (跑的很快 -> 跑得很快).
# Verbs and adjectives that take a degree complement, each with the preceding characters that
# would make it part of a noun instead (同学, 校长, 小说, 天气, ...).
COMPLEMENT_HEADS: dict[str, str] = {
    "高兴": "", "开心": "", "准备": "", "完成": "", "表现": "", "打扫": "", "收拾": "",
    "跑": "", "走": "", "说": "小传学", "讲": "", "做": "", "写": "", "唱": "", "跳": "",
    "画": "", "学": "同大中小科文数化哲医法美力光神", "吃": "", "睡": "",
    "长": "家校班队部市县局院组处科省社厂事船机车学师兄首", "过": "不", "变": "", "笑": "",
    "哭": "", "玩": "", "打": "", "干": "饼", "弄": "", "搞": "", "活": "", "洗": "",
    "来": "原本后将未从以看", "去": "", "想": "理思梦感", "看": "", "听": "",
    "记": "日笔书标印", "算": "预打", "累": "", "忙": "", "气": "天空运勇力脾名语客", "急": "",
}
# Degree words that open a complement (很快, 非常好).
DEGREE_WORDS = ("越来越", "非常", "十分", "特别", "相当", "有点", "有些", "比较", "这么", "那么",
                "很", "太", "真", "挺", "更", "还")
# Manner or state words after a degree word. Deliberately absent: 对/有道理 (你说的很对 is
# right as written), 多/少 (吃的很多: 吃的 is "food"), 大/小 (做的很小: the thing made is small).
MANNER_WORDS = ("漂亮", "清楚", "明白", "认真", "仔细", "流利", "熟练", "辛苦", "开心", "高兴",
                "愉快", "快乐", "顺利", "成功", "精彩", "出色", "完美", "干净", "整齐", "充分",
                "充实", "周到", "厉害", "伤心", "难过", "努力", "好看", "好听", "不错",
                "快", "慢", "好", "棒", "帅", "美", "早", "晚", "久", "远", "高", "准", "累", "饱", "差", "糟")
# Complements that need no degree word (累的不行, 做的不错).
DIRECT_COMPLEMENTS = ("不得了", "好极了", "不错", "不好", "不行", "要命", "飞快")
# A complement followed by these reads as describing a thing: 做的很好吃, 做的很美味, 写的很好的书.
NOUN_READING_NEXT = "吃喝玩用味食的"
# 你说的不错 means "what you said is right": 的 is correct there.
COMPLEMENT_EXCEPTIONS = frozenset({("说", "不错"), ("讲", "不错")})

# (b) adverbial + 的 + verb -> 地 (慢慢的走 -> 慢慢地走).
ADVERBIAL_WORDS = ("认真", "仔细", "努力", "大声", "小声", "悄悄", "默默", "渐渐", "不停", "飞快",
                   "轻松", "耐心", "热情", "高兴", "开心", "慢慢", "偷偷", "紧紧", "狠狠", "轻轻",
                   "静静", "好好", "早早", "远远", "暗暗", "细细", "牢牢", "稳稳", "匆匆", "缓缓",
                   "死死", "乖乖", "快快")
# Reduplicated family words (爸爸妈妈的) are nouns, not AABB adverbials.
KINSHIP_CHARS = "爸妈哥姐弟妹爷奶叔姨舅婶伯公婆宝"
# Verbs after an adverbial, each with the next characters that would make it a noun
# (认真的态度 has no verb; 热情的问候, 认真的读者, 大大的笑容 are nouns).
ADVERBIAL_VERBS: dict[str, str] = {
    "点头": "", "摇头": "", "离开": "", "告诉": "",
    "说": "法明", "走": "廊势", "跑": "道车", "看": "法", "听": "众力觉", "想": "法象",
    "笑": "容脸声话意", "哭": "声腔", "问": "题候号", "答": "案卷复", "叫": "声", "喊": "声",
    "写": "作法", "读": "者物书音", "做": "法", "吃": "货", "喝": "彩", "坐": "姿标位垫",
    "站": "台长点位", "望": "远", "跟": "班", "进": "步展程度口", "出": "路口息色品版处身租",
    "打": "法扮算", "拉": "", "抱": "负", "握": "", "盯": "", "去": "处向年",
    "来": "源历信客电", "睡": "眠衣姿", "等": "级号",
}
# Verbs that are also nouns (认真的工作态度): changed only with an aspect marker after them.
NOUN_VERBS = ("回答", "学习", "工作", "发现")
ASPECT_MARKERS = ("起来", "下去", "了", "着", "过")

_COMPLEMENT_HEAD_RE = re.compile("(%s)的" % "|".join(sorted(COMPLEMENT_HEADS, key=len, reverse=True)))
_ADVERBIAL_RE = re.compile(
    r"(?:(?P<a>[\u4e00-\u9fff])(?P=a)(?!(?P=a))(?P<b>[\u4e00-\u9fff])(?P=b)|%s)的"
    % "|".join(ADVERBIAL_WORDS))

# (c) typos of fixed words: 觉的 -> 觉得, 显的 -> 显得, unless the characters before make a
# word of their own (睡觉的, 感觉的, 明显的).
WORD_TYPOS = (
    ("觉的", "觉得", "睡午感知发视听味嗅触直错幻自察警先后一好懒笼", ("不知不",)),
    ("显的", "显得", "明凸突彰浅外尽", ()),
)


def _longest_prefix(text: str, pos: int, words: Iterable[str]) -> str | None:
    for word in sorted(words, key=len, reverse=True):
        if text.startswith(word, pos):
            return word
    return None


def _complement_at(text: str, pos: int) -> str | None:
    """The degree complement starting at `pos` (很快, 不错, 非常好), or None."""
    direct = _longest_prefix(text, pos, DIRECT_COMPLEMENTS)
    degree = _longest_prefix(text, pos, DEGREE_WORDS)
    if degree is not None:
        after = pos + len(degree)
        word = _longest_prefix(text, after, MANNER_WORDS + DIRECT_COMPLEMENTS)
        if word is not None:
            return degree + word
    return direct


def _complement_de(m: re.Match[str]) -> str:
    text, head = m.string, m.group(1)
    before = text[m.start() - 1:m.start()]
    complement = _complement_at(text, m.end())
    if complement is None or (before and before in COMPLEMENT_HEADS[head]):
        return m.group(0)
    after = m.end() + len(complement)
    next_char = text[after:after + 1]
    if (next_char and next_char in NOUN_READING_NEXT) or (head, complement) in COMPLEMENT_EXCEPTIONS:
        return m.group(0)
    return head + "得"


def _verb_at(text: str, pos: int) -> bool:
    """Whether an unambiguous verb starts at `pos`."""
    noun_verb = _longest_prefix(text, pos, NOUN_VERBS)
    if noun_verb is not None:
        return _longest_prefix(text, pos + len(noun_verb), ASPECT_MARKERS) is not None
    verb = _longest_prefix(text, pos, ADVERBIAL_VERBS)
    if verb is None:
        return False
    next_char = text[pos + len(verb):pos + len(verb) + 1]
    return not (next_char and next_char in ADVERBIAL_VERBS[verb])


def _adverbial_de(m: re.Match[str]) -> str:
    reduplicated = m.group("a") is not None
    if reduplicated and (m.group("a") in KINSHIP_CHARS or m.group("b") in KINSHIP_CHARS):
        return m.group(0)
    if not _verb_at(m.string, m.end()):
        return m.group(0)
    return m.group(0)[:-1] + "地"


def _fix_word_typo(text: str, wrong: str, right: str, blocked_chars: str,
                   blocked_words: tuple[str, ...]) -> str:
    def replace(m: re.Match[str]) -> str:
        source, start = m.string, m.start()
        if (start and source[start - 1] in blocked_chars) or source.endswith(blocked_words, 0, start):
            return m.group(0)
        return right

    return re.sub(wrong, replace, text)


def fix_de(text: str) -> str:
    """Fix clear misuses of 的 for 得/地 in Mandarin text (opt-in; ambiguous cases are kept)."""
    text = _COMPLEMENT_HEAD_RE.sub(_complement_de, text)
    text = _ADVERBIAL_RE.sub(_adverbial_de, text)
    for typo in WORD_TYPOS:
        text = _fix_word_typo(text, *typo)
    return text


def filtered(raw: str, language: str | None, *, script: str | None = None,
             fix_de_too: bool = False) -> tuple[str, bool]:
    """Recognised text as every surface shows it: loops cut back, Chinese in its script with full-width
    punctuation, 的/地/得 repaired in Mandarin when asked. Returns (text, whether a loop was cut)."""
    clean, repaired = repair_repetitions(raw.strip())
    clean = convert_script(clean, language, script)
    if language in CHINESE_LANGUAGES:
        clean = cjk_punctuation(clean)  # Whisper writes ASCII commas between Chinese clauses
    if fix_de_too and language == "zh":
        clean = fix_de(clean)
    return clean, repaired
