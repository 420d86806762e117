"""Speaker labels: the encoder against Resemblyzer's own numbers, clustering and turns on conversations built from
the shared clips (truth known by construction), and the transcriber and formats carrying speakers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hushscribe import speakers
from hushscribe.audio import decode

from .conftest import CLIPS_MISSING, QWEN_MISSING

REFERENCE = Path(__file__).parent / "data" / "speaker_reference.npz"


def test_mel_filters_match_librosa():
    # librosa 0.11 librosa.filters.mel(sr=16000, n_fft=400, n_mels=40) (ours matched it to 1e-9 in full)
    filters = speakers.mel_filters()
    assert filters.shape == (40, 201)
    assert np.argmax(filters, axis=1)[[0, 1, 20, 39]].tolist() == [2, 4, 44, 185]
    assert filters[[0, 20, 39]].max(axis=1) == pytest.approx([0.01240452, 0.00719192, 0.00172494], rel=1e-5)
    assert filters.sum(axis=1)[:3] == pytest.approx([0.02480904] * 3, rel=1e-5)


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.parametrize("encoder", [
    "onnx", "torch-cpu",
    pytest.param("torch-cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")]),
])
def test_embeddings_match_resemblyzer(clip, encoder):
    """tests/data/speaker_reference.npz holds Resemblyzer 0.1.4's own embeddings (librosa mel + torch) of 1.6 s
    windows of a LibriSpeech clip, written by tools/convert_speaker_encoder.py --check. The ONNX file runs on the
    CPU; its torch twin (the .npz weights) runs where recognition runs on a GPU."""
    if encoder.startswith("torch"):
        pytest.importorskip("torch", reason=QWEN_MISSING)
    reference = np.load(REFERENCE)
    mel = speakers.mel_power(decode(clip("librispeech_1995")["path"]))
    windows = np.stack([mel[s:s + speakers.WINDOW_FRAMES] for s in reference["starts"]])
    make = {"onnx": lambda: speakers.default_encoder("cpu"), "torch-cpu": lambda: speakers.TorchSpeakerEncoder("cpu"),
            "torch-cuda": lambda: speakers.default_encoder("cuda")}[encoder]
    ours = make().embed(windows)
    # cuDNN's LSTM multiplies in TF32 (measured 1.7e-4 on an H100); float32 elsewhere (measured 4.6e-7)
    assert np.max(np.abs(ours - reference["embeddings"])) < (5e-4 if encoder == "torch-cuda" else 1e-5)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)


# --- conversations with the truth known by construction ------------------------------------------------------------

# (speakers, pause range in seconds, seed); 12 turns, every third one under 2 s. MERGE_SIMILARITY 0.62 was chosen
# on a wider set (32 conversations of 1-4 speakers, bench/speakers.py) and the real recordings below together: 0.60
# merged the meeting's speakers into two (DER 0.37), 0.64 found the count less often here (6 of 12, DER 0.107).
SCENARIOS = [(n, pause, seed) for n in (2, 3, 4) for pause in ((0.0, 0.0), (0.2, 0.8)) for seed in (0, 1)]
DER_CEILING_KNOWN = 0.10  # mean over SCENARIOS with the count given (measured 0.078; 0.085 before levelling)
DER_CEILING_AUTO = 0.12  # mean with "auto" (measured 0.099; 0.100 before)
DER_CEILING_ONE = 0.35  # the worst single conversation (measured 0.30: three voices, no pauses)


@pytest.fixture(scope="module")
def conversations(manifest):
    from .conversations import VOICES, conversation

    paths = [next(row["path"] for row in manifest if fragment in row["file"]) for fragment in VOICES]
    rng = np.random.default_rng(1)
    built = []
    for n, pause, seed in SCENARIOS:
        who = rng.choice(len(paths), n, replace=False)
        samples, reference = conversation([paths[i] for i in who], 12, pause_s=pause, short_every=3, seed=seed)
        built.append((n, pause, samples, reference))
    return built


@pytest.fixture(scope="module")
def diarized(conversations):
    """Each conversation embedded once, then clustered with the count given and with "auto"."""
    from hushscribe import vad

    out = []
    for n, pause, samples, reference in conversations:
        diarizer = speakers.Diarizer(n)
        diarizer.add(samples, vad.activity(samples))
        known = diarizer.turns()
        diarizer.speakers = "auto"
        out.append((n, pause, reference, known, diarizer.turns()))
    return out


def _der(reference, turns) -> float:
    from hushscribe.scoring import diarization_error_rate

    return diarization_error_rate(reference, [(t.start, t.end, t.speaker) for t in turns], collar=0.25)


def test_the_error_rate_scores_overlapped_speech_per_speaker_inside_the_labelled_span(tmp_path):
    from hushscribe.scoring import diarization_error_rate, read_rttm

    rttm = tmp_path / "two.rttm"
    rttm.write_text("SPEAKER two 1 10.00 10.00 <NA> <NA> A <NA> <NA>\n"
                    "SPEAKER two 1 15.00 10.00 <NA> <NA> B <NA> <NA>\n")
    reference = read_rttm(rttm)
    assert reference == [(10.0, 20.0, "A"), (15.0, 25.0, "B")]  # 5 s of overlap: 20 s of speaker time
    assert diarization_error_rate(reference, [(10.0, 20.0, "x"), (15.0, 25.0, "y")], collar=0) == 0.0
    # one voice for both: the overlap misses B (5 s), and B alone is confused with A's voice (5 s)
    assert diarization_error_rate(reference, [(10.0, 25.0, "x")], collar=0) == pytest.approx(0.5)
    # speech outside the reference's labelled span (0-10 s here) is not scored
    assert diarization_error_rate(reference, [(0.0, 20.0, "x"), (15.0, 25.0, "y")], collar=0) == 0.0


def test_diarization_error_rate_with_the_count_given(diarized):
    rates = [_der(reference, known) for _, _, reference, known, _ in diarized]
    print("DER, count given:", [f"{r:.3f}" for r in rates])
    assert np.mean(rates) <= DER_CEILING_KNOWN and max(rates) <= DER_CEILING_ONE, rates
    assert all(len({t.speaker for t in known}) <= n for n, _, _, known, _ in diarized)


def test_diarization_error_rate_with_auto(diarized):
    rates = [_der(reference, auto) for _, _, reference, _, auto in diarized]
    print("DER, auto:", [f"{r:.3f}" for r in rates])
    assert np.mean(rates) <= DER_CEILING_AUTO, rates


def test_auto_finds_the_count_in_most_conversations(diarized):
    found = [(n, len({t.speaker for t in auto})) for n, _, _, _, auto in diarized]
    print("(true, found):", found)
    # measured 7 of 12 on the 2-core CPU machine (onnxruntime 1.32), the others one off; a conversation of margin
    assert sum(n == k for n, k in found) >= 6, found
    assert all(abs(n - k) <= 1 for n, k in found), found


def test_turns_are_ordered_and_numbered_by_first_appearance(diarized):
    for _, _, _, known, auto in diarized:
        for turns in (known, auto):
            assert all(a.end <= b.start + 1e-9 and a.start < a.end for a, b in zip(turns, turns[1:]))
            first_seen = list(dict.fromkeys(t.speaker for t in turns))
            assert first_seen == [f"S{i}" for i in range(1, len(first_seen) + 1)]


# --- real recordings (../shared/audio/diar: two AMI meeting excerpts, a VoxConverse broadcast; CC BY 4.0) ---------

# DER with "auto", scored as the field scores them (overlaps per speaker, 0.25 s collar, inside the labelled span).
# Measured on the 2-core CPU machine (onnxruntime 1.32, numpy 2.4): 0.119, 0.313 (one speaker found of two: the quiet
# one speaks 5 s of 30), 0.016; mean 0.149. Ceilings leave about 4 points each for other onnxruntime/numpy builds.
REAL_DER_CEILING = {"ami_ES2004a_750-810s_4spk": 0.16, "ami_pyannote_dev00_2spk": 0.36,
                    "voxconverse_dev_akthc_2spk": 0.05}
REAL_MEAN_DER_CEILING = 0.18  # issue 21's target (measured 0.149; before levelling and steady windows: 0.332)


@pytest.fixture(scope="module")
def real_recordings(shared_audio):
    """Each real recording diarized once with "auto": (name, reference turns, turns, true count)."""
    from hushscribe.scoring import read_rttm

    wavs = sorted((shared_audio / "diar").glob("*.wav"))
    if not wavs:
        pytest.skip(f"{CLIPS_MISSING}: no real recordings in {shared_audio / 'diar'}")
    out = []
    for wav in wavs:
        reference = read_rttm(wav.with_suffix(".rttm"))
        out.append((wav.stem, reference, speakers.diarize(decode(wav), "auto"), len({s for _, _, s in reference})))
    return out


def test_real_recordings_error_rate_with_auto(real_recordings):
    rates = {name: _der(reference, turns) for name, reference, turns, _ in real_recordings}
    print("DER, auto:", {name: f"{rate:.3f}" for name, rate in rates.items()})
    assert set(rates) == set(REAL_DER_CEILING)
    assert all(rates[name] <= ceiling for name, ceiling in REAL_DER_CEILING.items()), rates
    assert np.mean(list(rates.values())) <= REAL_MEAN_DER_CEILING, rates


def test_real_recordings_count_within_one(real_recordings):
    found = {name: (count, len({t.speaker for t in turns})) for name, _, turns, count in real_recordings}
    print("(true, found):", found)
    # measured 3 of 4, 1 of 2, 2 of 2 (before: 1 of 4 in the meeting)
    assert all(abs(count - k) <= 1 for count, k in found.values()), found


def test_levelling_makes_embeddings_independent_of_loudness(clip):
    """A recording played 20 dB quieter gives the same speaker windows (the encoder reads linear mel power)."""
    samples = decode(clip("librispeech_1995")["path"])
    mel = speakers.mel_power(samples[:16000 * 2])[:speakers.WINDOW_FRAMES]
    loud = speakers.levelled(mel, samples[:speakers.WINDOW_FRAMES * speakers.HOP])
    quiet = speakers.levelled(mel * 0.01, samples[:speakers.WINDOW_FRAMES * speakers.HOP] * 0.1)
    assert np.allclose(loud, quiet, rtol=1e-4)
    rms = np.sqrt(np.mean(samples[:speakers.WINDOW_FRAMES * speakers.HOP] ** 2))
    expected = (10 ** (speakers.WINDOW_LEVEL_DBFS / 20) / rms) ** 2
    assert np.allclose(loud, mel * expected, rtol=1e-4)


def test_windows_straddling_a_change_are_not_clustered():
    """Windows every half window, voice a until frame 480, then b: the window across the change (400-560, both
    voices; its halves disagree) and the two beside it (one half hears the mixed window) are left out; the others
    are clustered, and so are windows without neighbours on both sides (0 and 720)."""
    a, b = np.eye(256, dtype=np.float32)[:2]
    starts = np.arange(0, 800, 80)
    windows = np.stack([starts, starts + 160], axis=1)
    mixed = (a + b) / np.sqrt(2)
    embeddings = np.stack([a if s + 160 <= 480 else b if s >= 480 else mixed for s in starts])
    steady = speakers.steady_windows(windows, embeddings)
    assert starts[~steady].tolist() == [320, 400, 480]


def test_one_voice_is_one_speaker(clip):
    samples = decode(clip("osr_us_000_0034")["path"])  # 35 s, ten sentences with pauses between them
    turns = speakers.diarize(samples, "auto")
    assert {t.speaker for t in turns} == {"S1"}
    assert sum(t.end - t.start for t in turns) > 20


def test_silence_has_no_speakers():
    assert speakers.diarize(np.zeros(16000 * 5, np.float32), "auto") == []
    assert speakers.Diarizer("auto").turns() == []


# --- the transcriber and the outputs -------------------------------------------------------------------------------


class FixedEngine:
    """Says "wordN" for every 0.5 s of a segment, without word timings (as the Qwen engine)."""

    name, model_name, batch_size, word_timing = "fixed", "test", 8, None

    def supports_language(self, language):
        return True

    def language_probabilities(self, segments):
        return [{"en": 1.0} for _ in segments]

    def recognize(self, segments, options):
        from hushscribe.engines.base import Recognition

        return [Recognition(" ".join(f"w{i}" for i in range(max(1, round(len(s) / 8000)))), "en") for s in segments]


def test_transcriber_labels_and_splits_segments(conversations):
    from hushscribe import TranscribeOptions, Transcriber

    n, _, samples, reference = next(c for c in conversations if c[0] == 2 and c[1] == (0.0, 0.0))  # no pauses
    # the count given: this is about labelling and splitting (auto finds 3 here, DER 0.14; see the tests above)
    transcript = Transcriber(FixedEngine()).transcribe(samples, TranscribeOptions(speakers=2))
    assert transcript.speakers == {"S1": "Speaker 1", "S2": "Speaker 2"}
    assert all(s.speaker in transcript.speakers for s in transcript.segments)
    # the speaker of each segment is the reference speaker of most of its time
    mapping = {}
    agree = 0.0
    for segment in transcript.segments:
        for start, end, who in reference:
            overlap = max(0.0, min(end, segment.end) - max(start, segment.start))
            mapping.setdefault((segment.speaker, who), 0.0)
            mapping[(segment.speaker, who)] += overlap
    best = {hyp: max((v, ref) for (h, ref), v in mapping.items() if h == hyp)[1] for hyp in transcript.speakers}
    for segment in transcript.segments:
        for start, end, who in reference:
            if best[segment.speaker] == who:
                agree += max(0.0, min(end, segment.end) - max(start, segment.start))
    speech = sum(end - start for start, end, _ in reference)
    assert agree / speech > 0.8  # measured 0.85; segments keep 0.4 s of padding that reaches into the next turn
    # without pauses the VAD gives few long segments; with 12 turns they must have been split
    assert len(transcript.segments) >= 8  # measured 9; unsplit, the VAD gives a segment or two
    assert all(s.words is None for s in transcript.segments)  # words were only asked for to split


def test_speakers_off_imports_nothing_and_labels_nothing(clip):
    import subprocess
    import sys

    code = ("import sys, numpy as np; from hushscribe import Transcriber\n"
            "from hushscribe.engines.base import Recognition\n"
            "class Engine:\n"
            "    name, model_name, batch_size, word_timing = 'e', 'm', 4, None\n"
            "    supports_language = lambda self, language: True\n"
            "    language_probabilities = lambda self, segments: [{'en': 1.0} for _ in segments]\n"
            "    recognize = lambda self, segments, options: [Recognition('hi', 'en') for _ in segments]\n"
            f"t = Transcriber(Engine()).transcribe({str(clip('librispeech_1995')['path'])!r}, speakers='off')\n"
            "assert t.speakers == {} and t.segments and all(s.speaker is None for s in t.segments), t\n"
            "assert 'hushscribe.speakers' not in sys.modules and 'onnxruntime' in sys.modules\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent)
    assert result.stdout.strip() == "ok", result.stderr


def test_speakers_option_is_checked():
    from hushscribe import HushError
    from hushscribe.transcriber import checked_speakers

    assert [checked_speakers(v) for v in (None, "off", "auto", "3", 2)] == [None, None, "auto", 3, 2]
    for bad in ("many", 0, 21, True, 2.5, "²", "٣"):  # digits int() refuses or that are not ours
        with pytest.raises(HushError):
            checked_speakers(bad)


def _two_speaker_transcript():
    from hushscribe import Segment, Transcript

    return Transcript(source="talk.wav", duration=12.0, language="en", segments=[
        Segment(0.5, 3.0, "Hello there, how are you?", "en", speaker="S1"),
        Segment(3.5, 6.0, "Fine, thanks.", "en", speaker="S2"),
        Segment(6.2, 9.0, "Good to hear.", "en", speaker="S1"),
    ], speakers={"S1": "Speaker 1", "S2": "Speaker 2"})


def test_every_format_carries_speakers_and_their_names():
    import json

    from hushscribe.formats import render

    transcript = _two_speaker_transcript()
    transcript.rename_speakers(["Ana"])
    assert render(transcript, "txt") == ("[00:00:00] Ana: Hello there, how are you?\n\n[00:00:03] Speaker 2: Fine, "
                                         "thanks.\n\n[00:00:06] Ana: Good to hear.\n")
    srt = render(transcript, "srt")
    assert "00:00:00,500 --> 00:00:03,000\nAna: Hello there, how are you?\n" in srt
    assert "\nSpeaker 2: Fine, thanks.\n" in srt
    vtt = render(transcript, "vtt")
    assert "00:00:03.500 --> 00:00:06.000\n<v Speaker 2>Fine, thanks.\n" in vtt
    data = json.loads(render(transcript, "json"))
    assert data["speakers"] == {"S1": "Ana", "S2": "Speaker 2"}
    assert [(s["speaker"], s["speaker_name"]) for s in data["segments"]] == [
        ("S1", "Ana"), ("S2", "Speaker 2"), ("S1", "Ana")]
    md = render(transcript, "md")
    assert "### Ana\n\n**[00:00:00]** Hello there, how are you?\n\n### Speaker 2\n\n**[00:00:03]** Fine" in md


def test_renaming_rejects_unknown_speakers_and_blank_names():
    from hushscribe import HushError

    transcript = _two_speaker_transcript()
    transcript.rename_speakers({"S2": "Ben"})
    assert transcript.speakers == {"S1": "Speaker 1", "S2": "Ben"}
    for bad in ({"S3": "Cy"}, {"S1": " "}, ["a", "b", "c"]):
        with pytest.raises(HushError):
            transcript.rename_speakers(bad)


def test_names_that_look_like_markup_stay_literal():
    from hushscribe.formats import render

    transcript = _two_speaker_transcript()
    transcript.rename_speakers(["1. Ana #", "<Ben>"])
    md = render(transcript, "md")
    assert "### 1. Ana \\#" in md and "### \\<Ben>" in md  # not a list, no closing sequence, no HTML tag
    assert "<v &lt;Ben&gt;>" in render(transcript, "vtt")


def test_a_segment_spanning_a_change_is_split_at_the_words():
    from hushscribe import Segment, Word

    words = [Word(0.0, 0.4, " One"), Word(0.5, 0.9, " two."), Word(1.6, 2.0, " Three"), Word(2.1, 2.5, " four.")]
    segment = Segment(0.0, 2.5, "One two. Three four.", "en", words=words)
    turns = [speakers.Turn(0.0, 1.0, "S1"), speakers.Turn(1.5, 2.5, "S2")]
    first, second = speakers.label_segments([segment], turns)
    assert (first.text, first.speaker, first.end) == ("One two.", "S1", 1.6)
    assert (second.text, second.speaker, second.start) == ("Three four.", "S2", 1.6)
    # without words: at the pause between the turns, the text cut at the break nearest the same share
    first, second = speakers.label_segments([Segment(0.0, 2.5, "One two. Three four.", "en")], turns)
    assert (first.text, second.text, first.end, second.start) == ("One two.", "Three four.", 1.25, 1.25)


def _timed_words(text: str, seconds_each: float = 0.5):
    from hushscribe import Word

    return [Word(i * seconds_each, (i + 0.8) * seconds_each, f" {w}") for i, w in enumerate(text.split())]


def test_splitting_finds_repeated_words_where_they_are_and_never_cuts_inside_one():
    from hushscribe import Segment

    words = _timed_words("I said yes and then yes")  # the second voice says only the last "yes" (2.5-2.9 s)
    turns = [speakers.Turn(0.0, 2.3, "S1"), speakers.Turn(2.4, 3.0, "S2")]
    pieces = speakers.label_segments([Segment(0.0, 3.0, "I said yes and then yes", "en", words=words)], turns)
    assert [(p.text, p.speaker) for p in pieces] == [("I said yes and then", "S1"), ("yes", "S2")]
    assert pieces[0].end == pieces[1].start == 2.5 and [w.text for w in pieces[1].words] == [" yes"]

    text = "alpha beta gamma delta U zeta eta theta"
    turns = [speakers.Turn(0.0, 2.4, "S1"), speakers.Turn(2.5, 4.0, "S2")]
    pieces = speakers.label_segments([Segment(0.0, 4.0, text, "en", words=_timed_words(text))], turns)
    assert [p.text for p in pieces] == ["alpha beta gamma delta U", "zeta eta theta"]


def test_a_voice_with_no_words_or_a_moment_in_a_segment_does_not_split_it():
    from hushscribe import Segment

    text = "Hello there how are you?"
    late = [speakers.Turn(0.0, 4.8, "S1"), speakers.Turn(4.9, 6.0, "S2")]  # S2 starts as the segment ends
    for words in (_timed_words(text, 0.9), None):
        pieces = speakers.label_segments([Segment(0.0, 5.0, text, "en", words=words)], late)
        assert [(p.text, p.speaker) for p in pieces] == [(text, "S1")]
    # a turn with no word in it gives no piece: the segment stays whole with the speaker of its words
    words = _timed_words(text, 0.4)  # all within 0-2 s
    turns = [speakers.Turn(0.0, 2.2, "S1"), speakers.Turn(3.0, 5.0, "S2")]
    pieces = speakers.label_segments([Segment(0.0, 5.0, text, "en", words=words)], turns)
    assert [(p.text, p.speaker) for p in pieces] == [(text, "S1")]
    # between turns, a segment takes the turn nearest to it, not the one that starts nearest
    between = speakers.label_segments([Segment(61.0, 62.0, "Right.", "en")],
                                      [speakers.Turn(0.0, 60.0, "S1"), speakers.Turn(70.0, 200.0, "S2")])
    assert between[0].speaker == "S1"


def test_cli_labels_speakers_in_every_format(manifest, tmp_path):
    import json
    import subprocess
    import sys

    from hushscribe.scoring import diarization_error_rate

    from .conversations import segment_turns, two_voices_file

    audio = tmp_path / "interview.wav"
    reference = two_voices_file(manifest, audio)
    result = subprocess.run([sys.executable, "-m", "hushscribe", "transcribe", str(audio), "--speakers", "auto",
                             "-f", "txt,vtt,json", "-o", str(tmp_path), "-q"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "interview.json").read_text())
    assert data["speakers"] == {"S1": "Speaker 1", "S2": "Speaker 2"}
    der = diarization_error_rate(reference, segment_turns(data["segments"]))
    assert der < 0.15, der  # measured 0.086 (Whisper's words, segments padded by 0.4 s)
    paragraphs = (tmp_path / "interview.txt").read_text().strip().split("\n\n")
    assert len(paragraphs) >= 4 and all(re.match(r"\[\d\d:\d\d:\d\d\] Speaker [12]: \S", p) for p in paragraphs)
    assert "<v Speaker 1>" in (tmp_path / "interview.vtt").read_text()
