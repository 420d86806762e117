"""Build a random-initialised Qwen3-ASR checkpoint that loads through the same code as real weights.

The real tokenizer and chat template ship with the real weights (no hub here), so the checkpoint
gets a small byte-level BPE with the Qwen special tokens and a chat template of ours in the official
layout. The special token ids are config fields, so the tiny vocabulary works with any model size:
`tiny` for CPU tests, `1.7b` / `0.6b` for the true-size architectures (random bf16 weights) on a GPU.

    python tests/qwen_checkpoint.py OUT_DIR [--size tiny|0.6b|1.7b]
    python tests/qwen_checkpoint.py OUT_DIR --aligner [--size tiny|0.6b]   (Qwen3-ForcedAligner)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

# Special tokens, in the same relative order as the real Qwen3 / Qwen3-ASR vocabulary
# (real ids in comments). `<asr_text>` is an added but NOT special token, so that
# decode(skip_special_tokens=True) keeps it and the processor's parser can split on it.
SPECIAL_TOKENS = [
    "<|endoftext|>",  # 151643  eos / pad / unk
    "<|im_start|>",  # 151644
    "<|im_end|>",  # 151645  eos (chat)
    "<|audio_start|>",  # 151669  tokenizer.audio_bos_token
    "<|audio_end|>",  # 151670  tokenizer.audio_eos_token
    "<|audio_pad|>",  # 151676  tokenizer.audio_token  -> config.audio_token_id
    "<timestamp>",  # 151705  config.timestamp_token_id (forced aligner only)
]
NON_SPECIAL_ADDED = ["<asr_text>"]

# Our own Jinja template reproducing the official Qwen3-ASR prompt layout:
#   <|im_start|>system\n{context}<|im_end|>\n            (always present, context may be "")
#   <|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|><|im_end|>\n   (one per audio item)
#   <|im_start|>assistant\n[prefill]                       (generation prompt / forced language)
# Assistant messages are rendered verbatim so that apply_transcription_request can prefill
# "language English<asr_text>" via continue_final_message=True.
CHAT_TEMPLATE = (
    "{%- set sys = namespace(text='') -%}"
    "{%- set aud = namespace(text='') -%}"
    "{%- for message in messages -%}"
    "{%- if message.content is string -%}"
    "{%- if message.role == 'system' -%}{%- set sys.text = sys.text + message.content -%}{%- endif -%}"
    "{%- else -%}"
    "{%- for part in message.content -%}"
    "{%- if message.role == 'system' and part.type == 'text' -%}{%- set sys.text = sys.text + part.text -%}"
    "{%- elif part.type == 'audio' or 'audio' in part or 'audio_url' in part -%}"
    "{%- set aud.text = aud.text + '<|audio_start|><|audio_pad|><|audio_end|>' -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{- '<|im_start|>system\\n' + sys.text + '<|im_end|>\\n' -}}"
    "{{- '<|im_start|>user\\n' + aud.text + '<|im_end|>\\n' -}}"
    "{%- for message in messages if message.role == 'assistant' -%}"
    "{%- set ans = namespace(text='') -%}"
    "{%- if message.content is string -%}{%- set ans.text = message.content -%}"
    "{%- else -%}{%- for part in message.content if part.type == 'text' -%}"
    "{%- set ans.text = ans.text + part.text -%}{%- endfor -%}{%- endif -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{% generation %}{{- ans.text + '<|im_end|>\\n' -}}{% endgeneration %}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

TRAINING_TEXT = [
    "And so, my fellow Americans: ask not what your country can do for you, ask what you can do for your country.",
    "language English<asr_text>The quick brown fox jumps over the lazy dog.",
    "language Chinese language German language French language None",
    "Mr. Quilter is the apostle of the middle classes, and we are glad to welcome his gospel.",
    "system user assistant 0123456789 hello world, speech to text transcription.",
]


def build_tokenizer(vocab_size: int = 400) -> Qwen2Tokenizer:
    """Train a tiny byte-level BPE with the Qwen pre-tokenizer and wrap it as a Qwen2Tokenizer."""
    bpe = Tokenizer(models.BPE())
    # identical pre-tokenization to Qwen2Tokenizer (regex split + byte level)
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes -> no unk ever
        show_progress=False,
    )
    bpe.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    model_json = json.loads(bpe.to_str())["model"]
    vocab = dict(model_json["vocab"])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model_json["merges"]]
    # append special / added tokens after the BPE vocab, like Qwen does
    for tok in SPECIAL_TOKENS + NON_SPECIAL_ADDED:
        vocab[tok] = len(vocab)

    tok = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=["<|im_start|>", "<|im_end|>", "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>",
                              "<timestamp>"],
        # model-specific named tokens read by Qwen3ASRProcessor.__init__
        audio_token="<|audio_pad|>",
        audio_bos_token="<|audio_start|>",
        audio_eos_token="<|audio_end|>",
        model_max_length=32768,
        padding_side="left",
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in NON_SPECIAL_ADDED])
    return tok



# Architectures: the tiny one for tests, and the published sizes (Qwen3-ASR-1.7B / 0.6B).
SIZES = {
    "tiny": dict(
        audio=dict(encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, d_model=32,
                   downsample_hidden_size=8),
        text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16),
        vocab_size=None,  # just the tokenizer's
    ),
    "1.7b": dict(
        audio=dict(encoder_layers=24, encoder_attention_heads=16, encoder_ffn_dim=4096, d_model=1024,
                   downsample_hidden_size=480),
        text=dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                  num_key_value_heads=8, head_dim=128),
        vocab_size=151936,
    ),
    "0.6b": dict(
        audio=dict(encoder_layers=18, encoder_attention_heads=14, encoder_ffn_dim=3584, d_model=896,
                   downsample_hidden_size=480),
        text=dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                  num_key_value_heads=8, head_dim=128),
        vocab_size=151936,
    ),
}


# Qwen3-ForcedAligner-0.6B: the 1.7B model's audio encoder (24 layers, 1024 wide) before the 0.6B text decoder,
# and a 5000-class head (80 ms bins) in place of the vocabulary.
ALIGNER_SIZES = {
    "tiny": SIZES["tiny"],
    "0.6b": dict(audio=SIZES["1.7b"]["audio"], text=SIZES["0.6b"]["text"], vocab_size=151936),
}
TIMESTAMP_CLASSES = 5000
# The aligner's input, as the official package writes it (no chat turns): the audio, then each word followed by
# two <timestamp> slots, whose classes are the word's start and end bins.
ALIGNER_TEMPLATE = (
    "{%- for message in messages -%}{%- for part in message.content -%}"
    "{%- if part.type == 'text' -%}{{- part.text + '<timestamp><timestamp>' -}}"
    "{%- else -%}{{- '<|audio_start|><|audio_pad|><|audio_end|>' -}}{%- endif -%}"
    "{%- endfor -%}{%- endfor -%}"
)


def _config(tok, spec: dict, tied: bool, **extra):
    from transformers import Qwen3ASRConfig

    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS + NON_SPECIAL_ADDED}
    vocab_size = spec["vocab_size"] or ((len(tok) + 63) // 64) * 64
    hidden = spec["text"]["hidden_size"]
    return Qwen3ASRConfig(
        audio_config=dict(model_type="qwen3_asr_encoder", num_mel_bins=128, output_dim=hidden, n_window=50,
                          n_window_infer=800, max_position_embeddings=13, **spec["audio"]),
        text_config=dict(model_type="qwen3", vocab_size=vocab_size, max_position_embeddings=65536,
                         tie_word_embeddings=tied, bos_token_id=None, eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"], **spec["text"]),
        audio_token_id=ids["<|audio_pad|>"],
        timestamp_token_id=ids["<timestamp>"],
        pad_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|endoftext|>"], ids["<|im_end|>"]],
        tie_word_embeddings=tied,
        **extra,
    )


def _save(model, tok, folder: Path, chat_template: str) -> Path:
    from transformers import Qwen3ASRFeatureExtractor, Qwen3ASRProcessor

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor = Qwen3ASRProcessor(feature_extractor=Qwen3ASRFeatureExtractor(), tokenizer=tok,
                                  chat_template=chat_template)
    processor.save_pretrained(folder)
    return folder


def build_checkpoint(folder: Path, size: str = "tiny", *, seed: int = 0, max_new_tokens: int = 32) -> Path:
    """Save a random Qwen3-ASR of `size` with tokenizer and processor into `folder`."""
    import torch
    from transformers import GenerationConfig, Qwen3ASRForConditionalGeneration

    tok = build_tokenizer()
    config = _config(tok, SIZES[size], tied=size != "tiny")
    torch.manual_seed(seed)
    dtype = torch.float32 if size == "tiny" else torch.bfloat16
    with torch.device("cpu"):
        model = Qwen3ASRForConditionalGeneration(config).to(dtype).eval()
    if size == "tiny":
        _speak_words(model, tok)
    model.generation_config = GenerationConfig(eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id,
                                               do_sample=False, max_new_tokens=max_new_tokens)
    return _save(model, tok, folder, CHAT_TEMPLATE)


def build_aligner(folder: Path, size: str = "tiny", *, seed: int = 0) -> Path:
    """Save a random Qwen3-ForcedAligner of `size` (tiny, or the published 0.6b) into `folder`, loadable as
    the -hf checkpoints are (AutoModelForTokenClassification, AutoProcessor)."""
    import torch
    from transformers import Qwen3ASRForTokenClassification

    tok = build_tokenizer()
    config = _config(tok, ALIGNER_SIZES[size], tied=False, num_labels=TIMESTAMP_CLASSES)
    torch.manual_seed(seed)
    dtype = torch.float32 if size == "tiny" else torch.bfloat16
    with torch.device("cpu"):
        model = Qwen3ASRForTokenClassification(config).to(dtype).eval()
    return _save(model, tok, folder, ALIGNER_TEMPLATE)


def _speak_words(model, tok) -> None:
    """Random weights pick control bytes and special tokens; let the tiny model's output layer
    reach only tokens that are letters, so its nonsense is words that tests can see in transcripts."""
    import re

    import torch

    wordy = [i for i in range(len(tok)) if re.fullmatch(r" ?[A-Za-z]{2,}", tok.decode([i]))]
    weight = torch.zeros_like(model.lm_head.weight)
    weight[wordy] = torch.randn(len(wordy), weight.shape[1])
    model.lm_head.weight = torch.nn.Parameter(weight)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="build a random Qwen3-ASR checkpoint (or its forced aligner)")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--aligner", action="store_true", help="Qwen3-ForcedAligner (sizes tiny, 0.6b)")
    args = parser.parse_args()
    print(build_aligner(args.folder, args.size) if args.aligner else build_checkpoint(args.folder, args.size))
