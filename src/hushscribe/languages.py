"""Language codes: users say zh, yue, en (or Chinese, Cantonese); engines want their own names."""

from __future__ import annotations

import re

from hushscribe.errors import HushError

# ISO 639 code → English name (the names Qwen3-ASR reads and writes, plus Whisper's common ones).
LANGUAGE_NAMES = {
    "zh": "Chinese", "yue": "Cantonese", "en": "English", "ar": "Arabic", "de": "German", "fr": "French",
    "es": "Spanish", "pt": "Portuguese", "id": "Indonesian", "it": "Italian", "ko": "Korean", "ru": "Russian",
    "th": "Thai", "vi": "Vietnamese", "ja": "Japanese", "tr": "Turkish", "hi": "Hindi", "ms": "Malay",
    "nl": "Dutch", "sv": "Swedish", "da": "Danish", "fi": "Finnish", "pl": "Polish", "cs": "Czech",
    "fil": "Filipino", "fa": "Persian", "el": "Greek", "ro": "Romanian", "hu": "Hungarian", "mk": "Macedonian",
    "uk": "Ukrainian", "he": "Hebrew", "no": "Norwegian", "ca": "Catalan", "bg": "Bulgarian", "hr": "Croatian",
    "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian", "lt": "Lithuanian", "lv": "Latvian", "et": "Estonian",
    "ta": "Tamil", "ur": "Urdu", "bn": "Bengali", "sw": "Swahili",
}
# Other spellings people use for the same languages.
ALIASES = {
    "cmn": "zh", "zh-cn": "zh", "zh-tw": "zh", "zh-hans": "zh", "zh-hant": "zh", "mandarin": "zh",
    "zh-hk": "yue", "zh-yue": "yue", "tl": "fil", "tagalog": "fil", "iw": "he",
}
AUTO = ("", "auto", "detect")


def normalize_language(value: str | None) -> str | None:
    """The ISO code for `value` (a code or an English name), or None for automatic detection."""
    if value is None or value.strip().lower() in AUTO:
        return None
    key = value.strip().lower().replace("_", "-")
    if key in LANGUAGE_NAMES:
        return key
    if key in ALIASES:
        return ALIASES[key]
    by_name = {name.lower(): code for code, name in LANGUAGE_NAMES.items()}
    if key in by_name:
        return by_name[key]
    raise HushError(
        f"unknown language '{value}'; use a code such as zh, yue, en, ja, ko, fr, de, es or 'auto' to detect it"
    )


# Written Cantonese and written Mandarin use different characters for the same everyday words (嘅/的, 係/是,
# 咗/了, 佢/他, 哋/們, 嗰/那, 冇/沒, 喺/在), in both scripts (OpenCC's Simplified writes 嗰 as 𠮶).
# Picked by their rates in HKCanCor (Cantonese speech) and jieba's word frequencies (Mandarin): each character
# below is at least ten times as common in the one as in the other.
_CANTONESE = frozenset("嘅咗佢哋嚟喺嗰𠮶啲冇嘢噉啱㗎喎㖞啩噃揾搵攞瞓諗谂攰咁睇畀乜吖")
_CANTONESE_HALF = frozenset("唔係咩俾")  # Mandarin writes these now and then: 唔 'hmm', 咩咩, 俾斯麦, 關係
_MANDARIN = frozenset("的是了他她它們们這这那沒没在說说咱啥哪吧麼么也很給给吃")
# Words that both write alike, or in which a character above means something else: not counted.
_SHARED_WORDS = re.compile("目的|的士|的確|的确|是否|了解|其他|其它|關係|係數|现在|現在|存在|實在|实在")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")


def cantonese_evidence(text: str) -> float:
    """How Cantonese `text` is written, from -1 (Mandarin) to 1: (Cantonese − Mandarin characters) / Chinese characters.

    A character only written Cantonese uses (嘅 咗 佢 哋 嚟 喺 嗰 啲 冇 嘢 咁 睇 …) counts +1, one that Mandarin writes
    now and then (唔 係 咩 俾) +½, one written Mandarin uses where Cantonese has its own (的 是 了 他 們 這 那 沒
    在 說 …) −1; words the two share (目的, 了解, 現在, 關係 …) count nothing. Above 0 is Cantonese as spoken; 0 is
    no evidence (too short, or formal Cantonese read from a script, which is written as standard Chinese).
    Whisper base has one language token for both, so the characters of a transcript are what tell them apart.
    """
    han = len(_HAN.findall(text))
    if not han:
        return 0.0
    text = _SHARED_WORDS.sub("", text)
    score = sum(1.0 if c in _CANTONESE else 0.5 if c in _CANTONESE_HALF else -1.0 if c in _MANDARIN else 0.0
                for c in text)
    return score / han
