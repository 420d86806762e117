"""Build a random-initialised Qwen3-ASR checkpoint in the layout the *official* `qwen-asr` package loads.

Runs only in the official package's own environment (qwen-asr 0.0.6 with transformers 4.57.x): it
imports qwen_asr's own config/model/processor classes. hushscribe's tests never import it.

The folder holds what `qwen_asr.Qwen3ASRModel.from_pretrained(folder, ...)` reads:
  config.json             model_type "qwen3_asr", thinker_config{audio_config, text_config, token ids}
  model.safetensors       random weights (bf16 for the true sizes, float32 for tiny)
  generation_config.json  (written by save_pretrained; the official generate() ignores it, see below)
  tokenizer.json, tokenizer_config.json, vocab.json, merges.txt, special_tokens_map.json
  preprocessor_config.json  WhisperFeatureExtractor, 128 mel bins, processor_class Qwen3ASRProcessor
  chat_template.jinja     our template reproducing the official prompt layout

The tokenizer is the same idea as tests/qwen_checkpoint.py: a tiny byte-level BPE with the Qwen
special tokens appended (ids ~400, carried in config fields), so any model size works with it. The
prompt's token layout (system / user with audio placeholders / assistant) is the official one; only
its few text tokens are split differently from the real 151k vocabulary.

Note: the official `Qwen3ASRForConditionalGeneration.generate` hard-codes
eos_token_id=[151645, 151643] (the real <|im_end|>, <|endoftext|>), whatever the config says. In
the true-size checkpoints those ids are ordinary random rows; benchmarks force a fixed number of
new tokens anyway (bench/official_rows.py: max_new_tokens=N plus thinker min_new_tokens=N).

    python bench/official_checkpoint.py OUT_DIR [--size tiny|0.6b|1.7b]
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import sys
import types
from pathlib import Path

STAND_INS = ("nagisa", "librosa", "soundfile")


def install_stand_ins() -> list[str]:
    """qwen_asr imports nagisa (forced aligner), librosa and soundfile (file/URL loading, resampling)
    at import time. Its transcription path with (16 kHz numpy, 16000) input calls none of them, so an
    empty module stands in for each one that is not installed. Returns the names stood in for."""
    missing = []
    for name in STAND_INS:
        try:
            __import__(name)
        except ImportError:
            module = types.ModuleType(name)
            # a spec but no installed distribution: transformers' availability check says "absent"
            module.__spec__ = importlib.machinery.ModuleSpec(name, None)
            sys.modules[name] = module
            missing.append(name)
    return missing


STOOD_IN = install_stand_ins()

import torch  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import GenerationConfig, Qwen2TokenizerFast, WhisperFeatureExtractor  # noqa: E402
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX  # noqa: E402

from qwen_asr.core.transformers_backend import (  # noqa: E402
    Qwen3ASRConfig,
    Qwen3ASRForConditionalGeneration,
    Qwen3ASRProcessor,
)
from qwen_asr.inference.utils import SUPPORTED_LANGUAGES  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Shared with hushscribe's own random checkpoint (plain constants; that module needs only
# `transformers.Qwen2Tokenizer` and the Qwen2 pre-tokenize regex at import, both in 4.57 too).
from tests.qwen_checkpoint import (  # noqa: E402
    CHAT_TEMPLATE,
    NON_SPECIAL_ADDED,
    SIZES,
    SPECIAL_TOKENS,
    TRAINING_TEXT,
)


def build_tokenizer(vocab_size: int = 400) -> Qwen2TokenizerFast:
    """A tiny byte-level BPE with Qwen's pre-tokenizer, the Qwen special tokens after it, wrapped as
    the transformers-4.57 fast Qwen2 tokenizer with the named audio tokens the processor reads."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: never an unknown
        show_progress=False,
    )
    bpe.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    bpe.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    # <asr_text> is added but not special: decode(skip_special_tokens=True) keeps it for the parser
    bpe.add_tokens([AddedToken(t, special=False, normalized=False) for t in NON_SPECIAL_ADDED])
    return Qwen2TokenizerFast(
        tokenizer_object=bpe,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={  # become tokenizer.audio_token etc., read by Qwen3ASRProcessor
            "audio_token": "<|audio_pad|>",
            "audio_bos_token": "<|audio_start|>",
            "audio_eos_token": "<|audio_end|>",
        },
        model_max_length=65536,
        padding_side="left",
        errors="replace",
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )


