"""The official qwen-asr package from a fresh process, as a user would run it: import, load, transcribe one
clip, write the text to disk. bench/bench.py times this whole process by wall clock, beside
`hushscribe transcribe` on the same clip, and runs it in the official package's own environment.

The clip comes as a .npy of 16 kHz float32 samples: the package reads files through soundfile and
librosa, which stand-in modules replace here (see official_checkpoint.py), so the few milliseconds of
decoding a 30 s FLAC are left out on this side only. Exactly `--tokens` new tokens are decoded
(max_new_tokens on the wrapper, min_new_tokens on the thinker), checked by official_rows.TokenCounter.

    python bench/official_fresh.py CHECKPOINT CLIP.npy --tokens 324 --out text.txt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_rows import SAMPLE_RATE, TokenCounter  # noqa: E402  (stand-ins, torch, transformers, qwen_asr)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from qwen_asr import Qwen3ASRModel  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("clip", type=Path)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    asr = Qwen3ASRModel.from_pretrained(str(args.checkpoint), dtype=torch.bfloat16, device_map="cuda:0",
                                        max_new_tokens=args.tokens)
    asr.model.thinker.generation_config.min_new_tokens = args.tokens
    counter = TokenCounter(asr.model)
    result = asr.transcribe((np.load(args.clip), SAMPLE_RATE), language="English")
    args.out.write_text(result[0].text + "\n")
    print(json.dumps(counter.take()), flush=True)


if __name__ == "__main__":
    main()
