"""fsd50k-cc-captions on a generated miniature release: licences, paths, audio, captions, loading."""
import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard
import soundfile as sf
from datasets import load_dataset

from jaspeech.builders.build import BuildOptions, build
from jaspeech.captioning.filters import check_caption
from jaspeech.captioning.fsd50k import iter_clips, license_class
from tests.captioning.conftest import BY3, BY4, BYNC, CC0, CLIPS, SAMPLING, write_release
from tests.conftest import assert_accounted, reject_reasons


def opts(release, out, config, **kw):
    return BuildOptions(corpus="fsd50k-cc-captions", config=config, input=str(release), out=out, quiet=True, **kw)


def position(clip_id):
    return next(i for i, c in enumerate(CLIPS) if c[0] == clip_id)


def test_licence_classes():
    assert license_class(CC0) == "cc0" and license_class(BY3) == "cc-by" and license_class(BY4) == "cc-by"
    assert license_class(BYNC) == "cc-by-nc" and license_class(SAMPLING) == "sampling+"
    for unknown in (None, "", 42, "cc0", "http://example.org/licenses/by/3.0/x", "creativecommons.org/licenses/by/3.0/"):
        assert license_class(unknown) is None


@pytest.mark.parametrize("caption, reason", [
    ("A dog barks twice while a car passes in the background.", None),
    ("", "caption_empty"), (None, "caption_empty"),
    ("I'm sorry, but I cannot describe this audio.", "caption_refusal"),
    ("犬が吠えている音です。", "caption_not_english"),
    ("Un perro ladra mientras pasa un coche por la calle muy rápido.", "caption_not_english"),
    ("Dog.", "caption_too_short"),
    ("a dog barks " * 200, "caption_too_long"),
    ("the dog barks loudly " * 20, "caption_repetitive"),
])
def test_caption_filters(caption, reason):
    assert check_caption(caption) == reason


def test_labels_captioner_builds_both_configs_safely(release, out):
    for config in ("cc0", "cc-by"):
        build(opts(release, out, config))
        assert_accounted(out, config, ids=[c[0] for c in CLIPS])
    cc0, ccby = reject_reasons(out, "cc0"), reject_reasons(out, "cc-by")
    for clip_id, expected in (("1005", "license"), ("1006", "license"), ("1007", "license"), ("2004", "license"),
                              ("1010", "missing_metadata")):
        assert cc0[position(clip_id)] == ccby[position(clip_id)] == expected, clip_id
    assert cc0[position("1008")] == "missing_audio" and ccby[position("1009")] == "broken_audio"
    assert cc0[position("../../../etc/passwd")] == "bad_path"
    assert cc0[position("1002")] == "not_in_config" and ccby[position("1001")] == "not_in_config"

    rows = {c: pq.read_table(out / "data" / c).to_pylist() for c in ("cc0", "cc-by")}
    assert sorted(r["id"] for r in rows["cc0"]) == ["1001", "1003", "2001"]
    assert sorted(r["id"] for r in rows["cc-by"]) == ["1002", "1004", "2002"]
    for config, allowed in (("cc0", "cc0"), ("cc-by", "cc-by")):
        for r in rows[config]:
            assert license_class(r["license"]) == allowed  # no non-CC clip is ever in data/
            assert r["title"] and r["uploader"] and r["freesound_url"] == f"https://freesound.org/s/{r['id']}/"
            assert r["captioner"].startswith("labels-template") and "sound of" in r["caption"]
    by_id = {r["id"]: r for r in rows["cc-by"]}
    assert by_id["1002"]["labels"] == ["Electric_guitar", "Guitar", "Music"] and by_id["1002"]["fsd50k_split"] == "train"
    assert "electric guitar, guitar and music" in by_id["1002"]["caption"]
    # lossless: the FLAC decodes to exactly the samples of the original WAV
    original, sr = sf.read(release / "FSD50K.dev_audio" / "1002.wav", dtype="int16")
    stored, sr2 = sf.read(io.BytesIO(by_id["1002"]["audio"]["bytes"]), dtype="int16")
    assert sr == sr2 and np.array_equal(original, stored)
    assert by_id["1002"]["duration"] == pytest.approx(len(original) / sr)

    for config in ("cc0", "cc-by"):
        for streaming in (False, True):
            ds = load_dataset(str(out), config, split="train", streaming=streaming)
            for row in ds:
                assert row["audio"].get_all_samples().data.shape[-1] > 0.4 * 16000
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "fonseca2022FSD50K" in card and "commercial" in card and "labels-template" in card
    assert "assets/caption_length_hist.png" in card and (out / "assets" / "caption_length_hist.png").exists()
    # the card's facts are FSD50K's, not the TTS corpora's
    data = DatasetCard.load(out / "README.md").data.to_dict()
    assert data["language"] == ["en"] and "tts" not in data["tags"] and "audio-captioning" in data["tags"]
    assert data["license"] == ["cc-by-3.0", "cc-by-4.0", "cc0-1.0"] and "audio-text-to-text" in data["task_categories"]
    assert len(data["source_datasets"]) == 1 and "Zenodo 4060432" in data["source_datasets"][0]


class ScriptedServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/chat/completions on loopback; the reply depends on the clip's length."""

    calls: dict = {}

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        part = body["messages"][0]["content"][0]
        assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"
        frames = sf.info(io.BytesIO(base64.b64decode(part["input_audio"]["data"]))).frames
        key = round(frames / 1600)  # clip n lasts 0.5 + 0.1 n seconds at 16 kHz
        n = ScriptedServer.calls[key] = ScriptedServer.calls.get(key, 0) + 1
        reply = None
        if key == 5 + 0:  # clip 1001 (n=0): fine
            reply = "A dog barks several times in a quiet room."
        elif key == 7:  # clip 1003 (n=2): a refusal first, then a caption (the retry)
            reply = "I'm sorry, I can't help with that." if n == 1 else "Steady rain falls on a metal roof."
        elif key == 15:  # clip 2001 (n=10): HTTP 500 twice, then fine (the client's own retries)
            if n <= 2:
                self.send_response(500)
                self.end_headers()
                return
            reply = "Thunder rumbles in the distance."
        if reply is None:
            reply = "the the the the the the the the the the the the the the the the"  # degenerate, always
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    ScriptedServer.calls = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_openai_compatible_captioner(release, out, server, monkeypatch):
    monkeypatch.setattr("jaspeech.captioning.captioners.OpenAICaptioner.__init__.__defaults__",
                        (8, 3, 10.0, 0.01, 512, None))  # fast backoff for the test
    build(opts(release, out, "cc0", captioner="openai", captioner_url=server, captioner_model="captioner"))
    assert_accounted(out, "cc0", ids=[c[0] for c in CLIPS])
    rows = {r["id"]: r for r in pq.read_table(out / "data" / "cc0").to_pylist()}
    assert rows["1001"]["caption"] == "A dog barks several times in a quiet room."
    assert rows["1003"]["caption"] == "Steady rain falls on a metal roof."  # kept after one retry
    assert rows["2001"]["caption"] == "Thunder rumbles in the distance."  # after two HTTP 500s
    assert rows["1001"]["captioner"] == "captioner (OpenAI-compatible server)"
    assert ScriptedServer.calls[7] == 2 and ScriptedServer.calls[15] == 3
    assert set(rows) == {"1001", "1003", "2001"}


def test_degenerate_captions_are_retried_once_then_rejected(release, out, server, monkeypatch):
    write_release(release, CLIPS + [("1011", "train", "Siren", CC0, "")])
    build(opts(release, out, "cc0", captioner="openai", captioner_url=server))
    rejects = [json.loads(line) for line in (out / "rejects" / "cc0" / "train-00000-of-00001.jsonl").read_text().splitlines()]
    siren = next(r for r in rejects if r["source_id"] == "1011")
    assert siren["reason"] == "caption_repetitive" and "after a retry" in siren["detail"]
    assert ScriptedServer.calls[round((0.5 + 0.1 * len(CLIPS)) * 10)] == 2  # captioned twice, then rejected


def test_counting_on_the_real_licence_distribution(tmp_path, out):
    """51,197 clips with FSD50K's licence mix (metadata only): 19,873 cc0 and 23,506 cc-by."""
    n_cc0, n_by3, n_by4, n_nc, n_sampling = 19_873, 23_000, 506, 6_900, 918
    licences = [CC0] * n_cc0 + [BY3] * n_by3 + [BY4] * n_by4 + [BYNC] * n_nc + [SAMPLING] * n_sampling
    clips = [(str(100000 + i), "eval" if i % 5 == 0 else "train", "Dog", url, "missing")
             for i, url in enumerate(licences)]
    root = write_release(tmp_path / "FSD50K", clips)
    counted = {}
    for row in iter_clips(root):
        counted[license_class(row["license"])] = counted.get(license_class(row["license"]), 0) + 1
    assert counted == {"cc0": 19_873, "cc-by": 23_506, "cc-by-nc": 6_900, "sampling+": 918}
    build(opts(root, out, "cc0"))  # no audio in this tree: every cc0 clip is rejected as missing_audio
    reasons = list(reject_reasons(out, "cc0").values())
    assert reasons.count("missing_audio") == 19_873 and reasons.count("not_in_config") == 23_506
    assert reasons.count("license") == 6_900 + 918 and len(reasons) == 51_197
