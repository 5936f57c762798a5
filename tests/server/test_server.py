"""The memory service as a user runs it: `memalpha serve` in its own process on 127.0.0.1,
a real SQLite file, real HTTP clients (httpx), the rule-based writer and extractive reader."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memalpha.agent import RuleWriterLLM
from memalpha.errors import BackendTimeout
from memalpha.http_process import free_port
from memalpha.llm import FORMATS, SamplingParams
from memalpha.server.batching import BatchingLLM
from memalpha.server.process import serve_subprocess


def served(store: Path, *args: str, env: dict[str, str] | None = None):
    return serve_subprocess(store, *args, env=env, startup_s=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    with served(tmp_path_factory.mktemp("srv") / "mem.db") as url:
        yield url


def code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_memorize_ask_crud_export_import(server):
    with httpx.Client(base_url=server) as c:
        assert c.post("/sessions", json={"name": "alice"}).status_code == 201
        r = c.post(
            "/sessions/alice/memorize",
            json={"chunks": ["Alice moved to Paris in 2019. She bakes bread at Le Pain Doré."]},
        )
        assert r.status_code == 200
        (chunk,) = r.json()["chunks"]
        assert all(call["status"] == "ok" for call in chunk["calls"])
        inserted = [d for d in chunk["diff"] if d["op"] == "insert"]
        assert any("Paris" in d["content"] for d in inserted)
        answer = c.post("/sessions/alice/ask", json={"questions": ["Where did Alice move?"]})
        (a,) = answer.json()["answers"]
        assert "Paris" in a["answer"] and any("Paris" in e["content"] for e in a["evidence"])

        new = c.post("/sessions/alice/memory/semantic", json={"content": "Alice likes jazz."})
        assert new.status_code == 201
        sid = new.json()["call"]["entry_id"]
        assert (
            c.put(
                f"/sessions/alice/memory/semantic/{sid}", json={"content": "Alice likes blues."}
            ).status_code
            == 200
        )
        memory = c.get("/sessions/alice/memory").json()
        assert {"id": sid, "content": "Alice likes blues."} in memory["semantic"]
        assert memory["tokens"] > 0
        assert c.delete(f"/sessions/alice/memory/semantic/{sid}").status_code == 200
        assert code(c.delete(f"/sessions/alice/memory/semantic/{sid}")) == (404, "unknown_entry")
        assert (
            c.post("/sessions/alice/memory/core", json={"content": "Alice: baker."}).status_code
            == 201
        )

        exported = c.get("/sessions/alice/export").json()
        assert c.post("/sessions/copy/import", json={"memory": exported}).status_code == 200
        assert c.get("/sessions/copy/export").json() == exported
        assert code(c.post("/sessions/copy/import", json={"memory": exported})) == (
            409,
            "session_exists",
        )
        names = [s["name"] for s in c.get("/sessions").json()["sessions"]]
        assert {"alice", "copy"} <= set(names)
        assert c.delete("/sessions/copy").status_code == 200
        assert code(c.get("/sessions/copy/memory")) == (404, "session_not_found")


def test_reward_endpoints_answer_and_judge_given_memories(server):
    with httpx.Client(base_url=server) as c:
        c.post("/sessions", json={"name": "reward"})
        c.post("/sessions/reward/memorize", json={"chunks": ["Bob lives in Lyon. Bob is a chef."]})
        memory = c.get("/sessions/reward/export").json()
        r = c.post(
            "/v1/reader/answer",
            json={"items": [{"memory": memory, "question": "Where does Bob live?"}] * 3},
        )
        assert [("Lyon" in a["answer"]) for a in r.json()["answers"]] == [True] * 3
        r = c.post(
            "/v1/judge",
            json={
                "writes": [
                    {"memory_type": "semantic", "content": "Bob lives in Lyon."},
                    {"memory_type": "semantic", "content": "   "},
                ]
            },
        )
        scores = r.json()["scores"]
        assert len(scores) == 2 and scores[0] > scores[1]
        assert "/sessions/{name}/memorize" in c.get("/openapi.json").json()["paths"]


def test_openapi_shows_a_response_shape_for_every_route(server):
    """Every route declares its response model, so /docs shows what comes back."""
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    assert len([op for ops in paths.values() for op in ops]) == 16
    for path, ops in paths.items():
        for method, op in ops.items():
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            schema = ok["content"]["application/json"]["schema"]
            assert "$ref" in schema, f"{method} {path} has no response model: {schema}"
    memorize = paths["/sessions/{name}/memorize"]["post"]["responses"]["200"]
    assert memorize["content"]["application/json"]["schema"]["$ref"].endswith("MemorizeResponse")


def test_many_clients_many_sessions_nothing_lost_or_mixed(server):
    clients, rounds = 16, 6
    errors: list[str] = []

    def client(i: int) -> None:
        with httpx.Client(base_url=server, timeout=60) as c:
            c.post("/sessions", json={"name": f"user{i}"})
            for j in range(rounds):
                r = c.post(
                    f"/sessions/user{i}/memorize",
                    json={"chunks": [f"Client{i} owns item{j} number {i * 100 + j}."]},
                )
                if r.status_code != 200:
                    errors.append(r.text)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with httpx.Client(base_url=server) as c:
        for i in range(clients):
            facts = [e["content"] for e in c.get(f"/sessions/user{i}/memory").json()["semantic"]]
            assert sorted(facts) == sorted(
                f"Client{i} owns item{j} number {i * 100 + j}." for j in range(rounds)
            )


def test_writes_to_one_session_are_serialised(server):
    with httpx.Client(base_url=server) as c:
        c.post("/sessions", json={"name": "shared"})

    def writer(i: int) -> None:
        with httpx.Client(base_url=server, timeout=60) as c:
            for j in range(10):
                r = c.post("/sessions/shared/memory/semantic", json={"content": f"w{i} e{j}"})
                assert r.status_code == 201

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with httpx.Client(base_url=server) as c:
        entries = c.get("/sessions/shared/memory").json()["semantic"]
    assert len(entries) == 80 == len({e["id"] for e in entries})
    assert {e["content"] for e in entries} == {f"w{i} e{j}" for i in range(8) for j in range(10)}


def test_acknowledged_writes_survive_a_crash(tmp_path):
    store = tmp_path / "crash.db"
    acknowledged = []
    with served(store) as url, httpx.Client(base_url=url) as c:
        c.post("/sessions", json={"name": "d"})
        for j in range(20):
            r = c.post("/sessions/d/memory/episodic", json={"content": f"event {j}"})
            assert r.status_code == 201
            acknowledged.append(r.json()["call"]["entry_id"])
    # the context manager SIGKILLed the server: no shutdown hook ran
    with served(store) as url, httpx.Client(base_url=url) as c:
        ids = [e["id"] for e in c.get("/sessions/d/memory").json()["episodic"]]
        assert ids == acknowledged
        r = c.post("/sessions/d/memory/episodic", json={"content": "after restart"})
        assert r.json()["call"]["entry_id"] not in acknowledged


def test_api_keys(tmp_path):
    with served(tmp_path / "auth.db", env={"MEMALPHA_API_KEYS": "k1,k2"}) as url:
        with httpx.Client(base_url=url) as c:
            assert c.get("/health").status_code == 200
            assert code(c.get("/sessions")) == (401, "unauthorized")
            assert code(c.get("/sessions", headers={"Authorization": "Bearer nope"})) == (
                401,
                "unauthorized",
            )
            assert c.get("/sessions", headers={"Authorization": "Bearer k2"}).status_code == 200
            assert c.get("/sessions", headers={"X-API-Key": "k1"}).status_code == 200


def test_no_keys_off_loopback_refuses_to_start(tmp_path):
    env = {**os.environ, "MEMALPHA_API_KEYS": ""}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "memalpha.cli",
            "serve",
            "--store",
            str(tmp_path / "x.db"),
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 2 and "without API keys" in r.stderr


def test_every_limit_and_bad_input_has_its_code(tmp_path):
    args = [
        "--set",
        "limits.max_body_bytes=4096",
        "--set",
        "limits.max_chunks=2",
        "--set",
        "limits.max_chunk_chars=100",
        "--set",
        "limits.max_content_chars=50",
        "--set",
        "limits.max_questions=2",
        "--set",
        "limits.max_question_chars=40",
        "--set",
        "limits.max_session_chars=8",
    ]
    with served(tmp_path / "lim.db", *args) as url, httpx.Client(base_url=url) as c:
        c.post("/sessions", json={"name": "s"})
        cases = [
            (
                c.post("/sessions/s/memorize", json={"chunks": ["x" * 5000]}),
                (413, "body_too_large"),
            ),
            (
                c.post("/sessions/s/memorize", json={"chunks": ["a", "b", "c"]}),
                (413, "too_many_chunks"),
            ),
            (c.post("/sessions/s/memorize", json={"chunks": ["x" * 101]}), (413, "chunk_too_long")),
            (
                c.post("/sessions/s/memory/semantic", json={"content": "x" * 51}),
                (413, "content_too_long"),
            ),
            (
                c.post("/sessions/s/ask", json={"questions": ["a", "b", "c"]}),
                (413, "too_many_questions"),
            ),
            (c.post("/sessions/s/ask", json={"questions": ["q" * 41]}), (413, "question_too_long")),
            (c.post("/sessions", json={"name": "much-too-long"}), (422, "invalid_session_name")),
            (
                c.post(
                    "/sessions/s/memorize",
                    content=b"{oops",
                    headers={"content-type": "application/json"},
                ),
                (400, "malformed_json"),
            ),
            (c.post("/sessions/s/memorize", json={"chunk": "x"}), (422, "invalid_request")),
            (
                c.post("/sessions/s/memory/procedural", json={"content": "x"}),
                (422, "invalid_request"),
            ),
            (
                c.post("/sessions/nobody/memorize", json={"chunks": ["x"]}),
                (404, "session_not_found"),
            ),
            (
                c.post("/sessions/s/import", json={"memory": {"format": "nope"}, "replace": True}),
                (422, "invalid_data"),
            ),
        ]
        c.post("/sessions/s/memory/semantic", json={"content": "once"})
        cases.append(
            (
                c.post("/sessions/s/memory/semantic", json={"content": "once"}),
                (409, "duplicate_entry"),
            )
        )
        for response, expected in cases:
            assert code(response) == expected, response.text
            assert "Traceback" not in response.text and str(tmp_path) not in response.text
        # refused requests wrote nothing
        assert [e["content"] for e in c.get("/sessions/s/memory").json()["semantic"]] == ["once"]


def test_dead_model_backend_is_a_clean_503(tmp_path):
    args = [
        "--set",
        "writer.kind=llm",
        "--set",
        "writer.model.backend=openai",
        "--set",
        "writer.model.model=served",
        "--set",
        f"writer.model.base_url=http://127.0.0.1:{free_port()}/v1",
    ]
    with served(tmp_path / "dead.db", *args) as url, httpx.Client(base_url=url) as c:
        c.post("/sessions", json={"name": "s"})
        r = c.post("/sessions/s/memorize", json={"chunks": ["Alice lives in Paris."]})
        assert code(r) == (503, "backend_unavailable")
        assert c.get("/sessions/s/memory").json()["semantic"] == []
        health = c.get("/health")  # it said ok while the backend was dead
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert "does not answer" in health.json()["backends"]["writer"]


def test_concurrent_generations_share_backend_calls():
    """Eight sessions generating at once reach the backend in fewer, larger calls, and each
    caller gets its own generation back."""
    llm = BatchingLLM(RuleWriterLLM(FORMATS["hermes"]), window_ms=200, max_batch=8, timeout_s=30)
    sampling = SamplingParams(max_new_tokens=256)
    prompts = [
        [{"role": "user", "content": f"<new_chunk>\nFact {i} is true.\n</new_chunk>"}]
        for i in range(8)
    ]
    results: dict[int, str] = {}

    def call(i: int) -> None:
        (g,) = llm.generate([prompts[i]], sampling)
        results[i] = g.text

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    llm.close()
    assert sum(llm.batches) == 8 and len(llm.batches) < 8
    assert all(f"Fact {i} is true." in results[i] for i in range(8))


def test_a_stuck_backend_times_out():
    class Stuck(RuleWriterLLM):
        def generate(self, prompts, sampling):
            time.sleep(2)
            return super().generate(prompts, sampling)

    llm = BatchingLLM(Stuck(FORMATS["hermes"]), window_ms=0, max_batch=1, timeout_s=0.3)
    with pytest.raises(BackendTimeout):
        llm.generate([[{"role": "user", "content": "x"}]], SamplingParams())
    llm.close()


def test_a_dead_backend_blocks_no_caller_past_its_deadline():
    """While one call hangs in the backend, callers queued behind it (other sessions) get
    their 504 at their own deadline, and requests already answered are never sent."""

    class Hanging(RuleWriterLLM):  # a fake backend that hangs: no real one does on cue
        def __init__(self) -> None:
            super().__init__(FORMATS["hermes"])
            self.prompts = 0

        def generate(self, prompts, sampling):
            self.prompts += len(prompts)
            time.sleep(1.5)
            return super().generate(prompts, sampling)

    backend = Hanging()
    llm = BatchingLLM(backend, window_ms=0, max_batch=1, timeout_s=0.3)
    waited: list[float] = []

    def caller(i: int) -> None:
        began = time.monotonic()
        with pytest.raises(BackendTimeout):
            llm.generate([[{"role": "user", "content": f"x{i}"}]], SamplingParams())
        waited.append(time.monotonic() - began)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(waited) == 4 and max(waited) < 0.6
    assert llm.health() is not None  # the hung call shows on /health
    time.sleep(1.6)
    assert backend.prompts == 1  # the three answered with 504 were never sent
    llm.close()


def test_the_readme_curl_examples_work(tmp_path):
    """Every line of the README's ```sh block, run by bash against a real server."""
    import json
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    (block,) = re.findall(r"```sh\n(.*?)```", readme, re.S)
    lines = [ln for ln in block.splitlines() if ln.strip()]
    assert len(lines) >= 6
    with served(tmp_path / "readme.db") as url:
        outputs = []
        for line in lines:
            r = subprocess.run(
                ["bash", "-c", line],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp_path,
                env={**os.environ, "MEMALPHA_URL": url},
            )
            assert r.returncode == 0, f"{line}\n{r.stderr}"
            outputs.append(r.stdout)
    answers = [json.loads(o) for o in outputs if '"answers"' in o]
    assert answers and all("Paris" in a["answers"][0]["answer"] for a in answers)
    assert json.loads((tmp_path / "alice.json").read_text())["semantic"]
