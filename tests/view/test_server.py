"""`jaspeech view` over HTTP: the real command serving corpora built by the real `jaspeech build`."""
from __future__ import annotations

import http.client
import io
import json
import urllib.parse
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jaspeech.cli import main as cli
from tests.view.conftest import get, get_json

SHARD = "train-00000-of-00001.parquet"


def parquet_rows(folder, config, columns):
    return pq.ParquetFile(folder / "data" / config / SHARD).read(columns=columns).to_pylist()


def stored_clip(folder, config, n, turn):
    """The FLAC bytes of one turn, straight from the Parquet file."""
    t = pq.ParquetFile(folder / "data" / config / SHARD).read(columns=["turns.list.element.audio.bytes"])
    return t.column("turns")[n].as_py()[turn]["audio"]["bytes"]


def query(url, **params):
    return get_json(f"{url}api/rows?{urllib.parse.urlencode(params)}")


def all_rows(url, **params):
    page = query(url, limit=500, **params)
    assert page["total"] == len(page["rows"])
    return page["rows"]


def test_page_static_files_and_headers(servers):
    url = servers["sft"].url
    assert url.startswith("http://127.0.0.1:")
    status, headers, body = get(url)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'src="/static/app.js"' in body and b"<table" in body
    assert "default-src 'self'" in headers["content-security-policy"]  # nothing loads from elsewhere
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        status, headers, body = get(f"{url}static/{name}")
        assert status == 200 and headers["content-type"].startswith(kind) and len(body) > 1000
        assert b"http://" not in body and b"https://" not in body  # no CDN


def test_overview_counts_match_the_files(servers, sft_corpus):
    o = get_json(f"{servers['sft'].url}api/overview")
    by_config = {c["config"]: c for c in o["configs"]}
    assert set(by_config) == {"magpie", "automultiturn"}
    for config, c in by_config.items():
        rows = parquet_rows(sft_corpus, config, ["duration", "speaker"])
        assert c["rows"] == len(rows)
        assert c["hours"] == pytest.approx(sum(r["duration"] for r in rows) / 3600, rel=1e-5)
        assert c["speakers"] == sorted({r["speaker"] for r in rows})
        lines = (sft_corpus / "rejects" / config / "train-00000-of-00001.jsonl").read_text("utf-8").splitlines()
        reasons = Counter(json.loads(line)["reason"] for line in lines)
        assert c["rejects"] == len(lines) and c["reject_reasons"] == dict(reasons)
        assert c["tts"] == "tone" and c["asr"] == "none"
    assert by_config["magpie"]["rows"] >= 24 and by_config["magpie"]["rejects"] >= 13  # the whole sample
    assert by_config["magpie"]["rejects_with_audio"] == 2
    plots = {p["name"] for p in o["plots"]}
    assert {"duration_hist.png", "kana_cer_hist.png", "speaker_hours.png", "reject_reasons.png"} <= plots
    status, headers, body = get(servers["sft"].url + "assets/reject_reasons.png")
    assert status == 200 and headers["content-type"] == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
    assert body == (sft_corpus / "assets" / "reject_reasons.png").read_bytes()


