"""ADU-Bench flow against a scripted OpenAI-compatible server on loopback (answers and judgments)."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from jaspeech.cli import main
from jaspeech.model.adu_bench import PROMPT_TEMPLATE, SWAPPED_TEMPLATE, load_questions, parse_score
from jaspeech.model.report import render

QUESTIONS = [  # (question, scripted judge behaviour)
    ("日本の首都はどこですか。", "valid"),        # "8" -> 8
    ("富士山の高さは？", "unparsable_then_valid"),  # "excellent answer" then "7/10" -> 7
    ("おすすめの本は？", "http500_then_valid"),     # 500, then "6" -> 6
    ("今日の天気は？", "timeout"),                  # never answers in time -> missing, not 0
    ("猫の鳴き声は？", "always_unparsable"),       # "great" every time -> missing, not 0
]


class Server(BaseHTTPRequestHandler):
    calls: dict = {}

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
            return self._reply("はい、お答えします。")
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
        if behaviour == "timeout":
            time.sleep(1.5)
            return self._reply("9")
        return self._reply("great")


@pytest.fixture
def server():
    Server.calls = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


@pytest.fixture
def bench(tmp_path):
    """ADU-Bench layout: a Japanese folder of question lines with audio beside them, plus another language."""
    ja = tmp_path / "ADU-Bench" / "ADU-Multilingual" / "japanese"
    en = tmp_path / "ADU-Bench" / "ADU-Multilingual" / "english"
    for folder in (ja, en):
        (folder / "audio").mkdir(parents=True)
    lines = []
    for n, (q, _) in enumerate(QUESTIONS):
        sf.write(ja / "audio" / f"{n}.wav", np.zeros(8000, np.float32), 16000)
        lines.append(json.dumps({"question": q, "answer": "参考回答", "source": "test", "category": f"c{n % 2}",
                                 "audio": f"audio/{n}.wav"}, ensure_ascii=False))
    (ja / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sf.write(en / "audio" / "0.wav", np.zeros(8000, np.float32), 16000)
    (en / "questions.jsonl").write_text(json.dumps({"question": "Hi?", "answer": "Hello", "source": "t",
                                                    "category": "c", "audio": "audio/0.wav"}) + "\n")
    return tmp_path / "ADU-Bench"


def test_score_parsing_and_prompts():
    assert parse_score("8") == 8.0 and parse_score("Score: 7.5") == 7.5 and parse_score("7/10") == 7.0
    assert parse_score("great") is None and parse_score("") is None and parse_score("11") is None
    assert "Please rate the helpfulness, relevance, accuracy, and comprehensiveness" in PROMPT_TEMPLATE
    assert SWAPPED_TEMPLATE.index("Response:") < SWAPPED_TEMPLATE.index("Reference:")


def test_japanese_questions_only(bench):
    qs = load_questions(bench, "japanese")
    assert [q.question for q in qs] == [q for q, _ in QUESTIONS] and all(q.audio.exists() for q in qs)


def run(bench, server, out, *extra):
    return main(["eval", "adu-bench", "--model", "speech-model", "--model-url", server, "--data", str(bench),
                 "--language", "japanese", "--judge-url", server, "--judge-model", "judge", "--out", str(out),
                 "--timeout", "0.5", "--retries", "2", "--backoff", "0.01", *extra])


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
    assert by_q["今日の天気は？"]["score"] is None and "missing" in by_q["今日の天気は？"]
    assert len((out / "adu-bench.responses.jsonl").read_text().splitlines()) == 5
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["mean"] == summary["mean"]

    # resumable: a second run sends nothing for finished items
    calls = dict(Server.calls)
    assert run(bench, server, out) == 0
    assert Server.calls == calls

    # the report picks the summary up beside the seed's published rows
    (out / "cv8.metric.jsonl").write_text(json.dumps({"model": "speech-model", "dataset":
                                                      "japanese-asr/ja_asr.common_voice_8_0", "cer_norm": 12.5}) + "\n")
    table = render(out)
    assert "| speech-model | 7.00 (2 missing of 5) | 12.50 |" in table
    assert "| JaSpeechLLM-8B-Transcribe (step 200000) *(published, seed reference)* | n/a | 8.36 |" in table


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
                 "--backoff", "0.01"]) == 0
    responses = [json.loads(line) for line in (out / "adu-bench.responses.jsonl").read_text().splitlines()]
    assert len(responses) == 5 and all(isinstance(r["response"], str) and r["error"] is None for r in responses)
    assert json.loads((out / "adu-bench.summary.json").read_text())["n"] == 3
    assert main(["eval", "adu-bench", "--model", "no-such-model", "--data", str(bench), "--out", str(out)]) == 2
