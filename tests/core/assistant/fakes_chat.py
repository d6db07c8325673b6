"""In-process chat models for unit tests of parsing and routing (the real paths are tested over HTTP)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedModel(BaseChatModel):
    """Answers from a script (strings, exceptions or functions of the messages) and records every call."""

    script: list[Any] = Field(default_factory=list)
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    kwargs: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.calls.append(list(messages))
        self.kwargs.append(kw)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        text = step(messages) if callable(step) else step
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def echo(messages: list[BaseMessage]) -> str:
    """A model that obeys injections: repeats its system prompt and the last user message."""
    return f"{messages[0].content}\n\n{messages[-1].content}"


def source(model: BaseChatModel) -> Callable[[], Any]:
    async def get() -> BaseChatModel:
        return model

    return get
