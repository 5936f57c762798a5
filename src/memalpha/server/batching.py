"""Generation requests of concurrent sessions batched into one backend call.

Each session's memorize runs in its own thread and calls `generate` as if it had the model to
itself; a single worker thread drains the queue, waits up to `window_ms` for more requests,
and sends up to `max_batch` prompts with equal sampling settings to the backend at once. A
local transformers model then pads them into one forward pass; an OpenAI-compatible server
receives them together.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from memalpha.errors import BackendError, BackendTimeout
from memalpha.llm import LLM, Generation, Message, SamplingParams

_Request = tuple[list[Message], SamplingParams, Future]


class BatchingLLM:
    """An `LLM` in front of another one that merges concurrent calls.

    Args:
        llm: the backend (it sees one thread only).
        window_ms: how long the first request of a batch waits for company.
        max_batch: prompts per backend call.
        timeout_s: how long a caller waits for its generations before `BackendTimeout`.
    """

    def __init__(self, llm: LLM, window_ms: float, max_batch: int, timeout_s: float) -> None:
        self.llm, self.name = llm, llm.name
        self.window_s, self.max_batch, self.timeout_s = window_ms / 1000, max_batch, timeout_s
        self.batches: list[int] = []  # sizes of the backend calls made (for tests and stats)
        self._busy_since: float | None = None  # when the backend call in flight began
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="memalpha-batcher", daemon=True)
        self._worker.start()

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        futures: list[Future] = []
        for i, p in enumerate(prompts):
            f: Future = Future()
            self._queue.put((p, sampling.row(i), f))  # greedy rows batch with greedy ones
            futures.append(f)
        deadline = time.monotonic() + self.timeout_s
        try:
            return [f.result(timeout=max(0.0, deadline - time.monotonic())) for f in futures]
        except FutureTimeout:
            for f in futures:
                f.cancel()
            raise BackendTimeout(
                f"{self.name}: no generation within {self.timeout_s:g} s"
            ) from None

    def health(self) -> str | None:
        """None when the backend looks alive; why not when a call has been running past the
        deadline, or the backend's own probe fails."""
        since = self._busy_since
        running = time.monotonic() - since if since is not None else 0.0
        if running > self.timeout_s:
            return (
                f"{self.name}: a generation has run {running:.0f} s (deadline {self.timeout_s:g} s)"
            )
        probe = getattr(self.llm, "health", None)
        return probe() if probe is not None else None

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5)
        self.llm.close()

    def _run(self) -> None:
        pending: list[_Request] = []
        while True:
            item = pending.pop(0) if pending else self._queue.get()
            if item is None:
                return
            batch, deadline = [item], time.monotonic() + self.window_s
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                # one backend call takes one sampling setting; others wait for the next batch
                (batch if nxt[1] == item[1] else pending).append(nxt)
            live = [r for r in batch if r[2].set_running_or_notify_cancel()]
            if not live:
                continue
            self._busy_since = time.monotonic()
            try:
                gens = self.llm.generate([r[0] for r in live], item[1])
            except Exception as exc:  # handed to every caller of the batch
                err = exc if isinstance(exc, BackendError) else BackendError(f"{self.name}: {exc}")
                for r in live:
                    r[2].set_exception(err)
                continue
            finally:
                self._busy_since = None
            self.batches.append(len(live))
            for r, g in zip(live, gens, strict=True):
                r[2].set_result(g)
