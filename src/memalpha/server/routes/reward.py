"""The reward terms as a service, for training on another machine: answers over given
memories (r1) and content validity of writes (r4)."""

from __future__ import annotations

from fastapi import APIRouter

from memalpha.server.deps import Config, Service, cap, cap_each, timed
from memalpha.server.errors import ContainedRoute, ErrorCode
from memalpha.server.schemas import AnswerOut, Answers, BatchQARequest, JudgeRequest, Scores

router = APIRouter(prefix="/v1", tags=["reward"], route_class=ContainedRoute)


@router.post("/reader/answer")
async def batch_answer(body: BatchQARequest, service: Service, cfg: Config) -> Answers:
    """Answer questions over given memories (r1 of the training reward, as a service)."""
    limits = cfg.limits
    cap(len(body.items), limits.max_questions, ErrorCode.TOO_MANY_QUESTIONS, "items")
    questions = [i.question for i in body.items]
    most = limits.max_question_chars
    cap_each(questions, most, ErrorCode.QUESTION_TOO_LONG, "characters in a question")
    items = [(i.memory, i.question, i.data_source) for i in body.items]
    answers = await timed(cfg, service.answer_batch, items)
    return Answers(answers=[AnswerOut.of(a) for a in answers])


@router.post("/judge")
async def batch_judge(body: JudgeRequest, service: Service, cfg: Config) -> Scores:
    """Content validity of writes (r4 of the training reward, as a service)."""
    limits = cfg.limits
    cap(len(body.writes), limits.max_questions, ErrorCode.TOO_MANY_WRITES, "writes")
    contents = [w.content for w in body.writes]
    cap_each(contents, limits.max_content_chars, ErrorCode.CONTENT_TOO_LONG, "content chars")
    writes = [(w.memory_type, w.content) for w in body.writes]
    return Scores(scores=await timed(cfg, service.judge_batch, writes))
