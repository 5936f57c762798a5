"""Backends: the local transformers backend on the real SmolLM2 (slow), the OpenAI-compatible
HTTP backend against a server on 127.0.0.1, the registry's errors."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from memalpha.errors import BackendError, BackendTimeout, BackendUnavailable, ConfigError
from memalpha.llm.openai_http import OpenAIHttpLLM
from memalpha.llm.protocol import SamplingParams
from memalpha.llm.registry import ModelConfig, make_llm

HELLO = [[{"role": "user", "content": "Say hello."}]]


class ScriptedServer(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible endpoint on 127.0.0.1 (a fake model: it tests our HTTP
    client's retries, errors and parsing, not a model). Replies follow `script`."""

    script: list[int] = []
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        status = type(self).script.pop(0) if type(self).script else 200
        payload = (
            {
                "choices": [
                    {
                        "message": {"content": f"echo {body['messages'][-1]['content']}"},
                        "finish_reason": "stop",
                        "logprobs": {"content": [{"token": "echo", "logprob": -0.5}]},
                    }
                ],
                "usage": {"prompt_tokens": 7},
            }
            if status == 200
            else {"error": "busy"}
        )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedServer)
    ScriptedServer.script, ScriptedServer.requests = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_http_backend_parses_text_logprobs_and_usage(server) -> None:
    with OpenAIHttpLLM(server, "m", backoff_s=0.01) as llm:
        (gen,) = llm.generate(HELLO, SamplingParams(logprobs=True, seed=3))
    assert gen.text == "echo Say hello." and gen.logprobs == (-0.5,) and gen.prompt_tokens == 7
    sent = ScriptedServer.requests[0]
    assert sent["model"] == "m" and sent["seed"] == 3 and sent["logprobs"] is True


def test_http_backend_asks_to_continue_an_answer_begun_for_the_model(server) -> None:
    begun = [HELLO[0] + [{"role": "assistant", "content": "\\boxed{"}]]
    with OpenAIHttpLLM(server, "m", backoff_s=0.01) as llm:
        llm.generate(begun + HELLO, SamplingParams())
    # the two rows go out concurrently: tell them apart by content, not arrival order
    (first,) = [r for r in ScriptedServer.requests if r["messages"][-1]["role"] == "assistant"]
    (plain,) = [r for r in ScriptedServer.requests if r["messages"][-1]["role"] == "user"]
    assert first["continue_final_message"] is True and first["add_generation_prompt"] is False
    assert "continue_final_message" not in plain and "add_generation_prompt" not in plain


def test_http_backend_decodes_greedy_rows_greedily_without_logprobs(server) -> None:
    prompts = [HELLO[0], [{"role": "user", "content": "Say bye."}]]
    sampling = SamplingParams(temperature=0.7, logprobs=True, greedy_rows=(1,))
    with OpenAIHttpLLM(server, "m", backoff_s=0.01, concurrency=1) as llm:
        sampled, greedy = llm.generate(prompts, sampling)
    by_text = {r["messages"][-1]["content"]: r for r in ScriptedServer.requests}
    assert by_text["Say hello."]["temperature"] == 0.7 and by_text["Say hello."]["logprobs"]
    assert by_text["Say bye."]["temperature"] == 0.0 and "logprobs" not in by_text["Say bye."]
    assert sampled.logprobs == (-0.5,) and greedy.text == "echo Say bye."


def test_http_backend_retries_5xx_and_429_then_succeeds(server) -> None:
    ScriptedServer.script = [503, 429]
    with OpenAIHttpLLM(server, "m", backoff_s=0.01, max_retries=2) as llm:
        assert llm.generate(HELLO, SamplingParams())[0].text == "echo Say hello."
    assert len(ScriptedServer.requests) == 3


def test_http_backend_gives_up_with_a_clear_error(server) -> None:
    ScriptedServer.script = [500, 500, 500]
    with (
        OpenAIHttpLLM(server, "m", backoff_s=0.01, max_retries=1) as llm,
        pytest.raises(BackendUnavailable, match="HTTP 500 after 2 attempts"),
    ):
        llm.generate(HELLO, SamplingParams())


def test_http_backend_client_errors_are_not_retried(server) -> None:
    ScriptedServer.script = [400]
    with (
        OpenAIHttpLLM(server, "m", backoff_s=0.01) as llm,
        pytest.raises(BackendError, match="HTTP 400"),
    ):
        llm.generate(HELLO, SamplingParams())
    assert len(ScriptedServer.requests) == 1


