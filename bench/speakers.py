"""Speaker labels: speed of the diarization part alone, DER / count found on conversations built from the shared
clips (tests/conversations.py; truth known by construction), and on the real recordings in ../shared/audio/diar
(two AMI meeting excerpts, a VoxConverse broadcast; RTTM references, scored with overlaps as the field does).

    python bench/speakers.py [--minutes 60] [--threads 2] [--conversations 8] [--device cuda] [--speed-only]

Speed: an hour (by default) made by concatenating the shared clips with short pauses, through exactly what the
transcriber adds when speakers are on: VAD activity is computed first and not timed (recognition needs it
anyway); timed are the mel spectrograms, the encoder, clustering and turns. DER: missed + false alarm + confusion
with a 0.25 s collar, reference speech from the same VAD on each single-voice clip.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=REPO.parent / "shared" / "audio")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=4, help="per speaker count and pause setting")
    parser.add_argument("--device", default="cpu", help="where the encoder runs: cpu (onnxruntime) or cuda (torch)")
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, set(range(args.threads))) if hasattr(os, "sched_setaffinity") else None

    import numpy as np

    from hushscribe import speakers, vad
    from hushscribe.audio import SAMPLE_RATE
    from hushscribe.scoring import diarization_error_rate
    from tests.conversations import VOICES, conversation, voice

    rows = [json.loads(line) for line in (args.audio / "manifest.jsonl").read_text().splitlines() if line.strip()]
    paths = [args.audio / next(r["file"] for r in rows if f in r["file"]) for f in VOICES]

    # --- speed
    pieces, total, gap = [], 0, np.zeros(SAMPLE_RATE // 2, np.float32)
    while total < args.minutes * 60 * SAMPLE_RATE:
        for path in paths:
            pieces += [voice(path)[0], gap]
            total += len(pieces[-2]) + len(gap)
    samples = np.concatenate(pieces)[: int(args.minutes * 60 * SAMPLE_RATE)]
    hours = len(samples) / SAMPLE_RATE / 3600
    speakers.default_encoder(args.device).embed(np.zeros((1, 160, 40), np.float32))  # load (and warm) once
    window = int(600 * SAMPLE_RATE)  # as the transcriber streams
    actives = [vad.activity(samples[i:i + window]) for i in range(0, len(samples), window)]
    diarizer = speakers.Diarizer("auto", device=args.device)
    mel_s = add_s = 0.0
    for (i, active) in zip(range(0, len(samples), window), actives):
        piece = samples[i:i + window]
        spans = speakers.speech_spans(active, len(piece))
        t = time.perf_counter()
        for span in spans:  # the mel spectrograms alone, for the breakdown (add() computes them again)
            speakers.mel_power(piece[span.start:span.end])
        mel_s += time.perf_counter() - t
        t = time.perf_counter()
        diarizer.add(piece, active, i)
        add_s += time.perf_counter() - t
    t = time.perf_counter()
    turns = diarizer.turns()
    cluster_s = time.perf_counter() - t
    print(f"{hours * 60:.0f} min of audio, {args.threads} threads, encoder on {args.device}: "
          f"mel {mel_s / hours:.1f} s/h, embedding (mel included) {add_s / hours:.1f} s/h, "
          f"clustering + turns {cluster_s / hours:.1f} s/h, total {(add_s + cluster_s) / hours:.1f} s/h "
          f"({len(diarizer._windows)} windows, {len({t.speaker for t in turns})} speakers found, "
          f"{len(VOICES)} voices in the audio)")

    if args.speed_only:
        return
    # --- accuracy
    rng = np.random.default_rng(1)
    print("speakers  pauses   DER(count given)  DER(auto)  found by auto")
    confusion = np.zeros((5, 8), int)
    for n in (1, 2, 3, 4):
        for pause in ((0.0, 0.0), (0.2, 0.8)):
            known, auto, found = [], [], []
            for seed in range(args.conversations):
                who = rng.choice(len(paths), n, replace=False)
                audio, reference = conversation([paths[i] for i in who], 12 if n > 1 else 4, pause_s=pause,
                                                short_every=3, seed=seed)
                d = speakers.Diarizer(n)
                d.add(audio, vad.activity(audio))
                for count, rates in ((n, known), ("auto", auto)):
                    d.speakers = count
                    turns = d.turns()
                    rates.append(diarization_error_rate(reference, [(t.start, t.end, t.speaker) for t in turns]))
                found.append(len({t.speaker for t in turns}))
                confusion[n, min(found[-1], 7)] += 1
            print(f"{n:8d}  {'0.2-0.8s' if pause[1] else 'none':8s} {np.mean(known):16.3f}  {np.mean(auto):9.3f}  "
                  f"{found}")
    print("count confusion (rows: true 1-4; columns: found 0-7)")
    print(confusion[1:])
    real_recordings(args.audio / "diar")


def real_recordings(folder: Path) -> None:
    """DER and the count found by `auto` on the real recordings in ../shared/audio/diar (meetings, broadcast), scored
    as the field scores them (scoring.diarization_error_rate: overlaps per speaker, 0.25 s collar, inside the
    reference's labelled span), and the diarization's cost per hour of each (embedding and clustering, VAD not
    timed, as above; on as many cores as this process is given)."""
    import numpy as np

    from hushscribe import speakers, vad
    from hushscribe.audio import SAMPLE_RATE, decode
    from hushscribe.scoring import diarization_error_rate, read_rttm

    print("real recording                          speakers  found by auto  DER(auto)  DER(count given)  s/h")
    rows = []
    for wav in sorted(folder.glob("*.wav")):
        reference = read_rttm(wav.with_suffix(".rttm"))
        count = len({speaker for _, _, speaker in reference})
        audio = decode(wav)
        active = vad.activity(audio)
        t = time.perf_counter()
        diarizer = speakers.Diarizer("auto")
        diarizer.add(audio, active)
        turns = diarizer.turns()
        per_hour = (time.perf_counter() - t) / (len(audio) / SAMPLE_RATE / 3600)
        rates = {"auto": diarization_error_rate(reference, [(t.start, t.end, t.speaker) for t in turns])}
        found = len({t.speaker for t in turns})
        diarizer.speakers = count
        rates[count] = diarization_error_rate(reference, [(t.start, t.end, t.speaker) for t in diarizer.turns()])
        rows.append((rates["auto"], abs(found - count)))
        print(f"{wav.stem:40s} {count:8d}  {found:13d}  {rates['auto']:9.3f}  {rates[count]:16.3f}  {per_hour:4.0f}")
    print(f"{'mean':40s} {'':8s}  {'off by <= ' + str(max(r[1] for r in rows)):>13s}  "
          f"{np.mean([r[0] for r in rows]):9.3f}")


if __name__ == "__main__":
    main()
