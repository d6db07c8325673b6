"""The assistant's ``Interpreter`` (core/ports.py): one short model call that reads a member's instruction
for another feature (the feed's ``/feed steer``), within the compose budget, through the same provider
boundary as drafts. The asker owns the prompt and validates the answer; the member's words travel only as
delimited data in the user message.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from core.assistant.models import translate_error
from core.errors import ChorusError, ProviderBadOutput, ProviderUnavailable
from core.text import clean

MAX_TEXT = 1000


class ModelInterpreter:
    def __init__(self, model: Callable[[], Awaitable[BaseChatModel]], budget_s: float) -> None:
        self.model = model
        self.budget_s = budget_s

    async def __call__(self, instructions: str, text: str, *, max_tokens: int) -> str:
        data = re.sub(r"</?\s*request\s*>", "", clean(text)[:MAX_TEXT], flags=re.IGNORECASE)
        messages = [SystemMessage(instructions), HumanMessage(f"<request>\n{data}\n</request>")]
        try:
            async with asyncio.timeout(self.budget_s):
                model = await self.model()
                answer = await model.bind(max_tokens=max_tokens).ainvoke(messages)
        except TimeoutError as exc:
            raise ProviderUnavailable("model timed out reading an instruction") from exc
        except ChorusError:
            raise
        except Exception as exc:
            raise translate_error(exc) from exc
        if not isinstance(answer, AIMessage):
            raise ProviderBadOutput("model returned no message")
        content = answer.content
        if isinstance(content, str):
            return content
        return "".join(c if isinstance(c, str) else str(c.get("text", "")) for c in content)
