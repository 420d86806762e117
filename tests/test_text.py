"""Tests for hushscribe.text: joining, repetition repair, script conversion, full-width punctuation, 的/地/得."""

from __future__ import annotations

import random
import time

import pytest

from hushscribe.errors import HushError
from hushscribe.text import (
    SPACELESS_LANGUAGES,
    cjk_punctuation,
    convert_script,
    fix_de,
    join_texts,
    loops,
    repair_repetitions,
)

# ---- join_texts ------------------------------------------------------------------------------


def test_spaceless_languages():
    assert {"zh", "yue", "ja", "th", "lo", "my", "km", "bo"} == SPACELESS_LANGUAGES
    assert "ko" not in SPACELESS_LANGUAGES


@pytest.mark.parametrize("parts, expected", [
    ([("你好。", "zh"), ("我很好", "zh")], "你好。我很好"),
    ([("你好", "zh"), ("我很好", "zh")], "你好我很好"),
    ([("Hello.", "en"), ("World", "en")], "Hello. World"),
    ([("我们用", "zh"), ("deep learning", "zh")], "我们用 deep learning"),
    ([("deep learning", "zh"), ("做", "zh")], "deep learning 做"),
    ([("こんにちは", "ja"), ("世界", "ja")], "こんにちは世界"),
    ([("안녕하세요", "ko"), ("반갑습니다", "ko")], "안녕하세요 반갑습니다"),
    ([("สวัสดี", "th"), ("ครับ", "th")], "สวัสดีครับ"),
    ([("Thank you.", "en"), ("谢谢", "zh")], "Thank you. 谢谢"),
    ([("你好，", "zh"), ("Bob", "en")], "你好，Bob"),
    ([("我有", "zh"), ("3个苹果", "zh")], "我有3个苹果"),
    ([("version", "en"), ("2", "en")], "version 2"),
    ([("2023年", "zh-en"), ("3月", "zh-en")], "2023年3月"),
    ([("1", None), ("2", None)], "1 2"),
    ([("  你好  ", "zh"), ("", "zh"), ("   ", "zh"), (" 世界 ", "zh")], "你好世界"),
    ([], ""),
])
def test_join_texts(parts, expected):
    assert join_texts(parts) == expected


# ---- repair_repetitions ------------------------------------------------------------------------


@pytest.mark.parametrize("prefix, unit, copies", [
    ("我最喜欢夏天，", "那里一朵，", 40),
    ("", "Thank you. ", 50),
    ("", "啊", 200),
    ("他说", "哈哈嘿", 30),
    ("", "我爱你，", 30),
    ("So ", "hahaha", 20),
])
def test_repair_repetitions_cuts_loops(prefix, unit, copies):
    text, cut = repair_repetitions(prefix + unit * copies)
    assert cut is True
    assert text.startswith(prefix)
    core = unit.strip(" ，")
    assert 1 <= text.count(core) <= 4
    assert len(text) <= len(prefix) + 4 * len(unit)


def test_repair_repetitions_keeps_tail_and_clean_last_copy():
    assert repair_repetitions(("Thank you. " * 50).strip()) == (
        "Thank you. Thank you. Thank you. Thank you.", True)
    assert repair_repetitions("我爱你，" * 30 + "我爱他") == ("我爱你，" * 4 + "我爱他", True)


def test_repair_repetitions_drops_copy_cut_short_at_end():
    text, cut = repair_repetitions("那里一朵，" * 40 + "那里一")
    assert cut and text == "那里一朵，" * 4


def test_repair_repetitions_max_repeats():
    assert repair_repetitions("啊" * 10, max_repeats=2) == ("啊啊", True)
    with pytest.raises(ValueError):
        repair_repetitions("啊", max_repeats=0)


@pytest.mark.parametrize("text", [
    "这个这个", "谢谢谢谢", "no, no, no", "哈哈哈", "very very good", "一二三四", "1111", "。。。",
    "今天天气很好，我们去公园散步吧。", "The quick brown fox jumps over the lazy dog.",
    "价格是1000000元", "他说……………………", "", "Thank you. Thank you. Thank you. Thank you.",
])
def test_repair_repetitions_leaves_legitimate_text(text):
    assert repair_repetitions(text) == (text, False)