def test_table_filters_sorting_and_paging(servers, sft_corpus):
    url = servers["sft"].url
    magpie = parquet_rows(sft_corpus, "magpie", ["id", "speaker", "duration", "turns.list.element.text"])
    everything = query(url)
    assert everything["total"] == len(magpie) + len(parquet_rows(sft_corpus, "automultiturn", ["id"]))
    assert everything["limit"] == 50 and len(everything["rows"]) == everything["total"]

    rows = all_rows(url, config="magpie")
    assert [r["id"] for r in rows] == [r["id"] for r in magpie]  # file order within a config
    first = rows[0]
    assert first["text"] == magpie[0]["turns"][0]["text"][:80]
    assert first["cer"] is None and first["kana_cer"] is None  # --asr none: unscored

    speaker = magpie[0]["speaker"]
    assert {r["id"] for r in all_rows(url, config="magpie", speaker=speaker)} == \
        {r["id"] for r in magpie if r["speaker"] == speaker}

    durations = sorted(r["duration"] for r in magpie)
    lo, hi = durations[5], durations[15]
    got = {r["id"] for r in all_rows(url, config="magpie", dur_min=lo, dur_max=hi)}
    assert got == {r["id"] for r in magpie if lo <= np.float32(r["duration"]) <= hi}
    assert 0 < len(got) < len(magpie)

    word = magpie[3]["turns"][0]["text"][2:7]
    hits = {r["id"] for r in all_rows(url, q=word)}
    assert magpie[3]["id"] in hits
    assert all(any(word in (t["text"] or "") for t in r["turns"]) for r in
               [r for r in magpie if r["id"] in hits])
    assert all_rows(url, q="この文字列はどこにもない") == []
    assert all_rows(url, kana_max=1.0) == []  # a CER bound never matches an unscored row

    by_duration = all_rows(url, config="magpie", sort="duration", order="desc")
    assert [r["duration"] for r in by_duration] == sorted((r["duration"] for r in by_duration), reverse=True)
    by_id = all_rows(url, sort="id")
    assert [r["id"] for r in by_id] == sorted(r["id"] for r in by_id)

    page = query(url, config="magpie", offset=20, limit=10)
    assert page["total"] == len(magpie) and [r["id"] for r in page["rows"]] == [r["id"] for r in magpie[20:]]


def test_row_view_and_its_audio(servers, sft_corpus):
    url = servers["sft"].url
    stored = parquet_rows(sft_corpus, "automultiturn",
                          ["id", "speaker", "turns.list.element.role", "turns.list.element.text"])
    n = next(i for i, r in enumerate(stored) if len(r["turns"]) >= 4)  # a multi-turn row
    row = get_json(f"{url}api/row/automultiturn/{n}")
    assert row["fields"]["id"] == stored[n]["id"] and row["fields"]["speaker"] == stored[n]["speaker"]
    assert [(t["role"], t["text"]) for t in row["turns"]] == [(t["role"], t["text"]) for t in stored[n]["turns"]]
    spoken = [t for t in row["turns"] if t["role"] == "user"]
    assert spoken and all(t["audio_url"] == f"/api/audio/automultiturn/{n}/{t['index']}" for t in spoken)
    assert all(t["audio_url"] is None for t in row["turns"] if t["role"] == "assistant")

    for t in spoken:
        status, headers, body = get(url + t["audio_url"][1:])
        assert status == 200 and headers["content-type"] == "audio/flac" and headers["accept-ranges"] == "bytes"
        parquet_bytes = stored_clip(sft_corpus, "automultiturn", n, t["index"])
        served, rate = sf.read(io.BytesIO(body), dtype="int16")
        expected, expected_rate = sf.read(io.BytesIO(parquet_bytes), dtype="int16")
        assert rate == expected_rate and served.shape == expected.shape and np.array_equal(served, expected)
        assert served.shape[0] / rate == pytest.approx(t["duration"], abs=0.01)

    status, _, body = get(f"{url}api/audio/automultiturn/{n}/1")  # an assistant turn has no audio
    assert status == 404 and "no audio" in json.loads(body)["error"]


