"""Training data readers and mixing, on small local datasets in each schema."""
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jaspeech.model.train.data import Counters, iter_source, mixture


def flac(seconds, sr=16000):
    buf = io.BytesIO()
    sf.write(buf, (np.sin(np.arange(int(seconds * sr)) / 7) * 0.2).astype(np.float32), sr, format="FLAC")
    return buf.getvalue()


def dataset(folder, rows, split="train"):
    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "data" / f"{split}-00000-of-00001.parquet")
    (folder / "README.md").write_text(f"---\nconfigs:\n- config_name: default\n  data_files:\n  - split: {split}\n"
                                      f"    path: data/{split}-*.parquet\n---\n")
    return str(folder)


def test_common_voice_style_asr_skips_broken_and_long_clips(tmp_path):
    rows = [{"audio": {"bytes": flac(1.0), "path": "a.flac"}, "sentence": "一つ目"},
            {"audio": {"bytes": b"broken", "path": "b.flac"}, "sentence": "壊れた"},
            {"audio": {"bytes": flac(40.0), "path": "c.flac"}, "sentence": "長すぎる"},
            {"audio": {"bytes": flac(2.0), "path": "d.flac"}, "sentence": "四つ目"}]
    path = dataset(tmp_path / "cv", rows)
    counters = Counters()
    examples = list(iter_source({"kind": "asr", "path": path, "text_column": "sentence", "max_seconds": 30}, counters))
    assert [e.response for e in examples] == ["一つ目", "四つ目"] and all(e.task == "asr_ja" for e in examples)
    assert counters.undecodable == 1 and counters.too_long == 1
    with pytest.warns(UserWarning, match="1 undecodable and 1 over-long"):
        from jaspeech.model.train.data import warn_skipped

        warn_skipped(counters)


def test_weighted_mixing_is_deterministic_and_proportional(tmp_path):
    a = dataset(tmp_path / "a", [{"audio": {"bytes": flac(0.5), "path": "x"}, "transcription": "A"}] * 3)
    b = dataset(tmp_path / "b", [{"audio": {"bytes": flac(0.5), "path": "y"}, "caption": "B"}] * 3)
    sources = [{"name": "a", "kind": "asr", "path": a, "weight": 3.0},
               {"name": "b", "kind": "fsd50k", "path": b, "weight": 1.0}]
    counters = Counters()
    stream = mixture(sources, seed=7, counters=counters)
    drawn = [next(stream) for _ in range(400)]
    again = [e.response for e, _ in zip(mixture(sources, seed=7), range(400))]
    assert [e.response for e in drawn] == again  # deterministic for a seed, sources cycled when exhausted
    share = sum(e.response == "A" for e in drawn) / len(drawn)
    assert 0.68 < share < 0.82 and {e.task for e in drawn} == {"asr_ja", "caption"}
    assert counters.by_source == {"a": sum(e.response == "A" for e in drawn), "b": sum(e.response == "B" for e in drawn)}
