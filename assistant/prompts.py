"""The prompt of a run: system prompt, custom instructions, and as many of the latest
turns as fit the tier's context (oldest dropped first)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from assistant.inference import PROMPT_OVERHEAD, estimate_tokens

DEFAULT_SYSTEM_PROMPT = (
    "You are Lhama, a helpful, honest assistant. Answer clearly and concisely, "
    "and use Markdown (lists, code blocks) when it helps."
)
# Never let the answer budget shrink below this when a long prompt is fitted.
MIN_OUTPUT_TOKENS = 64


class PromptTooLong(Exception):
    code = "too_large"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def system_prompt(*, custom_instructions: str = "", project_instructions: str = "") -> str:
    """The system message: Lhama's prompt, the person's custom instructions, and the
    instructions of the project the conversation is filed in (read at every run, so an
    edited project applies to its conversations' next answers)."""
    text = DEFAULT_SYSTEM_PROMPT
    if custom_instructions.strip():
        text += "\n\nThe person you are talking with asked you to follow these instructions:\n" + custom_instructions.strip()
    if project_instructions.strip():
        text += "\n\nThis conversation belongs to a project with these instructions:\n" + project_instructions.strip()
    return text


def tokens_for_latest_turn(*, system: str, context_length: int, max_output_tokens: int) -> int:
    """How many tokens (estimated) the latest turn may have at most: the context less
    the system message and the shortest answer fit_messages allows."""
    from assistant.inference import PER_MESSAGE_OVERHEAD

    used = PROMPT_OVERHEAD + estimate_tokens(system) + PER_MESSAGE_OVERHEAD
    return context_length - used - PER_MESSAGE_OVERHEAD - min(MIN_OUTPUT_TOKENS, max_output_tokens)


def fit_messages(
    *,
    system: str,
    turns: Sequence[dict],
    context_length: int,
    max_output_tokens: int,
    count: Callable[[dict], int] | None = None,
) -> tuple[list[dict], int]:
    """(messages to send, max_tokens for the answer).

    Keeps the system message and the newest turns; drops the oldest turns first, and
    never starts the kept history with an assistant turn. `count` gives the tokens of
    one message (including its template overhead); the default is a safe estimate.
    Raises PromptTooLong when not even the latest turn fits.
    """
    from assistant.inference import PER_MESSAGE_OVERHEAD

    def default_count(message: dict) -> int:
        return estimate_tokens(message["content"]) + PER_MESSAGE_OVERHEAD

    count = count or default_count
    system_message = {"role": "system", "content": system}
    used = PROMPT_OVERHEAD + count(system_message)
    min_output = min(MIN_OUTPUT_TOKENS, max_output_tokens)
    budget = context_length - used - max_output_tokens
    kept: list[dict] = []
    for turn in reversed(turns):
        tokens = count(turn)
        if tokens > budget:
            break
        budget -= tokens
        used += tokens
        kept.append(turn)
    if not kept and turns:
        # Not even the latest turn fits beside a full-length answer: give the answer less room.
        latest = turns[-1]
        tokens = count(latest)
        if used + tokens + min_output > context_length:
            raise PromptTooLong("This message is too long for the model's context window. Shorten it and try again.")
        used += tokens
        kept.append(latest)
    kept.reverse()
    while kept and kept[0]["role"] == "assistant":
        used -= count(kept.pop(0))
    max_tokens = max(min_output, min(max_output_tokens, context_length - used))
    return [system_message, *kept], max_tokens