def test_range_requests_seek_into_the_audio(servers, sft_corpus):
    url = servers["sft"].url + "api/audio/magpie/0/0"
    data = stored_clip(sft_corpus, "magpie", 0, 0)
    size = len(data)
    for header, start, end in (("bytes=0-99", 0, 99), ("bytes=100-", 100, size - 1), ("bytes=-50", size - 50, size - 1),
                               (f"bytes=10-{size + 500}", 10, size - 1)):
        status, headers, body = get(url, {"Range": header})
        assert status == 206, header
        assert headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert body == data[start:end + 1] and int(headers["content-length"]) == end - start + 1
        assert headers["content-type"] == "audio/flac"
    status, headers, _ = get(url, {"Range": f"bytes={size}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{size}"
    status, _, body = get(url, {"Range": "lines=1-2"})  # not a byte range: ignored, the whole clip
    assert status == 200 and body == data
    status, headers, body = get(url, method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) == size


def test_rejects_tab_with_reasons_and_audio(servers, sft_corpus):
    url = servers["sft"].url
    lines = [json.loads(x) for x in
             (sft_corpus / "rejects/magpie/train-00000-of-00001.jsonl").read_text("utf-8").splitlines()]
    page = get_json(f"{url}api/rejects?config=magpie")
    assert page["total"] == len(lines) >= 13
    assert page["by_reason"] == dict(Counter(r["reason"] for r in lines))
    assert [(r["source_index"], r["source_id"], r["reason"], r["detail"]) for r in page["rows"]] == \
        sorted((r["source_index"], r["source_id"], r["reason"], r["detail"]) for r in lines)
    assert page["with_audio"] == 2

    coded = get_json(f"{url}api/rejects?config=magpie&reason=unspeakable_code")
    assert coded["total"] == 2 and {r["reason"] for r in coded["rows"]} == {"unspeakable_code"}
    assert coded["by_reason"] == page["by_reason"]  # counts stay visible while one reason is chosen

    heard = get_json(f"{url}api/rejects?audio=1")
    assert heard["total"] == 2
    second = next(r for r in heard["rows"] if r["source_index"] == lines[1]["source_index"])
    [turn] = second["audio"]
    assert (turn["text"], turn["transcript"], turn["turn"]) == ("三月に京都へ行きます。", "散歩に行きます", 0)
    assert turn["kana_cer"] == pytest.approx(0.45)
    assert {"op": "equal", "a": "に", "b": "に"} in turn["diff"]["raw"]
    status, headers, body = get(url + turn["audio_url"][1:])
    assert status == 200 and headers["content-type"] == "audio/flac"
    stored = pq.read_table(sft_corpus / "rejects/magpie/train-00000-of-00001.audio.parquet").to_pylist()
    assert body == next(r["audio"]["bytes"] for r in stored if r["source_index"] == second["source_index"])
    status, _, _ = get(url + turn["audio_url"][1:], {"Range": "bytes=0-9"})
    assert status == 206
    status, _, body = get(f"{url}api/reject-audio/magpie/{lines[2]['source_index']}/0")
    assert status == 404 and "no stored audio" in json.loads(body)["error"]


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """Send `path` exactly as written (no client-side normalisation of .. or %2F)."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


@pytest.mark.parametrize("path", [
    "/assets/../data/magpie/" + SHARD,
    "/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/assets/%2e%2e%2fREADME.md",
    "/assets/%2e%2e/README.md",
    "/assets/%2Fetc%2Fpasswd",
    "/assets//etc/passwd",
    "/static/..%2F__init__.py",
    "/static/%2e%2e%2fqueries.py",
    "/static/index.html/../../queries.py",
    "/../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/api/row/..%2F..%2Fetc/0",
    "/api/row/%2e%2e/0",
    "/api/row/magpie%2F..%2F..%2Fmanifests/0",
    "/api/audio/%2e%2e%2fdata%2fmagpie/0/0",
    "/api/audio/magpie/-1/0",
    "/api/audio/magpie/0/99",
    "/api/row/magpie/100000",  # past the last row
    "/api/reject-audio/..%2Fmagpie/0/0",
    "/api/rows?config=..%2F..%2Fetc",
    "/api/rejects?config=%2Fetc%2Fpasswd",
])
def test_paths_outside_the_folder_are_refused(servers, path):
    status, body = raw_get(servers["sft"].url, path)
    assert status in (400, 404), (path, status)
    assert json.loads(body)["error"]  # a message, not a file
    assert b"root:" not in body and b"PAR1" not in body and b"import" not in body


@pytest.mark.parametrize("params, message", [
    ("cer_min=abc", "cer_min must be a number"),
    ("kana_max=nan", "kana_max must be a finite number"),
    ("dur_min=-1", "dur_min must be a finite number >= 0"),
    ("cer_min=0.5&cer_max=0.1", "cer_min (0.5) is above cer_max (0.1)"),
    ("limit=0", "limit must be between 1 and 500"),
    ("limit=ten", "limit must be a whole number"),
    ("offset=-5", "offset must be between"),
    ("sort=loudness", "sort must be one of"),
    ("order=sideways", "order must be asc or desc"),
    ("config=nope", "unknown config 'nope'; this folder has automultiturn, magpie"),
    ("speaker=spk99", "unknown speaker"),
    ("cer_mx=1", "unknown parameter 'cer_mx'"),
])
def test_malformed_row_queries_get_400_with_a_message(servers, params, message):
    status, headers, body = get(f"{servers['sft'].url}api/rows?{params}")
    assert status == 400 and headers["content-type"] == "application/json"
    assert message in json.loads(body)["error"]
    assert b"Traceback" not in body


@pytest.mark.parametrize("params, message", [
    ("reason=nope", "unknown reason 'nope'"), ("audio=yes", "audio must be 1"), ("limit=9999", "limit must be"),
])
def test_malformed_reject_queries_get_400(servers, params, message):
    status, _, body = get(f"{servers['sft'].url}api/rejects?{params}")
    assert status == 400 and message in json.loads(body)["error"]


def test_read_only_and_loopback_only(servers):
    url = servers["sft"].url
    status, _, body = get(url + "api/rows", method="POST")
    assert status == 405 and "read-only" in json.loads(body)["error"]
    status, _, body = get(url + "api/overview", {"Host": "attacker.example:80"})  # DNS rebinding
    assert status == 400 and "refused" in json.loads(body)["error"]
    status, _, _ = get(url.replace("127.0.0.1", "localhost") + "api/overview")
    assert status == 200


def test_dpo_rows_show_chosen_and_rejected(servers, dpo_corpus):
    url = servers["dpo"].url
    stored = parquet_rows(dpo_corpus, "hh-rlhf", ["id", "chosen", "rejected", "turns.list.element.text"])
    assert query(url)["total"] == len(stored) == 8
    row = get_json(f"{url}api/row/hh-rlhf/2")
    assert (row["fields"]["chosen"], row["fields"]["rejected"]) == (stored[2]["chosen"], stored[2]["rejected"])
    assert row["turns"][0]["text"] == stored[2]["turns"][0]["text"]
    status, headers, _ = get(url + row["turns"][0]["audio_url"][1:])
    assert status == 200 and headers["content-type"] == "audio/flac"


def test_fsd50k_rows_show_caption_labels_licence_and_attribution(servers, fsd_corpus):
    url = servers["fsd"].url
    stored = pq.read_table(fsd_corpus / "data/cc0" / SHARD).to_pylist()
    rows = all_rows(url)
    assert [r["id"] for r in rows] == [r["id"] for r in stored]
    assert rows[0]["text"] == stored[0]["caption"][:80] and rows[0]["speaker"] is None
    assert {r["id"] for r in all_rows(url, q="rain")} == {r["id"] for r in stored if "Rain" in r["labels"]}
    row = get_json(f"{url}api/row/cc0/0")
    for key in ("caption", "labels", "license", "uploader", "title", "freesound_url", "captioner", "fsd50k_split"):
        assert row["fields"][key] == stored[0][key]
    assert "turns" not in row and row["audio_url"] == "/api/audio/cc0/0/0"
    status, headers, body = get(url + "api/audio/cc0/0/0")
    assert status == 200 and headers["content-type"] == "audio/flac" and body == stored[0]["audio"]["bytes"]
    rejects = get_json(f"{url}api/rejects")
    assert rejects["by_reason"]["license"] == 4 and rejects["by_reason"]["bad_path"] == 1


def test_cli_errors_name_what_to_do(tmp_path, capsys, servers, sft_corpus):
    assert cli(["view", str(tmp_path / "missing")]) == 2
    assert "is not a folder: give the --out folder of `jaspeech build`" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli(["view", str(tmp_path / "empty")]) == 2
    assert "holds no built corpus" in capsys.readouterr().err
    busy = urllib.parse.urlsplit(servers["sft"].url).port
    assert cli(["view", str(sft_corpus), "--port", str(busy)]) == 2
    assert f"cannot listen on 127.0.0.1:{busy}" in capsys.readouterr().err
    assert cli(["view", str(sft_corpus), "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err
