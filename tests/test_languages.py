"""Tests for hushscribe.languages: telling written Cantonese from written Mandarin."""

from __future__ import annotations

import pytest

from hushscribe.languages import cantonese_evidence

# Two yue references are formal Cantonese written as standard Chinese (a storyteller's narration, a news-style
# commentary): no character in them says Cantonese, and one says Mandarin (的).
WRITTEN_AS_STANDARD_CHINESE = ("storytelling_gd0046360", "commentary_xg0011541_126000")


@pytest.mark.parametrize("text", [
    "佢哋琴日喺度食咗飯",  # they ate here yesterday
    "你講乜嘢呀？我唔知喎",
    "嗰啲嘢冇人要",
    "佢哋嘅屋企",  # Traditional and Simplified write these alike
    "原来王力宏系佢家中里面成就最低𠮶个",  # OpenCC's Simplified writes 嗰 as 𠮶
])
def test_colloquial_cantonese_is_positive(text):
    assert cantonese_evidence(text) > 0


@pytest.mark.parametrize("text", [
    "他们昨天在这里吃了饭",
    "你说什么？我不知道啊",
    "這是我們的關係，沒有別的",  # 係 in 關係 is Mandarin too
    "唔，这个我们再想想",  # Mandarin's 唔 'hmm' weighs half
])
def test_mandarin_is_not_positive(text):
    assert cantonese_evidence(text) <= 0


@pytest.mark.parametrize("text", ["", "hello world", "換一首歌", "中央政府推出個人遊計劃", "了解現在"])
def test_no_evidence_is_zero(text):
    assert cantonese_evidence(text) == 0.0


def test_range():
    assert cantonese_evidence("佢哋嘅") == 1.0
    assert cantonese_evidence("他們的") == -1.0


def test_shared_references(manifest):
    for row in manifest:
        evidence = cantonese_evidence(row["text"])
        if row["lang"] == "yue" and not any(name in row["file"] for name in WRITTEN_AS_STANDARD_CHINESE):
            assert evidence > 0, row["file"]
        else:
            assert evidence <= 0, row["file"]
