"""Qwen3-ASR's inputs for a batch of segments, built where the model runs.

The processor's `apply_transcription_request` gives the same tensors, but for 128 segments of 30 s it
took 0.53 s of a 2.4 s hour on an H200: a jinja render and a tokenizer pass over ~400 audio
placeholders per segment, a numpy mask per segment, and the log-mel computed on the GPU, copied to
host memory and back. Here the prompt is tokenized once per (language, context), by the processor
itself, and each segment's ids are that prompt with its own number of placeholders; each waveform is
copied once, into its row on the device, and the log-mel is computed there, as the feature extractor
computes it.
tests/test_qwen.py holds both to the processor's output.
"""

from __future__ import annotations

import functools

import numpy as np

from hushscribe.audio import SAMPLE_RATE

PROMPTS_KEPT = 64  # (language, context) pairs whose tokenized prompt is kept


class QwenInputs:
    def __init__(self, processor, device) -> None:
        import torch

        features = processor.feature_extractor
        self.processor, self.device = processor, device
        self.n_fft, self.hop, self.min_length = features.n_fft, features.hop_length, features.min_length
        self.chunk = 2 * features.n_window  # mel frames per encoder chunk
        self.mel = torch.from_numpy(features.mel_filters).to(device, torch.float32)
        self.window = torch.hann_window(self.n_fft, device=device)
        self.audio_id = processor.audio_token_id
        self.pad_id = processor.tokenizer.pad_token_id
        self.prompt = functools.lru_cache(PROMPTS_KEPT)(self._prompt)

    def __call__(self, batch: list[np.ndarray], language: str | None, context: str) -> dict:
        import torch

        lengths = [max(len(audio), self.min_length) for audio in batch]  # short clips are zero-padded, as valid
        waves = torch.zeros(len(batch), max(lengths), device=self.device)
        for row, audio in zip(waves, batch):  # each straight to its row: no padded copy of the batch on the host
            row[:len(audio)].copy_(torch.from_numpy(np.ascontiguousarray(audio, np.float32)))
        features = self._log_mel(waves)
        frames = features.shape[-1]
        frame_lengths = torch.tensor([-(-n // self.hop) for n in lengths], device=self.device).clamp(max=frames)
        padded = -(-frames // self.chunk) * self.chunk  # the encoder reads whole chunks of 2 × n_window frames
        features = torch.nn.functional.pad(features, (0, padded - frames))
        mask = (torch.arange(padded, device=self.device)[None] < frame_lengths[:, None]).long()

        prefix, suffix = self.prompt(language, context)
        counts = [audio_tokens(int(n), self.chunk) for n in frame_lengths.tolist()]
        width = len(prefix) + len(suffix) + max(counts)
        ids = np.full((len(batch), width), self.pad_id, np.int64)
        valid = np.zeros((len(batch), width), np.int64)
        for row, count in enumerate(counts):  # left-padded, as the processor pads
            tokens = prefix + [self.audio_id] * count + suffix
            ids[row, width - len(tokens):] = tokens
            valid[row, width - len(tokens):] = 1
        return {"input_ids": torch.from_numpy(ids).to(self.device),
                "attention_mask": torch.from_numpy(valid).to(self.device),
                "input_features": features, "input_features_mask": mask}

    def _log_mel(self, waves):
        """The feature extractor's log-mel of a batch: Whisper's, with each row's floor 8 below its own peak."""
        import torch

        stft = torch.stft(waves, self.n_fft, self.hop, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2
        log_spec = torch.clamp(self.mel.T @ power, min=1e-10).log10()
        peak = log_spec.amax(dim=(1, 2), keepdim=True)
        return (torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0

    def _prompt(self, language: str | None, context: str) -> tuple[list[int], list[int]]:
        """The processor's own token ids for this request, split around its run of audio placeholders."""
        ids = self.processor.apply_transcription_request(
            [np.zeros(SAMPLE_RATE, np.float32)], language=language, prompt=context)["input_ids"][0].tolist()
        start = ids.index(self.audio_id)
        end = len(ids) - ids[::-1].index(self.audio_id)
        return ids[:start], ids[end:]


def audio_tokens(frames: int, chunk: int = 100) -> int:
    """The audio encoder's output length for `frames` mel frames: three stride-2 convolutions over each
    chunk of `chunk` frames (13 tokens for a whole chunk of 100), the last chunk partial."""
    return convolved(frames % chunk) + (frames // chunk) * convolved(chunk)


def convolved(frames):
    """Tokens left of `frames` mel frames (an int, or a tensor of them) after the encoder's three convolutions
    (kernel 3, stride 2, padding 1); none of none."""
    for _ in range(3):
        frames = (frames - 1) // 2 + 1
    return frames
