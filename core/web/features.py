"""The feature objects the web app needs, found in one place (``Services`` is getting typed fields; when
it does, only this module changes), and the public address links point to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.errors import NotAvailable

if TYPE_CHECKING:
    from core.assistant.commands import Assistant
    from core.feed.service import FeedService
    from core.prompts.service import Prompts
    from core.services import Services


def _feature(svc: Services, name: str) -> Any:
    return svc.extras.get(name)


def feed_of(svc: Services) -> FeedService:
    feed: FeedService | None = _feature(svc, "feed")
    if feed is None:
        raise NotAvailable("The feed is not installed on this server.")
    return feed


def prompts_of(svc: Services) -> Prompts | None:
    prompts: Prompts | None = _feature(svc, "prompts")
    return prompts


def assistant_of(svc: Services) -> Assistant | None:
    assistant: Assistant | None = _feature(svc, "assistant")
    return assistant


def base_url(svc: Services) -> str:
    """Where people reach the HTTP port (``CHORUS_FEED_BASE_URL``, else ``http://<host>:<port>``)."""
    feed = feed_of(svc)
    if feed.settings.base_url:
        return feed.settings.base_url.rstrip("/")
    port = svc.settings.http_port
    if port <= 0:
        raise NotAvailable("The web pages are turned off on this server (CHORUS_HTTP_PORT=0).")
    return f"http://{feed.settings.http_host}:{port}"
