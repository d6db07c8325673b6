"""Webhook mode: setWebhook with a secret token; only requests carrying it are accepted."""

from __future__ import annotations

import json

import aiohttp

from core.contract import EventKind
from core.services import Services
from tests.bots.telegram.stack import Recorder, adapter
from tests.fakes.telegram_api import FakeTelegram

URL = "https://bot.example.org/hooks/telegram"


async def test_only_requests_with_the_secret_token_are_published(
    services: Services, tg: FakeTelegram
) -> None:
    alice = int(tg.add_user("Alice")["id"])
    update = tg.user_message(alice, alice, "write a post about our launch")
    sink = Recorder()
    options = {
        "TELEGRAM_MODE": "webhook",
        "TELEGRAM_WEBHOOK_URL": URL,
        "TELEGRAM_WEBHOOK_PORT": "0",
        "TELEGRAM_WEBHOOK_PATH": "/hooks/telegram",
    }
    async with adapter(services, tg, sink, **options) as platform:
        assert platform.webhook is not None
        [hook] = tg.calls("setWebhook")
        secret = platform.settings.secret_token()
        assert hook["url"] == URL and hook["secret_token"] == secret
        assert "message_reaction" in json.loads(hook["allowed_updates"])
        assert tg.webhook is not None and not tg.calls("getUpdates") and not tg.calls("deleteWebhook")
        endpoint = f"http://127.0.0.1:{platform.webhook.port}/hooks/telegram"
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
                async with http.post(endpoint, json=update, headers=headers) as resp:
                    assert resp.status == 403
            assert sink.events == []
            good = {"X-Telegram-Bot-Api-Secret-Token": secret}
            async with http.post(endpoint, data=b"{not json", headers=good) as resp:
                assert resp.status == 400
            async with http.post(endpoint, json=update, headers=good) as resp:
                assert resp.status == 200
            assert [e.kind for e in sink.events] == [EventKind.MENTION]
            assert sink.events[0].text == "write a post about our launch"

            async def broken(event: object) -> str | None:
                raise ConnectionError("redis down")

            platform._publish = broken
            async with http.post(endpoint, json=update, headers=good) as resp:
                assert resp.status == 500  # Telegram will deliver it again
    assert tg.webhook is not None  # kept on stop: Telegram holds updates until we are back
