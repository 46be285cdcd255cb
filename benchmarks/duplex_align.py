"""Word times of the duplex builder against the synthesis' own sentence boundaries.

The builder times words sentence by sentence, so the synthesis bounds every word. How good is the alignment
inside a clip? Two sentences of the bundled automultiturn sample (a question and its answer) are synthesised in
one voice and joined with the 0.3 s pause the builds put between sentences; the two-sentence text is then
timed on the joined clip, and the words on each side of the join are compared with what the synthesis knows:
the end of the first sentence's speech and the start of the second's (their last and first 20 ms frames above
-40 dBFS). Ours (the ear's teacher-forced alignment, `ASRBackend.score`) beside the baseline (`EvenAligner`,
what `--asr none` uses: characters spread over the clip's voiced frames).

    python benchmarks/duplex_align.py            # 20 pairs
    python benchmarks/duplex_align.py --quick    # 3 pairs
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from jaspeech.builders.sources import SAMPLES_DIR
from jaspeech.synthesis.align import EvenAligner, word_times, words_of
from jaspeech.synthesis.speakers import PROFILES


def speech_edges(x: np.ndarray, sr: int) -> tuple[float, float]:
    frame = int(0.02 * sr)
    n = len(x) // frame
    rms = np.sqrt(np.mean(np.square(x[: n * frame].astype(np.float64)).reshape(n, frame), axis=1))
    voiced = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-12)) > -40.0)
    if not voiced.size:
        raise ValueError("no speech")
    return voiced[0] * frame / sr, (voiced[-1] + 1) * frame / sr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="3 pairs")
    args = ap.parse_args()
    from jaspeech.synthesis.asr.faster_whisper import FasterWhisperASR
    from jaspeech.synthesis.tts.openjtalk import OpenJTalkTTS

    tts, ear, even = OpenJTalkTTS(), FasterWhisperASR(), EvenAligner()
    rows = [json.loads(line) for line in (SAMPLES_DIR / "automultiturn.jsonl").read_text(encoding="utf-8").splitlines()]
    errors = {"forced": [], "even": []}
    for k, row in enumerate(rows[: 3 if args.quick else args.pairs]):
        first, second = row["q1"], row["a1"]
        voice = PROFILES[k % len(PROFILES)]
        a, sr = tts.synthesize(first, voice, 0)
        b, _ = tts.synthesize(second, voice, 1)
        joined = np.concatenate([a, np.zeros(int(0.3 * sr), dtype=np.float32), b])
        try:
            true_end = speech_edges(a, sr)[1]
            true_start = len(a) / sr + 0.3 + speech_edges(b, sr)[0]
        except ValueError:
            print(f"row {k}: a sentence without speech, skipped: {first!r} / {second!r}")
            continue
        text = first + second
        n_first = len(words_of(first))
        for name, aligner in (("forced", ear), ("even", even)):
            [forced] = aligner.score([(joined, sr)], [text])
            words = word_times(text, forced, len(joined) / sr)
            errors[name] += [abs(words[n_first - 1].end - true_end), abs(words[n_first].start - true_start)]
    print(f"{len(errors['forced']) // 2} sentence joins, |word time - synthesis boundary| in ms")
    print(f"{'aligner':<8} {'mean':>6} {'median':>6} {'p90':>6} {'max':>6}")
    for name, e in errors.items():
        a = np.array(e) * 1000
        print(f"{name:<8} {a.mean():6.0f} {np.median(a):6.0f} {np.percentile(a, 90):6.0f} {a.max():6.0f}")


if __name__ == "__main__":
    main()
