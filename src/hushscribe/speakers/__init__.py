"""Who spoke when: speaker embeddings over short windows of speech, clustered over the whole recording.

One module a stage, in the order the data flows:
- features: the 40-bin mel spectrogram the encoder reads (25 ms / 10 ms frames).
- encoder: the voice encoder (Resemblyzer's, as ONNX on the CPU or torch on a GPU), one 256-d unit vector a window.
- diarizer: the Diarizer, which cuts speech into windows, levels and embeds them as the recording streams past.
- clustering: the speakers among the embeddings (average linkage over the steady windows, a threshold for "auto").
- turns: speaker turns from the windows' scores, speakers numbered S1, S2, … by first appearance.
- labels: turns onto transcript segments, splitting a segment where the speaker changes.
"""

from hushscribe.speakers.clustering import (
    MAX_CLUSTERED,
    MERGE_SIMILARITY,
    MIN_SPEAKER_SHARE,
    MIN_SPEAKER_WINDOWS,
    UNSTEADY_SHARE,
    agglomerate,
    cluster_centres,
    steady_windows,
)
from hushscribe.speakers.diarizer import (
    MIN_WINDOW_FRAMES,
    PAD_S,
    STEP_FRAMES,
    WINDOW_FRAMES,
    WINDOW_LEVEL_DBFS,
    Diarizer,
    diarize,
    levelled,
    speech_spans,
    window_starts,
)
from hushscribe.speakers.encoder import (
    BATCH,
    EMBEDDING,
    ENCODER_PATH,
    WEIGHTS_PATH,
    SpeakerEncoder,
    TorchSpeakerEncoder,
    default_encoder,
)
from hushscribe.speakers.features import FRAME_S, HOP, N_FFT, N_MELS, mel_filters, mel_power
from hushscribe.speakers.labels import MIN_SPLIT_S, label_segments
from hushscribe.speakers.turns import MIN_TURN_S, Turn, frame_turns, speaker_id

__all__ = [
    "BATCH", "EMBEDDING", "ENCODER_PATH", "FRAME_S", "HOP", "MAX_CLUSTERED", "MERGE_SIMILARITY", "MIN_SPEAKER_SHARE",
    "MIN_SPEAKER_WINDOWS", "MIN_SPLIT_S", "MIN_TURN_S", "MIN_WINDOW_FRAMES", "N_FFT", "N_MELS", "PAD_S", "STEP_FRAMES",
    "UNSTEADY_SHARE", "WEIGHTS_PATH", "WINDOW_FRAMES", "WINDOW_LEVEL_DBFS", "Diarizer", "SpeakerEncoder",
    "TorchSpeakerEncoder", "Turn", "agglomerate", "cluster_centres", "default_encoder", "diarize", "frame_turns",
    "label_segments", "levelled", "mel_filters", "mel_power", "speaker_id", "speech_spans", "steady_windows",
    "window_starts",
]
