"""The X API v2 calls the adapter makes, off the event loop, with X's rate limits respected.

tweepy's ``AsyncClient`` hard-codes its host, so the sync ``tweepy.Client`` runs in worker threads
(``asyncio.to_thread``) over :mod:`bots.x.transport`'s rewriting session. Clients return raw responses
(``return_type=requests.Response``) so every call's ``x-rate-limit-*`` headers are read: a route whose window
is spent is not called again before its reset. tweepy 4.17 has no v2 media upload, so ``POST
/2/media/upload`` (simple and chunked) and ``POST /2/media/metadata`` (alt text) are made here with the same
OAuth 1.0a signer. Every failure leaves this module as a ``PlatformError`` (see :func:`error_for`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
import tweepy  # type: ignore[import-untyped]  # tweepy ships no type information

from bots.x.config import XSettings
from bots.x.transport import X_API_BASE, make_client, oauth1_auth
from core.errors import DeliveryRejected, PlatformError, PlatformRateLimited, PlatformUnavailable

log = logging.getLogger(__name__)

JSON = dict[str, Any]
TWEET_FIELDS = [
    "author_id",
    "conversation_id",
    "created_at",
    "in_reply_to_user_id",
    "referenced_tweets",
    "attachments",
    "entities",
    "public_metrics",
    "lang",
    "display_text_range",
]
EXPANSIONS = [
    "author_id",
    "referenced_tweets.id",
    "referenced_tweets.id.author_id",
    "attachments.media_keys",
]
USER_FIELDS = ["username", "name"]
MEDIA_FIELDS = ["type", "url", "preview_image_url", "alt_text"]
MAX_ALT_TEXT = 1000
MAX_PAGES = 8  # X serves at most 800 recent mentions; 8 pages of 100
MEDIA_POLL_LIMIT_S = 120.0


class RouteLimits:
    """What X last said about each route's window (``x-rate-limit-remaining`` / ``-reset``)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._windows: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def update(self, route: str, headers: Mapping[str, str]) -> None:
        remaining, reset = headers.get("x-rate-limit-remaining"), headers.get("x-rate-limit-reset")
        if remaining is None or reset is None:
            return
        try:
            window = (int(remaining), float(reset))
        except ValueError:
            return
        with self._lock:
            self._windows[route] = window

    def wait_s(self, route: str) -> float:
        """Seconds until ``route`` may be called again (0 when it has calls left or its window reset)."""
        with self._lock:
            remaining, reset = self._windows.get(route, (1, 0.0))
        return max(0.0, reset - self.clock()) if remaining <= 0 else 0.0


def error_for(
    status: int, headers: Mapping[str, str], detail: str, clock: Callable[[], float] = time.time
) -> PlatformError:
    """X's answer as the core's error: 429 waits for the reset, 5xx retries, other 4xx are final."""
    if status == 429:
        reset = headers.get("x-rate-limit-reset")
        try:
            retry_after = float(reset) - clock() + 1.0 if reset else 60.0
        except ValueError:
            retry_after = 60.0
        return PlatformRateLimited(f"X rate limit: {detail}", retry_after=max(1.0, retry_after))
    if status >= 500:
        return PlatformUnavailable(f"X answered {status}: {detail}")
    return DeliveryRejected(f"X refused ({status}): {detail}")


def _detail(response: requests.Response) -> str:
    """A short, secret-free description of an error answer (X's title/detail, never headers)."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "")[:300]
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0].get("detail") or body.get("detail"))[:300]
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]


@dataclass(frozen=True, slots=True)
class Me:
    """The bot's own account."""

    id: str
    username: str
    name: str = ""


