"""OpenAI-compatible HTTP backend (vLLM, SGLang, llama.cpp server, `transformers serve`,
Ollama): chat completions with timeouts, retries with exponential backoff, a concurrency limit,
and a clear error when the server is down."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from memalpha.errors import BackendError, BackendTimeout, BackendUnavailable
from memalpha.llm.protocol import Generation, Message, SamplingParams


class OpenAIHttpLLM:
    """Chat completions against `base_url` (e.g. http://127.0.0.1:8000/v1, from config).

    Args:
        model: the model name the server serves.
        timeout_s: per request; max_retries: extra attempts on timeouts, 429 and 5xx.
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
    ) -> None:
        self.name = model
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)
        self._pool = ThreadPoolExecutor(max_workers=concurrency)

    def __enter__(self) -> OpenAIHttpLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        return list(self._pool.map(lambda p: self._one(p, sampling), prompts))

    def _one(self, messages: list[Message], sampling: SamplingParams) -> Generation:
        body: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
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
        for attempt in range(self.max_retries + 1):
            try:
                response = self._client.post(url, json=body)
            except httpx.ConnectError:
                raise BackendUnavailable(
                    f"no model server at {self.base_url} (connection refused); start it or fix "
                    "base_url in the config"
                ) from None
            except httpx.TimeoutException:
                if attempt == self.max_retries:
                    raise BackendTimeout(
                        f"{url}: no answer after {self.max_retries + 1} "
                        "attempts; raise timeout_s or check the server"
                    ) from None
            else:
                if response.status_code == 200:
                    return response.json()
                if response.status_code != 429 and response.status_code < 500:
                    raise BackendError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
                if attempt == self.max_retries:
                    raise BackendUnavailable(
                        f"{url}: HTTP {response.status_code} after {self.max_retries + 1} attempts"
                    )
            time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")