def test_dead_server_is_reported_clearly() -> None:
    with (
        OpenAIHttpLLM("http://127.0.0.1:9/v1", "m", max_retries=0) as llm,
        pytest.raises(BackendUnavailable, match="connection refused"),
    ):
        llm.generate(HELLO, SamplingParams())


def test_registry_errors_name_the_fix(tmp_path) -> None:
    with pytest.raises(ConfigError, match="needs base_url"):
        make_llm(ModelConfig(backend="openai"))
    with pytest.raises(ConfigError, match="neither a registry name"):
        make_llm(ModelConfig(model=str(tmp_path)))


def test_smollm2_generates_batched_with_exact_ids_eos_and_logprobs(smol_folder) -> None:
    # the real packaged model, in the default suite (~25 s here, most of it the GGUF conversion)
    with make_llm(ModelConfig(model=str(smol_folder))) as llm:
        prompts = HELLO + [[{"role": "user", "content": "What is the capital of France?"}]]
        greedy = llm.generate(prompts, SamplingParams(max_new_tokens=40, logprobs=True))
        again = llm.generate(prompts[::-1], SamplingParams(max_new_tokens=40))
        eos = llm.tokenizer.eos_token_id
        for gen in greedy:
            assert gen.token_ids[-1] == eos and gen.finish_reason == "stop"
            assert len(gen.logprobs) == len(gen.token_ids) and all(lp <= 0 for lp in gen.logprobs)
            assert llm.tokenizer.decode(gen.token_ids, skip_special_tokens=True) == gen.text
        assert "Paris" in greedy[1].text
        assert [g.text for g in again[::-1]] == [g.text for g in greedy]  # padding-independent


@pytest.mark.slow
def test_http_backend_against_a_real_transformers_server(transformers_server) -> None:
    base_url, model = transformers_server
    cfg = ModelConfig(backend="openai", model=model, base_url=base_url, concurrency=4)
    with make_llm(cfg) as llm:
        prompts = [[{"role": "user", "content": f"What is {i} plus {i}?"}] for i in range(4)]
        gens = llm.generate(prompts, SamplingParams(max_new_tokens=16))
    assert len(gens) == 4 and all(g.text for g in gens)
    assert all(g.finish_reason in ("stop", "length") for g in gens)


@pytest.fixture
def slow_server():
    """A server on 127.0.0.1 that accepts and then answers slowly or never (a fake model
    server: what is tested is our client's deadline). `mode` picks: 'silent' reads the
    request and says nothing; 'trickle' sends a valid response one byte every 50 ms."""
    import socket

    state = {"mode": "silent", "stop": threading.Event()}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)

    def serve() -> None:
        conns = []
        while not state["stop"].is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            conns.append(conn)
            conn.recv(65536)
            if state["mode"] == "trickle":
                body = json.dumps({"choices": [{"message": {"content": "x" * 400}}]}).encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                conn.sendall(head)
                for byte in body:
                    if state["stop"].wait(0.05):
                        break
                    conn.sendall(bytes([byte]))
        for conn in conns:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1", state
    state["stop"].set()
    thread.join(5)
    sock.close()


@pytest.mark.parametrize("mode", ["silent", "trickle"])
def test_a_server_that_never_finishes_is_given_up_at_the_deadline(slow_server, mode) -> None:
    """Per-read timeouts alone never fire on a trickle, and four retries of a silent server
    took ~487 s: the deadline bounds the whole request, retries included."""
    url, state = slow_server
    state["mode"] = mode
    began = time.monotonic()
    with (
        OpenAIHttpLLM(url, "m", timeout_s=0.5, deadline_s=1.5, max_retries=3, backoff_s=0.1) as llm,
        pytest.raises(BackendTimeout, match="deadline"),
    ):
        llm.generate(HELLO, SamplingParams())
    assert time.monotonic() - began < 3.0


def test_pin_threads_sets_the_count_and_none_leaves_it(restore_threads):
    import torch

    from memalpha.llm import pin_threads

    assert pin_threads(1) == torch.get_num_threads() == 1
    assert pin_threads(None) == 1  # as found
    assert pin_threads(2) == torch.get_num_threads() == 2