def make_config(size: str, ids: dict[str, int], vocab_size: int) -> Qwen3ASRConfig:
    spec = SIZES[size]
    hidden = spec["text"]["hidden_size"]
    head_dim = spec["text"]["head_dim"]
    # real Qwen3-ASR: interleaved MRoPE sections [24, 20, 20] over head_dim/2 = 64
    mrope = [24, 20, 20] if head_dim == 128 else [head_dim // 4, head_dim // 8, head_dim // 8]
    tied = size != "tiny"
    stop = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    thinker = dict(
        audio_config=dict(num_mel_bins=128, output_dim=hidden, n_window=50, n_window_infer=800,
                          conv_chunksize=500, max_source_positions=1500, **spec["audio"]),
        text_config=dict(vocab_size=vocab_size, max_position_embeddings=65536, rope_theta=1000000.0,
                         rope_scaling=dict(rope_type="default", mrope_section=mrope, interleaved=True,
                                           mrope_interleaved=True),
                         rms_norm_eps=1e-6, tie_word_embeddings=tied, bos_token_id=None,
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], **spec["text"]),
        audio_token_id=ids["<|audio_pad|>"],
        audio_start_token_id=ids["<|audio_start|>"],
        audio_end_token_id=ids["<|audio_end|>"],
        user_token_id=ids["<|im_start|>"],  # unused by the ASR path
        pad_token_id=ids["<|endoftext|>"],
        eos_token_id=stop,
        tie_word_embeddings=tied,
        dtype="bfloat16" if tied else "float32",
    )
    return Qwen3ASRConfig(thinker_config=thinker, support_languages=list(SUPPORTED_LANGUAGES),
                          architectures=["Qwen3ASRForConditionalGeneration"], tie_word_embeddings=tied,
                          pad_token_id=ids["<|endoftext|>"], eos_token_id=stop)


def build_checkpoint(folder: Path, size: str = "tiny", *, seed: int = 0) -> Path:
    """Save a random Qwen3-ASR of `size` in the official qwen-asr layout into `folder`."""
    tok = build_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS + NON_SPECIAL_ADDED}
    vocab_size = SIZES[size]["vocab_size"] or ((len(tok) + 63) // 64) * 64
    config = make_config(size, ids, vocab_size)
    torch.manual_seed(seed)
    dtype = torch.float32 if size == "tiny" else torch.bfloat16
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # allocate the true sizes in bf16 straight away (half the RAM)
    try:
        model = Qwen3ASRForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    model = model.to(dtype)
    if size == "tiny":
        _speak_words(model, tok)
    stop = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config = GenerationConfig(eos_token_id=stop, pad_token_id=ids["<|endoftext|>"],
                                               do_sample=False)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    feature_extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160,
                                                chunk_length=30, n_fft=400, padding_value=0.0,
                                                return_attention_mask=True, dither=0.0)
    processor = Qwen3ASRProcessor(feature_extractor=feature_extractor, tokenizer=tok,
                                  chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(folder)
    (folder / "official_checkpoint.json").write_text(json.dumps(
        {"size": size, "seed": seed, "random_weights": True, "dtype": str(dtype).removeprefix("torch."),
         "special_token_ids": ids, "vocab_size": vocab_size}, indent=2) + "\n")
    return folder


def _speak_words(model, tok) -> None:
    """Tiny only: random weights pick control bytes and special tokens; let the output layer reach
    only tokens that are letters, so the tiny model's nonsense is visible words."""
    import re

    lm_head = model.thinker.lm_head
    wordy = [i for i in range(len(tok)) if re.fullmatch(r" ?[A-Za-z]{2,}", tok.decode([i]))]
    weight = torch.zeros_like(lm_head.weight)
    weight[wordy] = torch.randn(len(wordy), weight.shape[1], dtype=weight.dtype)
    lm_head.weight = torch.nn.Parameter(weight)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="build a random Qwen3-ASR checkpoint in the official layout")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build_checkpoint(args.folder, args.size, seed=args.seed))
