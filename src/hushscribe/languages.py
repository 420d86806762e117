"""Language codes: users say zh, yue, en (or Chinese, Cantonese); engines want their own names."""

from __future__ import annotations

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
