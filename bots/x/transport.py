"""HTTP transport for the X adapter: point tweepy at another base URL and give every call a timeout.

tweepy hard-codes its hosts (api.twitter.com for v2, upload.twitter.com for v1.1 media) and offers no
base-URL option, but its ``Client.session`` is a public ``requests.Session``. Swapping in
:class:`RewritingSession` sends all X traffic to a configured base URL instead (a loopback fake in tests, an
egress gateway in production) without touching tweepy.

OAuth 1.0a signatures are computed *before* the rewrite, so they cover the canonical X URL tweepy built.
That is what lets a transparent gateway forward requests to X unchanged; a fake that verifies signatures
must accept the canonical URL too (``tests/fakes/x_api.py`` does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import tweepy  # type: ignore[import-untyped]  # tweepy ships no type information
from requests.auth import AuthBase

X_API_HOSTS: frozenset[str] = frozenset(
    {"api.x.com", "api.twitter.com", "upload.twitter.com", "upload.x.com"}
)
"""Every host tweepy (or our own media-upload code) may address."""

X_API_BASE = "https://api.x.com"
"""Canonical base for requests we build ourselves (e.g. ``POST /2/media/upload``); rewritten like tweepy's."""

Timeout = float | tuple[float, float]
DEFAULT_TIMEOUT: Timeout = (10.0, 60.0)
"""(connect, read) seconds. tweepy passes no timeout, and requests' default is to wait forever."""


class RewritingSession(requests.Session):
    """A ``requests.Session`` that sends requests for X's hosts to ``base_url`` and never waits forever.

    ``base_url`` may carry a path prefix (``https://gw.example/x`` maps ``https://api.x.com/2/tweets`` to
    ``https://gw.example/x/2/tweets``); ``None`` keeps the real hosts and only adds the default timeout.
    URLs for other hosts pass through untouched.
    """

    def __init__(
        self,
        base_url: str | None,
        *,
        hosts: Iterable[str] = X_API_HOSTS,
        timeout: Timeout | None = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.hosts = frozenset(h.lower().rstrip(".") for h in hosts)
        self.timeout = timeout
        self.base_url: str | None = None
        self._scheme = self._netloc = self._prefix = ""
        if base_url is not None:
            parts = urlsplit(base_url.strip())
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
            if parts.query or parts.fragment:
                raise ValueError(f"base_url must not carry a query or fragment, got {base_url!r}")
            self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path.rstrip("/")
            self.base_url = urlunsplit((self._scheme, self._netloc, self._prefix, "", ""))

    def rewrite_url(self, url: str) -> str:
        """Map a URL on one of ``hosts`` onto ``base_url``, keeping path and query; others unchanged."""
        if self.base_url is None:
            return url
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        if parts.scheme not in ("http", "https") or host not in self.hosts:
            return url
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """Rewrite after auth was applied (signature covers the canonical URL), before proxy/env lookup.

        Rewriting here rather than in ``send`` matters: ``Session.request`` derives proxies and
        ``NO_PROXY`` bypass from the prepared URL, so a loopback base URL is not sent to an HTTP proxy.
        """
        prepared = super().prepare_request(request)
        if prepared.url is not None:
            prepared.url = self.rewrite_url(prepared.url)
        return prepared

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Also catches requests prepared elsewhere and redirects, which bypass ``prepare_request``."""
        if request.url is not None:
            request.url = self.rewrite_url(request.url)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def oauth1_auth(client: tweepy.Client) -> AuthBase:
    """OAuth 1.0a user-context signer for requests tweepy cannot make itself (v2 media upload).

    Built exactly as tweepy signs its own user-context calls, so X sees identical signatures.
    """
    if not (
        client.consumer_key and client.consumer_secret and client.access_token and client.access_token_secret
    ):
        raise ValueError("OAuth 1.0a user context needs consumer key/secret and access token/secret")
    handler = tweepy.OAuth1UserHandler(
        client.consumer_key, client.consumer_secret, client.access_token, client.access_token_secret
    )
    auth: AuthBase = handler.apply_auth()
    return auth


def make_client(
    base_url: str | None,
    consumer_key: str,
    consumer_secret: str,
    access_token: str,
    access_token_secret: str,
    bearer_token: str | None = None,
    *,
    wait_on_rate_limit: bool = False,
    timeout: Timeout | None = DEFAULT_TIMEOUT,
) -> tweepy.Client:
    """A ``tweepy.Client`` whose traffic goes to ``base_url`` (``None``: real X) with a request timeout.

    The caller owns ``client.session`` and should ``close()`` it on shutdown. ``wait_on_rate_limit`` stays
    off by default: tweepy would sleep inside a worker thread; the adapter decides how to back off.
    """
    client = tweepy.Client(
        bearer_token=bearer_token,
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        access_token=access_token,
        access_token_secret=access_token_secret,
        wait_on_rate_limit=wait_on_rate_limit,
    )
    client.session.close()
    client.session = RewritingSession(base_url, timeout=timeout)
    return client
