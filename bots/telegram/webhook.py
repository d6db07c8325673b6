"""Webhook mode: Telegram POSTs each update to us; only requests carrying our secret token are accepted.

Put it behind a TLS-terminating reverse proxy (Telegram requires HTTPS) that forwards
``TELEGRAM_WEBHOOK_URL`` to ``TELEGRAM_WEBHOOK_LISTEN:TELEGRAM_WEBHOOK_PORT``. An update is answered 200
only after it is on the bus; on failure Telegram delivers it again (the bus drops repeats by message id).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from telegram import Bot, Update

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
MAX_BODY = 1024 * 1024


class WebhookServer:
    def __init__(
        self,
        bot: Bot,
        handle: Callable[[Update], Awaitable[None]],
        *,
        secret: str,
        listen: str,
        port: int,
        path: str,
    ) -> None:
        self.bot = bot
        self.handle = handle
        self.secret = secret
        self.listen = listen
        self.port = port
        self.path = path
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(self.path, self._receive)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.listen, self.port).start()
        self.port = self._runner.addresses[0][1]
        log.info("telegram webhook listening on %s:%s%s", self.listen, self.port, self.path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403, text="forbidden")
        try:
            data = await request.json()
            update = Update.de_json(data, self.bot)
        except Exception:
            return web.Response(status=400, text="not an update")
        if update is None:
            return web.Response(status=400, text="not an update")
        try:
            await self.handle(update)
        except Exception:
            log.exception("could not store webhook update %s; Telegram will resend it", update.update_id)
            return web.Response(status=500, text="try again")
        return web.Response(text="ok")
