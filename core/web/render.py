"""Server-side HTML: our own Jinja2 templates with autoescaping on, and the headers every response carries.

Everything a person wrote (messages, prompts, names) is data: it is escaped, isolated for bidirectional text
(``dir="auto"`` and ``<bdi>``) and wrapped anywhere, so markup, scripts, bidi overrides and 50 KB lines
neither run nor break a page. The Content-Security-Policy allows no inline script or style at all: the one
script (``static/prompt.js``, the live check of a prompt) is a local file, and pages work without it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from core.text import truncate

HERE = Path(__file__).parent
STATIC = HERE / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # sign-in and feed tokens never leave in a Referer
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def safe_url(url: str) -> str:
    """Only http(s) links are rendered as links (never ``javascript:`` or ``data:``)."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return ""
    return url if scheme in ("http", "https") and len(url) <= 2000 else ""


def image_url(url: str) -> str:
    return url if safe_url(url).startswith("https://") else ""


def when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%d %b %Y %H:%M UTC")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # our templates change with a deploy, not at run time
        cache_size=50,
    )
    env.filters.update(
        {
            "when": when,
            "clip": lambda text, n=600: truncate(str(text), int(n)),
            "safe_url": safe_url,
            "image_url": image_url,
            "q": lambda value: quote(str(value), safe=""),
        }
    )
    return env


ENV = _environment()


def html(template: str, status: int = 200, **context: Any) -> web.Response:
    body = ENV.get_template(template).render(**context)
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        response = exc
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if isinstance(response, web.HTTPException):
        raise response
    return response