def test_repair_repetitions_is_not_pathological():
    ordinary = ("今天天气很好，我们去公园散步吧。The quick brown fox jumps over the lazy dog. " * 60)[:5000]
    for text in (ordinary, "那里一朵，" * 1000, "啊" * 5000, "ab" * 2500):
        start = time.perf_counter()
        repair_repetitions(text)
        assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("text", [
    "我不会害怕,我不会害怕我不会害怕。我不会害怕，我不会害怕 我不会害怕我不会害怕,我不会害怕",  # copies differ
    "鞋子和鞋子的鞋子和鞋子的鞋子和鞋子的鞋子和鞋子的鞋子和鞋子的鞋子和鞋子的",
    "And again " * 6,
    "蛮甜的香蛮甜的蛮甜的香蛮甜的蛮甜的香蛮甜的蛮甜的香蛮甜的蛮甜的香",
])
def test_loops_finds_loops_whose_copies_differ(text):
    assert loops(text)


@pytest.mark.parametrize("text", [
    "", "这个这个", "no, no, no", "Thank you. Thank you. Thank you. Thank you.",
    "对，这就是我，万人敬仰的太乙真人。我想问我在滨海新区有房。",
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
    "A gold ring will please most any girl. The long journey home took a year. She saw a cat in the neighbor's "
    "house. A pink shell was found on the sandy beach. Small children came to see him.",
])
def test_loops_leaves_ordinary_text(text):
    assert not loops(text)


# ---- convert_script ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, language, script, expected", [
    ("頭髮後面", "zh", None, "头发后面"),
    ("頭髮後面", "zh", "simplified", "头发后面"),
    ("头发后面", "zh", "traditional", "頭髮後面"),
    ("头发后面", "zh-en", "traditional", "頭髮後面"),
    ("頭髮後面", None, None, "头发后面"),
    ("为什么", "yue", "traditional", "為什麼"),  # Hong Kong form, not OpenCC's generic 爲
    ("为什么", "zh", "traditional", "爲什麼"),
    ("後で食べます", "ja", None, "後で食べます"),
    ("後で食べます", "ja", "simplified", "後で食べます"),
    ("學校", "ko", "simplified", "學校"),
    ("hello", "en", "traditional", "hello"),
    ("hello", None, None, "hello"),
    ("", "zh", "traditional", ""),
])
def test_convert_script(text, language, script, expected):
    assert convert_script(text, language, script) == expected


def test_convert_script_rejects_unknown_script():
    with pytest.raises(HushError, match="traditional"):
        convert_script("你好", "zh", "cyrillic")
    with pytest.raises(HushError):
        convert_script("hello", "en", "Traditional")


# ---- cjk_punctuation ---------------------------------------------------------------------------

CJK_PUNCTUATION_CASES = [
    # between CJK characters, Whisper's spaces dropped
    ("服務態度, 當後過", "服務態度，當後過"),
    ("个人邮计划,环旧沙事后", "个人邮计划，环旧沙事后"),
    ("你好.我是小明", "你好。我是小明"),
    ("注意:明天开会;不要迟到.", "注意：明天开会；不要迟到。"),
    ("他说 , 好", "他说，好"),
    ("他说:「你好」,然后走了", "他说：「你好」，然后走了"),
    ("今日は晴れ.明日は雨", "今日は晴れ。明日は雨"),
    # at the end of the text or of a line
    ("你好吗?", "你好吗？"),
    ("真的?!", "真的？！"),
    ("太好了!!! 我们走吧", "太好了！！！我们走吧"),
    ("谢谢. ", "谢谢。"),
    ("第一行,\n第二行.", "第一行，\n第二行。"),
    (" 你好,世界", " 你好，世界"),  # Whisper's leading space is the joiner's business
    ("我用 Python 写代码, 你呢?", "我用 Python 写代码，你呢？"),
    # English keeps its own: a mark with Latin on either side
    ("我用 Python, Java 和 C++", "我用 Python, Java 和 C++"),
    ("所以 data, 不管你是做 machine learning", "所以 data, 不管你是做 machine learning"),
    ("我说, OK", "我说, OK"),
    ("例如 e.g., U.S. 政府", "例如 e.g., U.S. 政府"),
    ("访问 www.example.com 或 https://例子.com/a?b=1", "访问 www.example.com 或 https://例子.com/a?b=1"),
    ("Hello, world. How are you?", "Hello, world. How are you?"),
    # numbers and units
    ("价格是3.5元", "价格是3.5元"),
    ("一共1,000元", "一共1,000元"),
    ("会议在10:30开始", "会议在10:30开始"),
    ("重2.5kg", "重2.5kg"),
    ("比分是2:1", "比分是2:1"),
    ("1.你好", "1.你好"),
    # ellipses are kept as written
    ("他想了想...好吧", "他想了想...好吧"),
    ("等等... 然后", "等等... 然后"),
    ("嗯...", "嗯..."),
    # Korean is written with ASCII punctuation
    ("안녕하세요, 반갑습니다. 뭐예요?", "안녕하세요, 반갑습니다. 뭐예요?"),
    ("學校, 한국어", "學校, 한국어"),
    # already full-width, spaces after it included
    ("一朵， 真比天上的星星还多。 夜晚", "一朵， 真比天上的星星还多。 夜晚"),
    ("", ""),
]


