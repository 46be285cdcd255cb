"""ADU-Bench on the released layout, against a scripted OpenAI-compatible server on loopback.

The server (127.0.0.1 only, a few requests) stands in for the model under test and for the judge: no
real judge can run here. Its answers are scripted per question so that every path is exercised: valid
scores, unparsable replies, HTTP 500, timeouts, an unusable judge.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from jaspeech.cli import main
from jaspeech.model.eval.adu_bench import PROMPT_TEMPLATE, SWAPPED_TEMPLATE, load_questions, parse_score
from jaspeech.model.eval.report import render

QUESTIONS = [  # (question, scripted judge behaviour)
    ("日本の首都はどこですか。", "valid"),        # "8" -> 8
    ("富士山の高さは？", "unparsable_then_valid"),  # "excellent answer" then "7/10" -> 7
    ("おすすめの本は？", "http500_then_valid"),     # 500, then "6" -> 6
    ("今日の天気は？", "timeout"),                  # never answers in time -> missing, not 0
    ("猫の鳴き声は？", "always_unparsable"),       # "great" every time -> missing, not 0
]


class Server(BaseHTTPRequestHandler):
    calls: dict = {}
    judge_fixed = False  # when set, the "timeout" and "always_unparsable" questions are judged "5"

    def log_message(self, *args):
        pass

    def _reply(self, text):
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["model"] == "speech-model":  # the model under test answers the spoken question
            assert body["messages"][0]["content"][0]["type"] == "input_audio"
            Server.calls["answers"] = Server.calls.get("answers", 0) + 1
            return self._reply("はい、お答えします。")
        if body["model"] == "unauthorised-judge":
            self.send_response(401)
            self.end_headers()
            return
        prompt = body["messages"][-1]["content"]
        assert body["messages"][0]["role"] == "system"
        question = next(q for q, _ in QUESTIONS if f"Query: {q}\n" in prompt)
        behaviour = dict(QUESTIONS)[question]
        n = Server.calls[question] = Server.calls.get(question, 0) + 1
        if behaviour == "valid":
            return self._reply("8")
        if behaviour == "unparsable_then_valid":
            return self._reply("excellent answer" if n == 1 else "7/10")
        if behaviour == "http500_then_valid":
            if n == 1:
                self.send_response(500)
                self.end_headers()
                return
            return self._reply("6")
        if Server.judge_fixed:
            return self._reply("5")
        if behaviour == "timeout":
            time.sleep(1.5)
            return self._reply("9")
        return self._reply("great")


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a client that timed out
            super().handle_error(request, client_address)


@pytest.fixture
def server():
    Server.calls, Server.judge_fixed = {}, False
    httpd = QuietServer(("127.0.0.1", 0), Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def audio_name(n: int, lang: str = "ja", voice: str = "NanamiNeural") -> str:
    return f"{n:04d}_{lang}_{voice}.wav"


@pytest.fixture
def bench(tmp_path):
    """The released layout: questions in input/ADU-Multilingual/<language>.jsonl, audio in
    ADU-Multilingual/<language>/, each line's audio path relative to the dataset root; plus English."""
    root = tmp_path / "ADU-Bench"
    (root / "input" / "ADU-Multilingual").mkdir(parents=True)
    for lang, code, voice, items in (("japanese", "ja", "NanamiNeural", [(q, "参考回答") for q, _ in QUESTIONS]),
                                     ("english", "en", "AriaNeural", [("Hi?", "Hello")])):
        (root / "ADU-Multilingual" / lang).mkdir(parents=True)
        lines = []
        for n, (q, a) in enumerate(items):
            rel = f"ADU-Multilingual/{lang}/{audio_name(n, code, voice)}"
            sf.write(root / rel, np.zeros(8000, np.float32), 16000)
            lines.append(json.dumps({"question": q, "answer": a, "source": "alpaca", "category": f"c{n % 2}",
                                     "audio": rel}, ensure_ascii=False))
        (root / "input" / "ADU-Multilingual" / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_score_parsing_and_prompts():
    assert parse_score("8") == 8.0 and parse_score("Score: 7.5") == 7.5 and parse_score("7/10") == 7.0
    assert parse_score("great") is None and parse_score("") is None and parse_score("11") is None
    assert "Please rate the helpfulness, relevance, accuracy, and comprehensiveness" in PROMPT_TEMPLATE
    assert SWAPPED_TEMPLATE.index("Response:") < SWAPPED_TEMPLATE.index("Reference:")


def test_japanese_questions_from_the_released_layout(bench):
    qs = load_questions(bench, "japanese")
    assert [q.question for q in qs] == [q for q, _ in QUESTIONS]
    assert [q.audio for q in qs] == [bench / "ADU-Multilingual" / "japanese" / audio_name(n) for n in range(5)]
    assert all(q.audio.is_file() for q in qs) and qs[1].category == "c1" and qs[0].source == "alpaca"
    assert [q.question for q in load_questions(bench, "english")] == ["Hi?"]


def run(bench, server, out, *extra, judge="judge"):
    return main(["eval", "adu-bench", "--model", "speech-model", "--model-url", server, "--data", str(bench),
                 "--language", "japanese", "--judge-url", server, "--judge-model", judge, "--out", str(out),
                 "--timeout", "0.5", "--retries", "2", "--backoff", "0.01", *extra])


def test_wrong_data_folder_is_refused_with_what_to_pass(bench, server, tmp_path, capsys):
    for wrong in (bench / "input" / "ADU-Multilingual", bench / "ADU-Multilingual" / "japanese", tmp_path / "none"):
        assert run(wrong, server, tmp_path / "r") == 2
        err = capsys.readouterr().err
        assert "not the ADU-Bench dataset root" in err and "input/ and ADU-Multilingual/" in err
    assert main(["eval", "adu-bench", "--model", "speech-model", "--model-url", server, "--data", str(bench),
                 "--language", "klingon", "--out", str(tmp_path / "r")]) == 2
    assert "languages there: english, japanese" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and Server.calls == {}  # nothing asked of any model


def test_adu_bench_flow_with_scripted_judge(bench, server, tmp_path, capsys):
    out = tmp_path / "results"
    assert run(bench, server, out) == 0
    summary = json.loads((out / "adu-bench.summary.json").read_text())
    assert summary["n"] == 3 and summary["missing"] == 2
    assert summary["mean"] == pytest.approx((8 + 7 + 6) / 3)  # failures are missing, never 0
    assert summary["by_category"] == {"c0": pytest.approx((8 + 6) / 2), "c1": 7.0}
    judgments = [json.loads(line) for line in (out / "adu-bench.judgments.jsonl").read_text().splitlines()]
    by_q = {j["question"]: j for j in judgments}
    assert by_q["富士山の高さは？"]["raw"] == ["7/10"] and by_q["富士山の高さは？"]["score"] == 7.0
    assert by_q["猫の鳴き声は？"]["score"] is None and by_q["猫の鳴き声は？"]["raw"] == [["great", "great", "great"]]
    assert by_q["今日の天気は？"]["score"] is None and by_q["今日の天気は？"]["missing"].startswith("judge failed")
    assert len((out / "adu-bench.responses.jsonl").read_text().splitlines()) == 5
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["mean"] == summary["mean"]

    # a rerun keeps the 3 good judgements and the 5 answers, and judges the 2 missing ones again
    calls = dict(Server.calls)
    Server.judge_fixed = True
    assert run(bench, server, out) == 0
    assert Server.calls["answers"] == calls["answers"] == 5
    for question, behaviour in QUESTIONS:
        retried = behaviour in ("timeout", "always_unparsable")
        assert Server.calls[question] == calls[question] + retried, question
    summary = json.loads((out / "adu-bench.summary.json").read_text())
    assert summary["n"] == 5 and summary["missing"] == 0 and summary["mean"] == pytest.approx((8 + 7 + 6 + 5 + 5) / 5)

    # and a third run has nothing left to do
    calls = dict(Server.calls)
    assert run(bench, server, out) == 0 and Server.calls == calls

    # the report picks the summary up beside the seed's published rows
    (out / "cv8.metric.jsonl").write_text(json.dumps({"model": "speech-model", "dataset":
                                                      "japanese-asr/ja_asr.common_voice_8_0", "cer_norm": 12.5}) + "\n")
    table = render(out)
    assert "| speech-model | 6.20 | 12.50 |" in table
    assert "| JaSpeechLLM-8B-Transcribe (step 200000) *(published, seed reference)* | n/a | 8.36 |" in table


def test_missing_answers_are_retried_on_rerun(bench, server, tmp_path, capsys):
    """An unreadable audio file leaves its question unanswered; once the file is there a rerun answers it."""
    clip = bench / "ADU-Multilingual" / "japanese" / audio_name(0)
    clip.rename(clip.with_suffix(".bak"))
    out = tmp_path / "results"
    assert run(bench, server, out) == 0
    responses = {json.loads(line)["id"]: json.loads(line)
                 for line in (out / "adu-bench.responses.jsonl").read_text().splitlines()}
    first = responses["input/ADU-Multilingual/japanese.jsonl:1"]
    assert first["response"] is None and f"audio file not found: {clip}" in first["error"]
    assert Server.calls["answers"] == 4 and "日本の首都はどこですか。" not in Server.calls  # never judged
    clip.with_suffix(".bak").rename(clip)
    Server.judge_fixed = True
    assert run(bench, server, out) == 0
    assert Server.calls["answers"] == 5 and Server.calls["日本の首都はどこですか。"] == 1
    assert json.loads((out / "adu-bench.summary.json").read_text())["n"] == 5


def test_nothing_answered_fails_naming_the_audio_paths(bench, server, tmp_path, capsys):
    """Audio paths that do not resolve (here: the audio folder moved away) answer nothing: exit 1, not 0."""
    (bench / "ADU-Multilingual").rename(tmp_path / "elsewhere")
    assert run(bench, server, tmp_path / "results") == 1
    err = capsys.readouterr().err
    assert "none of the 5 questions could be answered" in err and "audio file not found" in err
    assert "--data is the ADU-Bench dataset root" in err and "japanese/0000_ja_NanamiNeural.wav" in err
    assert "answers" not in Server.calls  # the model was never asked without audio


def test_nothing_judged_fails_naming_the_judge(bench, server, tmp_path, capsys):
    out = tmp_path / "results"
    assert run(bench, server, out, judge="unauthorised-judge") == 1
    err = capsys.readouterr().err
    assert "none of the 5 answers could be judged" in err and "HTTP 401" in err
    assert f"--judge-url {server}" in err and "$OPENAI_API_KEY" in err
    assert json.loads((out / "adu-bench.summary.json").read_text())["missing"] == 5
    assert run(bench, server, out) == 0  # a rerun with a working judge keeps the answers and judges them all
    assert Server.calls["answers"] == 5


def test_swap_averages_both_orders(bench, server, tmp_path):
    out = tmp_path / "swapped"
    assert run(bench, server, out, "--swap") == 0
    judgments = {json.loads(line)["question"]: json.loads(line)
                 for line in (out / "adu-bench.judgments.jsonl").read_text().splitlines()}
    assert judgments["日本の首都はどこですか。"]["scores"] == [8.0, 8.0]
    assert Server.calls["日本の首都はどこですか。"] == 2  # one request per order


def test_answers_from_a_local_jaspeech_llm_checkpoint(bench, server, tmp_path):
    """--model as a checkpoint folder: a tiny random JaSpeechLLM answers; the scripted judge scores."""
    import torch

    from tests.model.tiny import tiny_model_and_processor

    torch.manual_seed(0)
    model, processor = tiny_model_and_processor()
    model.save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "local"
    assert main(["eval", "adu-bench", "--model", str(tmp_path / "ckpt"), "--data", str(bench), "--judge-url", server,
                 "--judge-model", "judge", "--out", str(out), "--timeout", "0.5", "--retries", "2",
                 "--backoff", "0.01", "--max-new-tokens", "8"]) == 0
    responses = [json.loads(line) for line in (out / "adu-bench.responses.jsonl").read_text().splitlines()]
    assert len(responses) == 5 and all(isinstance(r["response"], str) and r["error"] is None for r in responses)
    assert json.loads((out / "adu-bench.summary.json").read_text())["n"] == 3
    assert main(["eval", "adu-bench", "--model", "no-such-model", "--data", str(bench), "--out", str(out)]) == 2
