"""A minimal client for OpenAI-compatible chat servers (vLLM, SGLang, hosted APIs), stdlib only.

Retried with exponential backoff: connection errors, timeouts, HTTP 429 and 5xx, malformed replies, and
replies the caller's `accept` rejects (e.g. a judge answer without a score). Other HTTP errors fail at
once. The key comes from the environment variable the caller names and is sent only as a bearer header.
"""
from __future__ import annotations

import base64
import io
import json
import os
import time
import urllib.error
import urllib.request
from typing import Callable

import numpy as np
import soundfile as sf


class ApiError(Exception):
    """The request failed after every retry; `attempts` holds what each try returned or raised."""

    def __init__(self, message: str, attempts: list[str]):
        super().__init__(message)
        self.attempts = attempts


def wav_base64(samples: np.ndarray, sample_rate: int) -> str:
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def audio_part(samples: np.ndarray, sample_rate: int) -> dict:
    return {"type": "input_audio", "input_audio": {"data": wav_base64(samples, sample_rate), "format": "wav"}}


def chat(base_url: str, model: str, messages: list[dict], *, max_tokens: int = 512, temperature: float = 0.0,
         retries: int = 3, timeout: float = 120.0, backoff: float = 1.0, api_key_env: str = "OPENAI_API_KEY",
         accept: Callable[[str], bool] | None = None) -> str:
    """POST {base_url}/chat/completions and return the first choice's text."""
    url = base_url.rstrip("/") + "/chat/completions"
    body = json.dumps({"model": model, "messages": messages, "max_tokens": max_tokens,
                       "temperature": temperature}).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if os.environ.get(api_key_env):
        headers["Authorization"] = f"Bearer {os.environ[api_key_env]}"
    attempts: list[str] = []
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                reply = json.loads(resp.read().decode("utf-8"))
            text = reply["choices"][0]["message"]["content"] or ""
        except urllib.error.HTTPError as e:
            attempts.append(f"HTTP {e.code}")
            if e.code != 429 and e.code < 500:
                break
            continue
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
            attempts.append(f"{type(e).__name__}: {e}")
            continue
        except (KeyError, IndexError, TypeError, json.JSONDecodeError) as e:
            attempts.append(f"malformed reply: {type(e).__name__}")
            continue
        if accept is None or accept(text):
            return text
        attempts.append(text)
    raise ApiError(f"no usable reply after {len(attempts)} tries: {attempts[-1] if attempts else ''}", attempts)