class XApi:
    """One X account's API: reads (mentions, timelines, lookups) and writes (tweets, media)."""

    def __init__(self, settings: XSettings, *, limits: RouteLimits | None = None) -> None:
        self.settings = settings
        self.limits = limits or RouteLimits()
        self._reader = self._client()
        self._writer = self._client()  # a separate session: uploads never hold up polling
        self._read_user_auth = not settings.secret("bearer_token")

    def _client(self) -> tweepy.Client:
        s = self.settings
        client = make_client(
            s.rewrite_base_url,
            s.secret("api_key"),
            s.secret("api_secret"),
            s.secret("access_token"),
            s.secret("access_token_secret"),
            s.secret("bearer_token") or None,
            timeout=(min(10.0, s.request_timeout_s), s.request_timeout_s),
        )
        client.return_type = requests.Response
        return client

    def close(self) -> None:
        self._reader.session.close()
        self._writer.session.close()

    # -- plumbing -------------------------------------------------------------------------------
    async def _call(self, route: str, fn: Callable[..., requests.Response], *args: Any, **kw: Any) -> JSON:
        wait = self.limits.wait_s(route)
        if wait > 0:
            raise PlatformRateLimited(f"{route}: window spent", retry_after=wait)
        return await asyncio.to_thread(self._sync_call, route, fn, *args, **kw)

    def _sync_call(self, route: str, fn: Callable[..., requests.Response], *args: Any, **kw: Any) -> JSON:
        try:
            response = fn(*args, **kw)
        except tweepy.HTTPException as exc:
            self.limits.update(route, exc.response.headers)
            raise error_for(exc.response.status_code, exc.response.headers, _detail(exc.response)) from None
        except (requests.RequestException, tweepy.TweepyException) as exc:
            raise PlatformUnavailable(f"{route}: {type(exc).__name__}") from None
        self.limits.update(route, response.headers)
        return _json(response)

    def _checked(self, route: str, response: requests.Response) -> JSON:
        """For requests made without tweepy (media): the same limits and errors as tweepy calls."""
        self.limits.update(route, response.headers)
        if response.status_code >= 400:
            raise error_for(response.status_code, response.headers, _detail(response))
        return _json(response)

    # -- reads ----------------------------------------------------------------------------------
    async def me(self) -> Me:
        data = (await self._call("GET /2/users/me", self._reader.get_me, user_auth=True))["data"]
        return Me(id=str(data["id"]), username=str(data["username"]), name=str(data.get("name", "")))

    async def mentions(
        self, user_id: str, *, since_id: str | None, start_time: datetime | None, token: str | None
    ) -> JSON:
        return await self._call(
            "GET /2/users/:id/mentions",
            self._reader.get_users_mentions,
            user_id,
            since_id=since_id,
            start_time=start_time if since_id is None else None,
            pagination_token=token,
            max_results=100,
            **_EXPANDED,
            user_auth=self._read_user_auth,
        )

    async def user_tweets(self, user_id: str, *, since_id: str | None, token: str | None) -> JSON:
        return await self._call(
            "GET /2/users/:id/tweets",
            self._reader.get_users_tweets,
            user_id,
            since_id=since_id,
            pagination_token=token,
            max_results=100,
            exclude=["retweets"],
            **_EXPANDED,
            user_auth=self._read_user_auth,
        )

    async def list_tweets(self, list_id: str, *, token: str | None) -> JSON:
        return await self._call(
            "GET /2/lists/:id/tweets",
            self._reader.get_list_tweets,
            list_id,
            pagination_token=token,
            max_results=100,
            **_EXPANDED,
            user_auth=self._read_user_auth,
        )

    async def search(self, query: str, *, since_id: str | None, token: str | None) -> JSON:
        return await self._call(
            "GET /2/tweets/search/recent",
            self._reader.search_recent_tweets,
            query,
            since_id=since_id,
            next_token=token,
            max_results=100,
            **_EXPANDED,
            user_auth=self._read_user_auth,
        )

    async def tweets(self, ids: list[str]) -> JSON:
        """Lookup of up to 100 tweets; deleted ones come back as per-item "Not Found" errors."""
        return await self._call(
            "GET /2/tweets", self._reader.get_tweets, ids, **_EXPANDED, user_auth=self._read_user_auth
        )

    async def users_by_username(self, usernames: list[str]) -> JSON:
        return await self._call(
            "GET /2/users/by",
            self._reader.get_users,
            usernames=usernames,
            user_fields=USER_FIELDS,
            user_auth=self._read_user_auth,
        )

    # -- writes ---------------------------------------------------------------------------------
    async def create_tweet(
        self,
        text: str,
        *,
        reply_to: str | None = None,
        media_ids: list[str] | None = None,
        reply_settings: str | None = None,
    ) -> str:
        body = await self._call(
            "POST /2/tweets",
            self._writer.create_tweet,
            text=text or None,
            in_reply_to_tweet_id=reply_to,
            media_ids=media_ids or None,
            reply_settings=reply_settings,
            user_auth=True,
        )
        return str(body["data"]["id"])

    async def delete_tweet(self, tweet_id: str) -> None:
        await self._call("DELETE /2/tweets/:id", self._writer.delete_tweet, tweet_id, user_auth=True)

    async def upload_image(self, data: bytes, mime: str, alt_text: str = "") -> str:
        """Upload through ``POST /2/media/upload`` (chunked above the simple limit), then set alt text."""
        for route in _MEDIA_ROUTES:
            wait = self.limits.wait_s(route)
            if wait > 0:
                raise PlatformRateLimited(f"{route}: window spent", retry_after=wait)
        return await asyncio.to_thread(self._upload, data, mime, alt_text)

    def _upload(self, data: bytes, mime: str, alt_text: str) -> str:
        try:
            if mime == "image/gif":  # may be animated: X processes those after a chunked upload
                media_id = self._upload_chunked(data, mime, "tweet_gif")
            elif len(data) <= self.settings.media_simple_max_bytes:
                media_id = self._upload_simple(data, mime)
            else:
                media_id = self._upload_chunked(data, mime, "tweet_image")
            if alt_text.strip():
                self._post_json(
                    "POST /2/media/metadata",
                    "/2/media/metadata",
                    {"id": media_id, "metadata": {"alt_text": {"text": alt_text.strip()[:MAX_ALT_TEXT]}}},
                )
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"media upload: {type(exc).__name__}") from None
        return media_id

    def _upload_simple(self, data: bytes, mime: str) -> str:
        response = self._writer.session.post(
            f"{X_API_BASE}/2/media/upload",
            files={"media": ("image", data, mime)},
            data={"media_category": "tweet_image", "media_type": mime},
            auth=oauth1_auth(self._writer),
        )
        return str(self._checked("POST /2/media/upload", response)["data"]["id"])

    def _upload_chunked(self, data: bytes, mime: str, category: str) -> str:
        init = self._post_json(
            "POST /2/media/upload/initialize",
            "/2/media/upload/initialize",
            {"media_type": mime, "total_bytes": len(data), "media_category": category},
        )
        media_id = str(init["data"]["id"])
        step = self.settings.media_chunk_bytes
        for index, offset in enumerate(range(0, len(data), step)):
            response = self._writer.session.post(
                f"{X_API_BASE}/2/media/upload/{media_id}/append",
                data={"segment_index": str(index)},
                files={"media": ("chunk", data[offset : offset + step], "application/octet-stream")},
                auth=oauth1_auth(self._writer),
            )
            self._checked("POST /2/media/upload/:id/append", response)
        final = self._post_json(
            "POST /2/media/upload/:id/finalize", f"/2/media/upload/{media_id}/finalize", None
        )
        self._await_processing(media_id, final.get("data", {}))
        return media_id

    def _await_processing(self, media_id: str, info: JSON) -> None:
        """Animated GIFs (and videos) are processed after FINALIZE; a tweet may use them once succeeded."""
        deadline = time.monotonic() + MEDIA_POLL_LIMIT_S
        while (processing := info.get("processing_info")) and processing.get("state") in (
            "pending",
            "in_progress",
        ):
            if time.monotonic() > deadline:
                raise PlatformUnavailable(f"media {media_id} still processing")
            time.sleep(min(float(processing.get("check_after_secs", 1)), 10.0))
            response = self._writer.session.get(
                f"{X_API_BASE}/2/media/upload",
                params={"command": "STATUS", "media_id": media_id},
                auth=oauth1_auth(self._writer),
            )
            info = self._checked("GET /2/media/upload", response).get("data", {})
        if info.get("processing_info", {}).get("state") == "failed":
            raise DeliveryRejected(f"X could not process media {media_id}")

    def _post_json(self, route: str, path: str, body: JSON | None) -> JSON:
        response = self._writer.session.post(f"{X_API_BASE}{path}", json=body, auth=oauth1_auth(self._writer))
        return self._checked(route, response)


_EXPANDED: dict[str, Any] = {
    "expansions": EXPANSIONS,
    "tweet_fields": TWEET_FIELDS,
    "user_fields": USER_FIELDS,
    "media_fields": MEDIA_FIELDS,
}
_MEDIA_ROUTES = (
    "POST /2/media/upload",
    "POST /2/media/upload/initialize",
    "POST /2/media/upload/:id/append",
    "POST /2/media/upload/:id/finalize",
    "POST /2/media/metadata",
)


def _json(response: requests.Response) -> JSON:
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        raise PlatformUnavailable(f"X answered {response.status_code} with a body that is not JSON") from None
    return body if isinstance(body, dict) else {"data": body}
