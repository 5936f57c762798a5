"""The one chunker: split text into sentences (`memalpha.sentences`), pack sentences into chunks
of at most N tokens. Packing follows the published `create_chunks_use_sent_tokenizer`: greedy, a
sentence never split unless it alone exceeds the budget (then it is cut at word boundaries).
"""

from __future__ import annotations

from memalpha.sentences import split_sentences
from memalpha.tokens import TokenCounter


def pack(
    units: list[str], max_tokens: int, counter: TokenCounter, *, joiner: str = " "
) -> list[str]:
    """Greedily join `units` (sentences, lines, paragraphs) into chunks of ≤ `max_tokens`.

    A unit longer than the budget on its own is cut at word boundaries into pieces that fit.

    Raises:
        ValueError: `max_tokens` < 1.
    """
    return [
        joiner.join(pieces) for pieces, _ in pack_indexed(units, max_tokens, counter, joiner=joiner)
    ]


def pack_indexed(
    units: list[str], max_tokens: int, counter: TokenCounter, *, joiner: str = " "
) -> list[tuple[list[str], set[int]]]:
    """Like `pack`, but each chunk comes with the indices of the units it holds (for evidence)."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    pieces = [(p, i) for i, unit in enumerate(units) for p in _fit(unit, max_tokens, counter)]
    join_cost = max(1, counter.count(joiner))
    chunks: list[tuple[list[str], set[int]]] = []
    start, used = 0, 0
    for end, (piece, _) in enumerate(pieces):
        n = counter.count(piece)
        if end > start and used + join_cost + n > max_tokens:
            start = _close(chunks, pieces, start, end, max_tokens, counter, joiner)
            used = sum(counter.count(p) + join_cost for p, _ in pieces[start:end])
        used += n + (join_cost if end > start else 0)
    while start < len(pieces):
        start = _close(chunks, pieces, start, len(pieces), max_tokens, counter, joiner)
    return chunks


def _close(chunks, pieces, start: int, end: int, max_tokens: int, counter, joiner: str) -> int:
    """Emit pieces[start:end] as a chunk, dropping trailing pieces while the exact count of the
    joined text is over budget (token counts are not additive); returns the next start."""
    while (
        end - start > 1 and counter.count(joiner.join(p for p, _ in pieces[start:end])) > max_tokens
    ):
        end -= 1
    chunks.append(([p for p, _ in pieces[start:end]], {i for _, i in pieces[start:end]}))
    return end


def _fit(unit: str, max_tokens: int, counter: TokenCounter) -> list[str]:
    """Cut an over-budget unit at word boundaries (inside a word only if one word is too long)."""
    if counter.count(unit) <= max_tokens:
        return [unit]
    pieces, words = [], unit.split(" ")
    while words:
        n = _longest_prefix(
            len(words), lambda k, ws=words: counter.count(" ".join(ws[:k])) <= max_tokens
        )
        if n == 0:  # a single word over budget: cut it by characters
            word = words.pop(0)
            while word:
                m = _longest_prefix(len(word), lambda k, w=word: counter.count(w[:k]) <= max_tokens)
                pieces.append(word[: max(1, m)])
                word = word[max(1, m) :]
            continue
        pieces.append(" ".join(words[:n]))
        words = words[n:]
    return pieces


def _longest_prefix(size: int, fits) -> int:
    """The largest k in [0, size] with fits(k), for a monotone predicate (binary search)."""
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def chunk_text(text: str, max_tokens: int, counter: TokenCounter) -> list[str]:
    """Sentence-pack a long text (the MemoryAgentBench chunking rule)."""
    return pack(split_sentences(text), max_tokens, counter)


def last_tokens(text: str, max_tokens: int, counter: TokenCounter) -> str:
    """The longest suffix of `text` within `max_tokens` (long-context truncation keeps the end,
    as published)."""
    if counter.count(text) <= max_tokens:
        return text
    keep = _longest_prefix(len(text), lambda n: counter.count(text[len(text) - n :]) <= max_tokens)
    return text[len(text) - keep :]