@pytest.mark.parametrize("text, expected", CJK_PUNCTUATION_CASES)
def test_cjk_punctuation(text, expected):
    assert cjk_punctuation(text) == expected


def test_cjk_punctuation_is_idempotent():
    for _, expected in CJK_PUNCTUATION_CASES:
        assert cjk_punctuation(expected) == expected
    rng = random.Random(16)
    alphabet = "你好世界かな한국ab19 ,.?!:;\n。，「」"
    for _ in range(2000):
        once = cjk_punctuation("".join(rng.choices(alphabet, k=rng.randint(1, 12))))
        assert cjk_punctuation(once) == once


def test_cjk_punctuation_leaves_every_reference_alone(manifest):
    # References are written as people write: full-width in Chinese, ASCII elsewhere. The one
    # exception is an ASCII full stop after Chinese at the end of a reference, which is made full-width.
    fixes = {"zh/cosyvoice_pr1212_laoxu_conversational.wav": ("哼哼.", "哼哼。")}
    languages = {row["lang"] for row in manifest}
    assert {"zh", "yue", "en", "ko"} <= languages
    for row in manifest:
        text = row["text"]
        expected = text.replace(*fixes[row["file"]]) if row["file"] in fixes else text
        assert cjk_punctuation(text) == expected, row["file"]


def test_cjk_punctuation_is_fast():
    text = "服務態度, 當後過. 我用 Python, Java 和 C++ 写了3.5个程序... 你呢? " * 2000
    start = time.perf_counter()
    cjk_punctuation(text)
    assert time.perf_counter() - start < 0.5


# ---- fix_de ------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrong, right", [
    # 得 before a degree complement
    ("他跑的很快", "他跑得很快"),
    ("你说的很好", "你说得很好"),
    ("做的不错", "做得不错"),
    ("写的非常好", "写得非常好"),
    ("他长的很帅", "他长得很帅"),
    ("累的不行", "累得不行"),
    ("高兴的不得了", "高兴得不得了"),
    ("房间打扫的很干净", "房间打扫得很干净"),
    ("她长的很好看", "她长得很好看"),
    ("生活的非常充实", "生活得非常充实"),
    # 地 before a verb
    ("慢慢的走", "慢慢地走"),
    ("轻轻的说", "轻轻地说"),
    ("静静的看着", "静静地看着"),
    ("高高兴兴的去", "高高兴兴地去"),
    ("他认真的说：", "他认真地说："),
    ("大声的喊", "大声地喊"),
    ("悄悄的离开了", "悄悄地离开了"),
    ("他努力的工作着", "他努力地工作着"),
    # fixed-word typos
    ("我觉的很好", "我觉得很好"),
    ("他显的很累", "他显得很累"),
])
def test_fix_de_fixes_clear_cases(wrong, right):
    assert fix_de(wrong) == right


@pytest.mark.parametrize("text", [
    "我的很多朋友",
    "他的很好看的书",
    "吃的很多",
    "你说的很对",
    "你说的不错",
    "你说的很有道理",
    "高兴的事",
    "认真的态度",
    "认真的工作态度",
    "这是一个慢慢的过程",
    "慢慢的",
    "努力的人",
    "妈妈做的很好吃",
    "他写的非常好的书",
    "这部小说的特别之处",
    "他说的十分钟后到",
    "我们校长的很好的朋友",
    "大大的笑容",
    "热情的问候",
    "认真的读者",
    "爸爸妈妈的笑",
    "红红的脸蛋",
    "睡觉的时候",
    "感觉的",
    "不知不觉的",
    "明显的变化",
    "他跑得很快，慢慢地走，我觉得很好。",
    "Hello, world.",
])
def test_fix_de_leaves_correct_or_ambiguous_text(text):
    assert fix_de(text) == text
