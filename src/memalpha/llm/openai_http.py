"""OpenAI-compatible HTTP backend (vLLM, SGLang, llama.cpp server, `transformers serve`,
Ollama): chat completions with timeouts, retries with exponential backoff, a concurrency limit,
and a clear error when the server is down."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from memalpha.errors import BackendError, BackendTimeout, BackendUnavailable
from memalpha.llm.protocol import Generation, Message, SamplingParams, answer_begun

log = logging.getLogger(__name__)


class OpenAIHttpLLM:
    """Chat completions against `base_url` (e.g. http://127.0.0.1:8000/v1, from config).

    Args:
        model: the model name the server serves.
        timeout_s: per attempt (connect, then each read); max_retries: extra attempts on
            timeouts, 429 and 5xx.
        deadline_s: for one request in all: connect, first byte, the whole response and every
            retry. A server that accepts and never answers, or trickles a byte a second, is
            given up on here.
        concurrency: requests in flight at once.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        concurrency: int = 16,
        deadline_s: float = 300.0,
    ) -> None:
        self.name = model
        self.base_url = base_url.rstrip("/")
        self.timeout_s, self.deadline_s = timeout_s, deadline_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)
        self._pool = ThreadPoolExecutor(max_workers=concurrency)
        self._warned_loop_stop = False

    def __enter__(self) -> OpenAIHttpLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        if sampling.loop_stop is not None and not self._warned_loop_stop:
            self._warned_loop_stop = True  # the cut needs the model's tokenizer, on the server
            log.warning("%s: loop_stop is not applied to a served model's answers", self.name)
        rows = [sampling.row(i) for i in range(len(prompts))]
        return list(self._pool.map(self._one, prompts, rows))

    def _one(self, messages: list[Message], sampling: SamplingParams) -> Generation:
        body: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if answer_begun(messages):  # vLLM's chat-completions extension
            body["continue_final_message"], body["add_generation_prompt"] = True, False
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.logprobs:
            body["logprobs"] = True
        data = self._post("/chat/completions", body)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"{self.base_url}: unexpected response shape ({exc!r})") from None
        content = (choice.get("logprobs") or {}).get("content") or []
        return Generation(
            text=text,
            token_ids=tuple(choice.get("token_ids") or ()),  # vLLM with return_token_ids
            logprobs=tuple(t["logprob"] for t in content) if content else None,
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            prompt_tokens=(data.get("usage") or {}).get("prompt_tokens", 0),
        )

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + path
        end = time.monotonic() + self.deadline_s
        for attempt in range(self.max_retries + 1):
            try:
                status, payload = self._attempt(url, body, end)
            except httpx.ConnectError:
                raise BackendUnavailable(
                    f"no model server at {self.base_url} (connection refused); start it or fix "
                    "base_url in the config"
                ) from None
            except httpx.TimeoutException:
                status, payload = 0, b""
            if status == 200:
                return self._json(url, payload)
            if status and status != 429 and status < 500:
                raise BackendError(
                    f"{url}: HTTP {status}: {payload[:200].decode(errors='replace')}"
                )
            wait = self.backoff_s * 2**attempt
            if attempt == self.max_retries or time.monotonic() + wait >= end:
                what = f"HTTP {status}" if status else "no answer"
                raise (BackendUnavailable if status else BackendTimeout)(
                    f"{url}: {what} after {attempt + 1} attempts within the {self.deadline_s:g} s "
                    "deadline; check the server or raise timeout_s / deadline_s"
                )
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _attempt(self, url: str, body: dict[str, Any], end: float) -> tuple[int, bytes]:
        """One POST, streamed, so the whole response (not just each read) keeps the deadline.

        Raises:
            httpx.ConnectError; httpx.TimeoutException, also when the deadline passes.
        """
        left = end - time.monotonic()
        if left <= 0:
            raise httpx.ReadTimeout("deadline passed")
        timeout = httpx.Timeout(min(self.timeout_s, left))
        parts = []
        with self._client.stream("POST", url, json=body, timeout=timeout) as response:
            for chunk in response.iter_bytes():
                parts.append(chunk)
                if time.monotonic() > end:
                    raise httpx.ReadTimeout("deadline passed while the response trickled in")
            return response.status_code, b"".join(parts)

    def _json(self, url: str, payload: bytes) -> dict[str, Any]:
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BackendError(f"{url}: the answer is not JSON: {payload[:120]!r}") from None
        if not isinstance(data, dict):
            raise BackendError(f"{url}: the answer is not a JSON object")
        return data

    def health(self, timeout_s: float = 2.0) -> str | None:
        """None when the server answers `GET /models` within `timeout_s`, else why not."""
        try:
            response = self._client.get(self.base_url + "/models", timeout=timeout_s)
        except httpx.HTTPError as exc:
            return f"{self.base_url} does not answer ({type(exc).__name__})"
        return (
            None if response.status_code < 500 else f"{self.base_url}: HTTP {response.status_code}"
        )
