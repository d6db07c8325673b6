"""Which chat model serves, and the provider boundary every model, image and moderation call goes through.

One code path: langchain-openai's ``ChatOpenAI`` talks to OpenAI (``OPENAI_API_KEY``), to any
OpenAI-compatible endpoint (``OPENAI_BASE_URL``: Ollama, vLLM, LM Studio, llama.cpp) and, with neither set,
to the bundled SmolLM2 that ``local_model`` serves on 127.0.0.1. ``CHORUS_CHAT_MODELS`` names several, in
the order they are tried (``model_chain``; ``ModelRuntime.chain`` hands them to the composer, which moves on
when one is down, too slow or out of quota).

Errors are translated here (``translate_error``), so callers only ever see ``core.errors``:
429 -> ProviderRateLimited (with ``retry_after`` from Retry-After), timeouts / 5xx / connection ->
ProviderUnavailable, unusable answers -> ProviderBadOutput, refused content -> ContentRefused. The retry
policy (``call_with_retries``) is Chorus's own rather than the SDK's, so a long Retry-After is returned to
the user as "try again in N s" instead of blocking a worker for two minutes, and a timeout is not retried
(a provider that was too slow once is usually too slow again).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from core import metrics
from core.assistant.local_model import (
    BUNDLED_NAME,
    MODEL_ALIAS,
    LocalModelServer,
    bundled_model_path,
    unavailable_reason,
)
from core.errors import (
    ChorusError,
    ConfigError,
    ContentRefused,
    InvalidInput,
    ProviderBadOutput,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
Source = Literal["openai", "compatible", "local"]

LOCAL_MAX_TOKENS = 512  # the tiny model rambles until its context is full unless told to stop
_BACKOFF_BASE_S, _BACKOFF_MAX_S = 0.5, 4.0


def model_source(settings: Settings) -> Source:
    if settings.openai_base_url:
        return "compatible"
    if settings.openai_api_key is not None and settings.openai_api_key.get_secret_value():
        return "openai"
    return "local"


def local_model_path(settings: Settings) -> Path | None:
    return settings.local_model_path or bundled_model_path()


@dataclass(frozen=True)
class ChainEntry:
    """One model of ``CHORUS_CHAT_MODELS``: ``openai:<model>``, ``compatible:<model>`` or ``local``."""

    source: Source
    model: str = ""

    @classmethod
    def parse(cls, text: str, settings: Settings) -> ChainEntry:
        kind, _, model = text.strip().partition(":")
        kind = kind.strip().lower()
        if kind == "local":
            return cls("local", MODEL_ALIAS)
        if kind not in ("openai", "compatible"):
            raise ConfigError(
                f"CHORUS_CHAT_MODELS: {text!r} is not openai:<model>, compatible:<model> or local"
            )
        if kind == "compatible" and not settings.openai_base_url:
            raise ConfigError(f"CHORUS_CHAT_MODELS: {text!r} needs OPENAI_BASE_URL")
        return cls(kind, model.strip() or settings.chat_model)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """How the person reading a draft is told which model wrote it."""
        return f"{BUNDLED_NAME} (local)" if self.source == "local" else self.model


def model_chain(settings: Settings) -> list[ChainEntry]:
    """The chat models in the order they are tried (``CHORUS_CHAT_MODELS``, else the one configured)."""
    if settings.chat_models:
        return [ChainEntry.parse(e, settings) for e in settings.chat_models]
    source = model_source(settings)
    return [ChainEntry(source, MODEL_ALIAS if source == "local" else settings.chat_model)]


def _describe_entry(entry: ChainEntry, settings: Settings) -> str:
    if entry.source == "openai":
        where = f" via {settings.openai_base_url}" if settings.openai_base_url else ""
        return f"OpenAI {entry.model}{where} (OPENAI_API_KEY)"
    if entry.source == "compatible":
        auth = ", with OPENAI_API_KEY" if settings.openai_api_key is not None else ""
        return f"OpenAI-compatible at {settings.openai_base_url} (model {entry.model}{auth})"
    path = local_model_path(settings)
    name = BUNDLED_NAME if settings.local_model_path is None else f"local GGUF {settings.local_model_path}"
    reason = unavailable_reason(path)
    if reason:
        return f"{name}: NOT available ({reason}); set OPENAI_API_KEY or OPENAI_BASE_URL"
    where = f"port {settings.local_model_port}" if settings.local_model_port else "a free port"
    prefix = "bundled " if settings.local_model_path is None else ""
    return f"{prefix}{name} via llama-cpp-python server (local, started on demand on 127.0.0.1, {where})"


def describe_model(settings: Settings) -> str:
    """One line for ``chorus config check``: which models serve, in which order (never the key itself)."""
    try:
        chain = model_chain(settings)
    except ConfigError as exc:
        return f"NOT usable: {exc}"
    if len(chain) == 1:
        return _describe_entry(chain[0], settings)
    steps = " -> ".join(f"{i}. {_describe_entry(e, settings)}" for i, e in enumerate(chain, 1))
    return f"chain (CHORUS_CHAT_MODELS; an outage, timeout or spent quota moves on): {steps}"


# ---- errors -------------------------------------------------------------------------------------------


def retry_after_from(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            if name != "retry-after":
                continue
            seconds = parsed.timestamp() - time.time()
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _error_code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    code = error.get("code") if isinstance(error, dict) else None
    return str(code or getattr(exc, "code", "") or "")


def translate_error(exc: BaseException, what: str = "model") -> ChorusError:
    """Map an SDK / parsing failure to the ChorusError the rest of Chorus understands."""
    if isinstance(exc, ChorusError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ProviderUnavailable(f"{what} provider timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable(f"{what} provider unreachable: {type(exc).__name__}")
    if isinstance(exc, openai.APIResponseValidationError):
        return ProviderBadOutput(f"{what} provider sent an invalid response")
    if isinstance(exc, openai.APIStatusError):
        status, code = exc.status_code, _error_code(exc)
        detail = f"{what} provider answered {status} {code}".rstrip()
        if status == 429 and code == "insufficient_quota":
            return ProviderUnavailable(
                detail, user_message="The AI provider account is out of credit. Please tell a moderator."
            )
        if status == 429:
            wait = retry_after_from(exc.response.headers)
            error = ProviderRateLimited(detail, retry_after=wait)
            if wait is not None:
                error.user_message = (
                    f"The {_noun(what)} service is busy. Please try again in {_human_wait(wait)}."
                )
            return error
        if status >= 500:
            return ProviderUnavailable(detail)
        if code in {"content_policy_violation", "moderation_blocked", "content_filter"}:
            return ContentRefused(f"The {_noun(what)} service refused this request under its content policy.")
        if code == "context_length_exceeded":
            return InvalidInput("That is too long for the model to read. Please shorten it and try again.")
        if status in (401, 403):
            return ProviderUnavailable(f"{detail}: check OPENAI_API_KEY")
        if status == 404:
            return ProviderUnavailable(f"{detail}: check the model name and OPENAI_BASE_URL")
        return ProviderError(detail)
    if isinstance(exc, (json.JSONDecodeError, ValueError, KeyError, TypeError, AttributeError, IndexError)):
        # Raised while parsing what the provider sent (e.g. ``choices: null``, a body that is not JSON).
        return ProviderBadOutput(f"{what} provider sent an unusable answer: {type(exc).__name__}")
    return ProviderError(f"{what} provider failed: {type(exc).__name__}")


def _noun(what: str) -> str:
    """How users know each provider: "the writing service", "the image service"."""
    return {"model": "writing", "moderation": "safety check"}.get(what, what)


def _human_wait(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


@contextlib.contextmanager
def provider_errors(what: str = "model") -> Iterator[None]:
    """``with provider_errors():`` around any provider call or parse turns its failures into ChorusErrors."""
    try:
        yield
    except ChorusError:
        raise
    except Exception as exc:
        raise translate_error(exc, what) from exc


def _retry_delay(exc: BaseException, error: ChorusError, attempt: int, max_wait_s: float) -> float | None:
    """How long to wait before the next attempt, or None when this failure is not worth retrying."""
    if isinstance(error, ProviderRateLimited) and error.retry_after is not None:
        return error.retry_after if error.retry_after <= max_wait_s else None
    transient = (
        isinstance(error, ProviderRateLimited)
        or (isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError))
        or (isinstance(exc, openai.APIStatusError) and exc.status_code >= 500)
    )
    if not transient:
        return None  # timeouts, configuration, bad requests and bad output: retrying cannot help
    jitter = 0.75 + 0.25 * random.random()  # noqa: S311 - spreading retries, not security
    return min(_BACKOFF_BASE_S * 2**attempt, _BACKOFF_MAX_S, max_wait_s) * jitter


async def call_with_retries(
    call: Callable[[], Awaitable[T]], *, max_retries: int, max_wait_s: float, what: str = "model"
) -> T:
    """Run ``call``; retry 429 (honouring Retry-After up to ``max_wait_s``), 5xx and connection errors."""
    with metrics.timed_call(what):  # calls, outcome and latency per provider (/metrics)
        return await _with_retries(call, max_retries=max_retries, max_wait_s=max_wait_s, what=what)


async def _with_retries(
    call: Callable[[], Awaitable[T]], *, max_retries: int, max_wait_s: float, what: str
) -> T:
    attempt = 0
    while True:
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = translate_error(exc, what)
            delay = _retry_delay(exc, error, attempt, max_wait_s) if attempt < max_retries else None
            if delay is None:
                if error is exc:
                    raise
                raise error from exc
            log.info(
                "%s call failed (%s); retry %d/%d in %.2fs", what, error, attempt + 1, max_retries, delay
            )
            attempt += 1
            await asyncio.sleep(delay)


# ---- the chat model -----------------------------------------------------------------------------------


class ChorusChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose failures leave as ChorusErrors, retried by Chorus's policy (SDK retries are off).

    ``legacy_max_tokens`` sends ``max_tokens`` instead of ``max_completion_tokens``: llama.cpp, Ollama and
    LM Studio only read the former, and without a cap the tiny local model writes until its context is full.
    """

    chorus_max_retries: int = 2
    chorus_max_wait_s: float = 20.0
    legacy_max_tokens: bool = False

    def _get_request_payload(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(*args, **kwargs)
        if self.legacy_max_tokens and "max_completion_tokens" in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        return payload

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        generate = super()._agenerate

        async def once() -> ChatResult:
            return await generate(messages, stop=stop, run_manager=run_manager, **kwargs)

        return await call_with_retries(
            once, max_retries=self.chorus_max_retries, max_wait_s=self.chorus_max_wait_s
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Streams are retried only until the first chunk arrives (after that the caller has seen text)."""
        attempt = 0
        while True:
            started = False
            try:
                async for chunk in super()._astream(messages, stop=stop, run_manager=run_manager, **kwargs):
                    started = True
                    yield chunk
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = translate_error(exc)
                retry = not started and attempt < self.chorus_max_retries
                delay = _retry_delay(exc, error, attempt, self.chorus_max_wait_s) if retry else None
                if delay is None:
                    raise error from exc
                attempt += 1
                await asyncio.sleep(delay)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Synchronous use (scripts, bench) still gets translated errors; the async path is the one used."""
        with provider_errors():
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


@dataclass(frozen=True)
class ChatBackend:
    """One model of the chain as the composer sees it: how to get it and how to talk to it."""

    label: str  # told to the person: "gpt-4.1-mini", "SmolLM2-135M-Instruct (local)"
    model: Callable[[], Awaitable[BaseChatModel]]
    small: bool = False  # the small-model profile (short prompt, examples, grammar)
    structured: bool = False  # the provider has structured output (OpenAI's json_schema)
    budget_s: float | None = None  # time this model may take for one draft (None: the composer's)


class ModelRuntime:
    """Hands out the chat models of the chain; for the bundled model it owns the local server's lifetime."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.chain_entries = model_chain(settings)
        self.source: Source = self.chain_entries[0].source
        self.local = self.source == "local"  # the first choice is the bundled model
        self.server: LocalModelServer | None = None
        if any(e.source == "local" for e in self.chain_entries):
            self.server = LocalModelServer(
                local_model_path(settings) or settings.data_dir / "missing-model.gguf",
                port=settings.local_model_port,
                threads=settings.local_model_threads,
                start_timeout_s=settings.local_model_start_timeout_s,
                log_path=settings.data_dir / "logs" / "local-model.log",
            )
        self._models: dict[ChainEntry, ChorusChatOpenAI] = {}
        self._model_url: str | None = None

    def describe(self) -> str:
        return describe_model(self.settings)

    def chain(self) -> list[ChatBackend]:
        """The backends in the order they are tried."""
        s = self.settings
        out = []
        for entry in self.chain_entries:

            async def get(entry: ChainEntry = entry) -> BaseChatModel:
                return await self.model_for(entry)

            local = entry.source == "local"
            out.append(
                ChatBackend(
                    label=entry.label,
                    model=get,
                    small=local,
                    structured=entry.source == "openai",
                    budget_s=s.local_compose_budget_s if local else s.compose_budget_s,
                )
            )
        return out

    async def chat_model(self) -> BaseChatModel:
        """The first model of the chain (starting the bundled model's server when it is that one)."""
        return await self.model_for(self.chain_entries[0])

    async def model_for(self, entry: ChainEntry) -> BaseChatModel:
        if entry.source != "local":
            if entry not in self._models:
                self._models[entry] = self._build(entry, self.settings.openai_base_url, entry.model)
            return self._models[entry]
        assert self.server is not None  # noqa: S101 - created whenever the chain has a local entry
        base_url = await self.server.ensure_running()
        if entry not in self._models or self._model_url != f"{base_url}#{self.server.api_key}":
            self._models[entry] = self._build(entry, base_url, MODEL_ALIAS, api_key=self.server.api_key)
            self._model_url = f"{base_url}#{self.server.api_key}"
        return self._models[entry]

    def _build(
        self, entry: ChainEntry, base_url: str | None, model: str, api_key: str | None = None
    ) -> ChorusChatOpenAI:
        s = self.settings
        key = api_key or (s.openai_api_key.get_secret_value() if s.openai_api_key else "") or "not-needed"
        local = entry.source == "local"
        return ChorusChatOpenAI(
            model=model,
            api_key=SecretStr(key),
            base_url=base_url,
            timeout=s.model_timeout_s,
            max_retries=0,
            use_responses_api=False,  # Chat Completions: what every OpenAI-compatible server speaks
            max_tokens=LOCAL_MAX_TOKENS if local else None,
            chorus_max_retries=s.model_max_retries,
            chorus_max_wait_s=s.model_max_retry_wait_s,
            legacy_max_tokens=entry.source != "openai",
            stream_usage=True,  # usage (for quotas and cost) arrives as the last chunk of a stream
        )

    async def aclose(self) -> None:
        """Forget the models and stop the local server (if one was started). The models' HTTP clients are
        not closed: langchain shares one cached client per base URL and timeout across the process, and
        closing it broke every later model at that URL (another runtime, or this one rebuilt)."""
        self._models.clear()
        if self.server is not None:
            await self.server.stop()
