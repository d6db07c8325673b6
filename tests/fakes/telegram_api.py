"""A loopback fake of the Telegram Bot API that the real python-telegram-bot SDK talks to over HTTP.

Why: adapter tests must exercise PTB's real wire code (form/multipart encoding, error mapping, long
polling) and Telegram's real validation (strict HTML, UTF-16 lengths, callback_data limits, flood
control) without the internet. Behaviour and error wording follow the Bot API server / TDLib.

    async with FakeTelegram(token="123:ABC", bot_username="chorus_bot") as tg:
        app = ApplicationBuilder().token(tg.token).base_url(tg.base_url).base_file_url(tg.base_file_url)
"""

from __future__ import annotations

import asyncio
import copy
import io
import itertools
import json
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from PIL import Image, UnidentifiedImageError

JSON = dict[str, Any]
T = TypeVar("T")

MAX_TEXT, MAX_CAPTION, MAX_CALLBACK_DATA, MAX_PHOTO_BYTES = 4096, 1024, 64, 10 * 1024 * 1024
DRAFT_TTL_S = 30.0  # "the streamed draft is ephemeral and acts as a temporary 30-second preview"
# Flood control as Telegram applies it to bots: about one edit of a message per second, and 20 messages
# (sends and edits) per minute in a group. Exceeding either answers 429 "retry after N".
EDIT_INTERVAL_S = 1.0
GROUP_MESSAGES_PER_MINUTE = 20
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current content and reply markup of the message"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
# Update types Telegram leaves out unless allowed_updates names them explicitly.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})  # fmt: skip
BUTTON_KINDS = frozenset({
    "url", "callback_data", "web_app", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay",
})  # fmt: skip
GIFT_TYPES = dict.fromkeys(
    ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription", "gifts_from_channels"), False
)
ADMIN_RIGHTS = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories", "can_delete_stories",
    "can_pin_messages", "can_manage_topics", "can_post_messages", "can_edit_messages",
)  # fmt: skip


class ApiError(Exception):
    """A Telegram-shaped failure: becomes {"ok": false, "error_code", "description", "parameters"}."""

    def __init__(self, description: str, code: int = 400, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.description, self.code, self.parameters = description, code, parameters


def flood(wait_s: float) -> ApiError:
    seconds = max(1, int(wait_s + 0.999))
    return ApiError(f"Too Many Requests: retry after {seconds}", 429, {"retry_after": seconds})


def bad(description: str) -> ApiError:
    """400 with Telegram's "Bad Request: " prefix."""
    return ApiError(f"Bad Request: {description}")


class Call(NamedTuple):
    """One request the fake received: unpacks as (method, params)."""

    method: str
    params: JSON


@dataclass
class Upload:
    """A multipart file part as received (so tests can assert a real upload happened)."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class SentMessage:
    """A message the bot sent, in its current state (edits applied, deletion flagged)."""

    chat_id: int
    message_id: int
    method: str
    text: str | None = None
    raw_text: str | None = None
    parse_mode: str | None = None
    entities: list[JSON] = field(default_factory=list)
    reply_markup: JSON | None = None
    photo: list[JSON] | None = None
    caption: str | None = None
    message_thread_id: int | None = None
    reply_to_message_id: int | None = None
    edits: int = 0
    deleted: bool = False
    sent_at: float = field(default_factory=time.monotonic)  # when Telegram accepted it


@dataclass
class FaultRates:
    """Random failures on some methods, each call on its own: 429 (flood control) or 5xx, without acting."""

    methods: frozenset[str]
    rate_429: float
    rate_5xx: float
    retry_after: int
    rng: random.Random
    injected_429: int = 0
    injected_5xx: int = 0


@dataclass
class MessageDraft:
    """A streamed draft (sendMessageDraft) in a private chat: ephemeral, replaced by the bot's next message
    in that chat, gone after DRAFT_TTL_S; ``history`` keeps every text it showed, for tests."""

    chat_id: int
    draft_id: int
    text: str
    updated: float
    history: list[str] = field(default_factory=list)
    finalized: bool = False

    @property
    def visible(self) -> bool:
        return not self.finalized and time.monotonic() - self.updated < DRAFT_TTL_S


@dataclass
class _Injection:
    status: int | None
    description: str | None
    parameters: JSON | None
    delay: float
    times: int


def utf16_len(text: str) -> int:
    """Telegram counts offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------- HTML parse mode (TDLib parse_html)

_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}  # fmt: skip
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(?:#x([0-9a-fA-F]*)|#([0-9]*)|([A-Za-z]*))(;?)")
_SPACE = " \t\r\n\f\v"


def _decode_entity(s: str, i: int, strict: bool) -> tuple[str, int] | None:
    """TDLib decode_html_entity: (char, next index), or None when the '&' stays literal."""
    m = _ENTITY.match(s, i)
    if m is None:
        return None
    hexa, dec, name, _ = m.groups()
    if name is not None:
        if name in _NAMED:
            return _NAMED[name], m.end()
        if strict and name and m.group(4):
            raise _parse_error(f'Unsupported HTML entity "&{name};" at byte offset {len(s[:i].encode())}')
        return None
    digits = hexa if hexa is not None else dec
    code = int(digits, 16 if hexa is not None else 10) if digits else 0
    if code == 0 or code >= 0x10FFFF or (m.end(1) if hexa is not None else m.end(2)) - i >= 10:
        return None
    if 0xD800 <= code <= 0xDFFF:
        raise _parse_error(
            "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched "
            "surrogate code units"
        )
    return chr(code), m.end()


def _parse_error(message: str) -> ApiError:
    return bad(f"can't parse entities: {message}")


def _normalize_url(url: str) -> str | None:
    """Roughly TDLib check_url: schemeless hosts get http://, junk is dropped."""
    url = url.strip()
    if not url or any(c in url for c in _SPACE):
        return None
    if "://" not in url and not url.startswith("tg:"):
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "ftp") and not parts.netloc:
        return None
    return url + "/" if parts.netloc and not parts.path and not parts.query and not parts.fragment else url


def parse_html(markup: str, strict_entities: bool = True) -> tuple[str, list[JSON]]:
    """Parse Telegram HTML exactly as strictly as TDLib does; returns (plain text, entities).

    Raises ApiError 400 "Bad Request: can't parse entities: ..." with TDLib's messages and UTF-8 byte
    offsets. strict_entities additionally rejects unknown named entities such as "&nbsp;" (real Telegram
    keeps them literally), which catches adapters that forget to escape or double-escape.
    """
    out: list[str] = []
    u16, i, n = 0, 0, len(markup)
    stack: list[tuple[str, str, int, bool]] = []  # tag, argument, utf16 start, expandable
    entities: list[JSON] = []

    def at(k: int) -> int:
        return len(markup[:k].encode())

    while i < n:
        c = markup[i]
        if c == "&" and (dec := _decode_entity(markup, i, strict_entities)):
            out.append(dec[0])
            u16, i = u16 + utf16_len(dec[0]), dec[1]
            continue
        if c != "<":
            out.append(c)
            u16, i = u16 + utf16_len(c), i + 1
            continue
        begin, j = i, i + 1
        if j < n and markup[j] == "/":  # end tag
            if not stack:
                raise _parse_error(f"Unexpected end tag at byte offset {at(begin)}")
            j += 1
            while j < n and markup[j] not in _SPACE and markup[j] != ">":
                j += 1
            end_name = markup[begin + 2 : j]
            while j < n and markup[j] in _SPACE:
                j += 1
            if j >= n or markup[j] != ">":
                raise _parse_error(f"Unclosed end tag at byte offset {at(begin)}")
            tag, arg, start, expandable = stack.pop()
            if end_name and end_name != tag:
                raise _parse_error(
                    f"Unmatched end tag at byte offset {at(begin)}, "
                    f'expected "</{tag}>", found "</{end_name}>"'
                )
            if u16 > start:
                _close_entity(entities, tag, arg, start, u16 - start, expandable, "".join(out))
            i = j + 1
            continue
        while j < n and markup[j] not in _SPACE and markup[j] != ">":
            j += 1
        if j >= n:
            raise _parse_error(f"Unclosed start tag at byte offset {at(begin)}")
        tag = markup[begin + 1 : j].lower()
        if tag not in _TAGS:
            raise _parse_error(f'Unsupported start tag "{tag}" at byte offset {at(begin)}')
        arg, expandable = "", False
        while True:
            while j < n and markup[j] in _SPACE:
                j += 1
            if j >= n:
                raise _parse_error(f"Unclosed start tag at byte offset {at(begin)}")
            if markup[j] == ">":
                break
            a0 = j
            while j < n and markup[j] not in _SPACE and markup[j] not in "=>":
                j += 1
            name = markup[a0:j]
            if not name:
                raise _parse_error(f'Empty attribute name in the tag "{tag}" at byte offset {at(begin)}')
            while j < n and markup[j] in _SPACE:
                j += 1
            if j >= n or markup[j] != "=":
                expandable |= tag == "blockquote" and name == "expandable"
                continue
            j += 1
            while j < n and markup[j] in _SPACE:
                j += 1
            if j >= n:
                raise _parse_error(f'Unclosed start tag "{tag}" at byte offset {at(begin)}')
            if markup[j] not in "'\"":  # name token
                t0 = j
                while j < n and markup[j].isascii() and (markup[j].isalnum() or markup[j] in ".-"):
                    j += 1
                value = markup[t0:j].lower()
                if j < n and markup[j] not in _SPACE and markup[j] != ">":
                    raise _parse_error(f"Unexpected end of name token at byte offset {at(t0)}")
            else:  # string literal, entities decoded
                quote, chars = markup[j], []
                j += 1
                while j < n and markup[j] != quote:
                    if markup[j] == "&" and (dec := _decode_entity(markup, j, strict_entities)):
                        chars.append(dec[0])
                        j = dec[1]
                        continue
                    chars.append(markup[j])
                    j += 1
                j += j < n
                value = "".join(chars)
            if j >= n:
                raise _parse_error(f"Unclosed start tag at byte offset {at(begin)}")
            if (tag, name) in (("a", "href"), ("tg-emoji", "emoji-id")):
                arg = value
            elif tag == "code" and name == "class" and value.startswith("language-"):
                arg = value[len("language-") :]
            elif tag == "span" and name == "class" and value.startswith("tg-"):
                arg = value[len("tg-") :]
            expandable |= tag == "blockquote" and name == "expandable"
        if tag == "span" and arg != "spoiler":
            raise _parse_error(f'Tag "span" must have class "tg-spoiler" at byte offset {at(begin)}')
        stack.append((tag, arg, u16, expandable))
        i = j + 1
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    for e in entities:
        e.pop("_language", None)
    return "".join(out), entities


def _close_entity(
    entities: list[JSON], tag: str, arg: str, offset: int, length: int, expandable: bool, text: str
) -> None:
    """Append the entity for a closed tag; merges <pre><code class="language-x"> like TDLib."""
    kind = _TAGS[tag]
    last = entities[-1] if entities else None
    same_span = last is not None and (last["offset"], last["length"]) == (offset, length)
    if tag == "pre" and same_span and last and last["type"] == "code" and last.get("_language"):
        last.update(type="pre", language=last.pop("_language"))
        return
    if tag == "code" and arg and same_span and last and last["type"] == "pre":
        last["language"] = arg
        return
    entity: JSON = {"type": kind, "offset": offset, "length": length}
    if tag == "a":
        url = arg or _plain_tail(text, length)
        if mention := re.fullmatch(r"tg://user\?id=(\d+)", url):
            entity.update(type="text_mention", user={"id": int(mention[1])})
        elif (norm := _normalize_url(url)) is None:
            return
        else:
            entity["url"] = norm
    elif tag == "code" and arg:
        entity["_language"] = arg
    elif tag == "blockquote" and expandable:
        entity["type"] = "expandable_blockquote"
    elif tag == "tg-emoji":
        if not arg:
            return
        entity["custom_emoji_id"] = arg
    entities.append(entity)


def _plain_tail(text: str, length16: int) -> str:
    """The last `length16` UTF-16 units of text (the link text of <a> without href)."""
    raw = text.encode("utf-16-le")
    return raw[len(raw) - 2 * length16 :].decode("utf-16-le")


# ---------------------------------------------------------------- entity auto-detection

_AUTO = re.compile(
    r"(?P<bot_command>(?<![^\s(])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@/]))"
    r"|(?P<mention>(?<![A-Za-z0-9_@])@[A-Za-z0-9_]{3,32}(?![A-Za-z0-9_@]))"
    r"|(?P<hashtag>(?<![\w#])#\w*[^\W\d]\w*)"
    r"|(?P<url>\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]'])"
)


def detect_entities(text: str) -> list[JSON]:
    """The entities Telegram finds by itself: bot_command, mention, hashtag, url (UTF-16 offsets)."""
    found = []
    for m in _AUTO.finditer(text):
        kind = m.lastgroup or "url"
        found.append({"type": kind, "offset": utf16_len(text[: m.start()]), "length": utf16_len(m[0])})
    return found


def _merge_auto(entities: list[JSON], auto: list[JSON]) -> list[JSON]:
    """Add auto-detected entities that do not overlap code/pre/links, as Telegram does."""
    blocking = [e for e in entities if e["type"] in ("code", "pre", "text_link", "text_mention")]
    keep = [
        a for a in auto
        if all(a["offset"] + a["length"] <= b["offset"] or b["offset"] + b["length"] <= a["offset"]
               for b in blocking)
    ]  # fmt: skip
    return sorted(entities + keep, key=lambda e: (e["offset"], -e["length"]))


# ---------------------------------------------------------------- request parameter helpers


def _json(p: JSON, key: str, what: str | None = None) -> Any:
    """Nested objects arrive as JSON strings in form/multipart bodies and as objects in JSON bodies."""
    value = p.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise bad(f"can't parse {what or key} JSON object") from None
    return value


def _int(p: JSON, key: str, required: bool = False) -> int | None:
    value = p.get(key)
    if value in (None, ""):
        if required:
            raise bad(f"{key} is empty")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(f"invalid {key} specified") from None


def _bool(p: JSON, key: str) -> bool:
    return p.get(key) in (True, 1, "true", "True", "1")


def _str(p: JSON, key: str) -> str | None:
    value = p.get(key)
    return None if value is None else str(value)


def _now() -> int:
    return int(time.time())


def _strip_reply(message: JSON) -> JSON:
    """Telegram nests reply_to_message only one level deep."""
    return {k: v for k, v in message.items() if k != "reply_to_message"}


# ---------------------------------------------------------------- the fake server


class FakeTelegram:
    """In-process Bot API server on 127.0.0.1:<ephemeral> holding users, chats, messages and updates."""

    def __init__(
        self,
        token: str = "123:ABC",  # noqa: S107 - a fake token for a fake server
        bot_username: str = "chorus_bot",
        *,
        bot_name: str = "Chorus",
        strict_entities: bool = True,
    ) -> None:
        self.token = token
        self.strict_entities = strict_entities
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123
        self.bot_user: JSON = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }
        self.users: dict[int, JSON] = {self.bot_id: self.bot_user}
        self.chats: dict[int, JSON] = {}
        self.members: dict[int, dict[int, JSON]] = {}
        self.topics: dict[int, dict[int, str]] = {}
        self.messages: dict[int, dict[int, JSON]] = {}
        self.requests: list[Call] = []
        self.commands: dict[str, list[JSON]] = {}
        self.callback_answers: dict[str, JSON] = {}
        self.webhook: JSON | None = None
        self.blocked: set[int] = set()
        self._sent: dict[tuple[int, int], SentMessage] = {}
        self.drafts: dict[int, MessageDraft] = {}  # private chat id -> its streamed draft
        self.flood_control = True  # enforce EDIT_INTERVAL_S and GROUP_MESSAGES_PER_MINUTE
        self.flood_refusals = 0
        self._last_edit: dict[tuple[int, int], float] = {}
        self._group_sends: dict[int, list[float]] = {}
        self._updates: list[JSON] = []
        self._allowed: list[str] | None = None
        self._next_update = itertools.count(1)
        self._next_id = itertools.count(1001)
        self._next_group = itertools.count(1)
        self._next_file = itertools.count(1)
        self._next_query = itertools.count(1)
        self._next_mid: dict[int, itertools.count[int]] = {}
        self._callbacks: dict[str, bool] = {}
        self._reactions: dict[tuple[int, int, int], list[JSON]] = {}
        self._files: dict[str, JSON] = {}
        self._blobs: dict[str, bytes] = {}
        self._urls: dict[str, bytes] = {}
        self._injections: dict[str, list[_Injection]] = {}
        self.faults: FaultRates | None = None
        self._poll_generation = 0
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._handlers: dict[str, Callable[[JSON], Any]] = {
            "getme": self._get_me, "getupdates": self._get_updates, "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook, "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message, "sendphoto": self._send_photo,
            "sendchataction": self._send_chat_action, "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup, "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback_query, "getchatmember": self._get_chat_member,
            "getchatadministrators": self._get_chat_administrators, "getchat": self._get_chat,
            "getchatmembercount": self._get_chat_member_count, "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands, "deletemycommands": self._delete_my_commands,
            "getfile": self._get_file, "sendmessagedraft": self._send_message_draft,
        }  # fmt: skip

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind 127.0.0.1 on an ephemeral port."""
        self._closed = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Release pending long-polls (they answer an empty list) and close the server."""
        self._closed.set()
        self._touch()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """For Bot(base_url=...)/ApplicationBuilder.base_url(): PTB appends the token."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For Bot(base_file_url=...)/ApplicationBuilder.base_file_url()."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ------------------------------------------------------------ HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(ApiError("Unauthorized", 401))
        method = request.match_info["method"]
        try:
            params = await self._read_params(request)
        except ValueError:
            return self._error(bad("can't parse request body"))
        self.requests.append(Call(method, params))
        try:
            handler = self._handlers.get(method.lower())
            if handler is None:
                raise ApiError("Not Found", 404)
            await self._inject(method)
            self._random_fault(method)
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
            return web.json_response({"ok": True, "result": result})
        except ApiError as exc:
            return self._error(exc)
        finally:
            self._touch()

    @staticmethod
    async def _read_params(request: web.Request) -> JSON:
        """Accept query string, JSON, urlencoded and multipart bodies; file parts become Upload."""
        params: JSON = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                for key, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        params[key] = Upload(value.filename, value.content_type, value.file.read())
                    else:
                        params[key] = value.decode() if isinstance(value, bytes) else value
        return params

    @staticmethod
    def _error(exc: ApiError) -> web.Response:
        body: JSON = {"ok": False, "error_code": exc.code, "description": exc.description}
        if exc.parameters:
            body["parameters"] = exc.parameters
        return web.json_response(body, status=exc.code)

    async def _handle_file(self, request: web.Request) -> web.Response:
        data = self._blobs.get(request.match_info["path"])
        if request.match_info["token"] != self.token or data is None:
            return self._error(ApiError("Not Found", 404))
        return web.Response(body=data, content_type="application/octet-stream")

    def _touch(self) -> None:
        """Wake long-polls and wait_for() callers: something changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------ failure injection

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int = 1,
        times: int = 1,
        *,
        description: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Make the next `times` calls of `method` ("*" = any) fail with `status`, without acting.

        429 answers "Too Many Requests: retry after N" with parameters.retry_after (PTB: RetryAfter);
        500/502 answer "Internal Server Error"/"Bad Gateway" (PTB: NetworkError).
        """
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if status == 429
                else HTTPStatus(status).phrase
            )
        parameters = {"retry_after": retry_after} if status == 429 else None
        self._injections.setdefault(method.lower(), []).append(
            _Injection(status, description, parameters, delay, times)
        )

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """Make the next `times` calls of `method` ("*" = any) answer normally but `seconds` late."""
        self._injections.setdefault(method.lower(), []).append(_Injection(None, None, None, seconds, times))

    def inject_faults(
        self,
        methods: Iterable[str] = ("sendMessage", "sendPhoto"),
        *,
        rate_429: float = 0.1,
        rate_5xx: float = 0.05,
        retry_after: int = 1,
        seed: int = 0,
    ) -> FaultRates:
        """From now on, answer each call of ``methods`` 429 (retry after ``retry_after``) with probability
        ``rate_429`` and 502 with probability ``rate_5xx``, without acting; the counts are in the result."""
        self.faults = FaultRates(
            frozenset(m.lower() for m in methods), rate_429, rate_5xx, retry_after, random.Random(seed)
        )
        return self.faults

    def _random_fault(self, method: str) -> None:
        faults = self.faults
        if faults is None or method.lower() not in faults.methods:
            return
        roll = faults.rng.random()
        if roll < faults.rate_429:
            faults.injected_429 += 1
            raise ApiError(
                f"Too Many Requests: retry after {faults.retry_after}",
                429,
                {"retry_after": faults.retry_after},
            )
        if roll < faults.rate_429 + faults.rate_5xx:
            faults.injected_5xx += 1
            raise ApiError("Bad Gateway", 502)

    async def _inject(self, method: str) -> None:
        for key in (method.lower(), "*"):
            queue = self._injections.get(key)
            if not queue:
                continue
            injection = queue[0]
            injection.times -= 1
            if injection.times <= 0:
                queue.pop(0)
            if injection.delay:
                try:
                    await asyncio.wait_for(self._closed.wait(), injection.delay)
                except TimeoutError:
                    pass
            if injection.status is not None:
                raise ApiError(injection.description or "", injection.status, injection.parameters)
            return

    # ------------------------------------------------------------ observability

    def calls(self, method: str) -> list[JSON]:
        """Params of every received call of `method` (case-insensitive)."""
        return [c.params for c in self.requests if c.method.lower() == method.lower()]

    def bot_messages(self, chat_id: int | None = None, *, include_deleted: bool = False) -> list[SentMessage]:
        """Messages the bot sent (current state after edits), oldest first."""
        return [
            m for m in self._sent.values()
            if (chat_id is None or m.chat_id == chat_id) and (include_deleted or not m.deleted)
        ]  # fmt: skip

    def replies_to(self, chat_id: int, message_id: int) -> list[SentMessage]:
        """What the bot posted in answer to one message (sent with it as the reply target), oldest first."""
        return [m for m in self.bot_messages(chat_id) if m.reply_to_message_id == message_id]

    def posted_per_mention(self) -> dict[tuple[int, int], list[SentMessage]]:
        """Every bot message that answers a message, grouped by (chat id, message id) it answers."""
        out: dict[tuple[int, int], list[SentMessage]] = {}
        for m in self.bot_messages():
            if m.reply_to_message_id is not None:
                out.setdefault((m.chat_id, m.reply_to_message_id), []).append(m)
        return out

    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
        """Re-check `predicate` on every state change; its truthy result, or AssertionError on timeout."""
        try:
            async with asyncio.timeout(timeout):
                while not (result := predicate()):
                    await self._changed.wait()
                return result
        except TimeoutError:
            recent = [c.method for c in self.requests[-10:]]
            label = what or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(
                f"FakeTelegram.wait_for timed out after {timeout}s waiting for {label}; "
                f"last requests: {recent}; bot messages: {[m.text for m in self.bot_messages()][-5:]}"
            ) from None

    # ------------------------------------------------------------ world building

    def add_user(
        self,
        first_name: str = "Alice",
        *,
        username: str | None = None,
        user_id: int | None = None,
        last_name: str | None = None,
        is_bot: bool = False,
        language_code: str | None = "en",
    ) -> JSON:
        """A person (or other bot); also creates their private chat with the bot (chat id = user id)."""
        uid = user_id if user_id is not None else next(self._next_id)
        user: JSON = {"id": uid, "is_bot": is_bot, "first_name": first_name}
        for key, value in (
            ("last_name", last_name),
            ("username", username),
            ("language_code", language_code),
        ):
            if value is not None:
                user[key] = value
        self.users[uid] = user
        private: JSON = {k: user[k] for k in ("first_name", "last_name", "username") if k in user}
        self._register_chat({"id": uid, "type": "private", **private})
        self.members[uid] = {
            uid: {"status": "member", "user": user},
            self.bot_id: {"status": "member", "user": self.bot_user},
        }
        return user

    def add_chat(
        self,
        chat_type: str = "supergroup",
        *,
        title: str | None = None,
        chat_id: int | None = None,
        username: str | None = None,
        is_forum: bool = False,
        members: Iterable[int] = (),
    ) -> JSON:
        """A group, supergroup (is_forum for topics) or channel; the bot joins (as admin in channels)."""
        if chat_type not in ("group", "supergroup", "channel"):
            raise ValueError("use add_user() for private chats")
        n = next(self._next_group)
        cid = chat_id if chat_id is not None else (-n if chat_type == "group" else -1_000_000_000_000 - n)
        chat: JSON = {"id": cid, "type": chat_type, "title": title or f"{chat_type.title()} {n}"}
        if username:
            chat["username"] = username
        if is_forum:
            chat["is_forum"] = True
        self._register_chat(chat)
        self.members[cid] = {}
        self.topics[cid] = {}
        self.set_member(cid, self.bot_id, "administrator" if chat_type == "channel" else "member")
        for uid in members:
            self.set_member(cid, uid)
        return chat

    def _register_chat(self, chat: JSON) -> None:
        self.chats[chat["id"]] = chat
        self.messages.setdefault(chat["id"], {})
        self._next_mid.setdefault(chat["id"], itertools.count(1))

    def set_member(self, chat_id: int, user_id: int, status: str = "member", **rights: bool) -> JSON:
        """Set a user's status in a chat: creator, administrator, member, left or kicked."""
        user = self._user(user_id)
        self._chat_or_raise(chat_id)
        member: JSON = {"status": status, "user": user}
        if status in ("creator", "administrator"):
            member["is_anonymous"] = False
        if status == "administrator":
            member.update(can_be_edited=False, can_promote_members=False)
            member.update({right: rights.get(right, True) for right in ADMIN_RIGHTS})
        elif status == "kicked":
            member["until_date"] = 0
        elif status not in ("creator", "member", "left"):
            raise ValueError(f"unsupported member status {status!r}")
        self.members[chat_id][user_id] = member
        return member

    def set_admin(self, chat_id: int, user_id: int, status: str = "administrator", **rights: bool) -> JSON:
        """Make a user (or the bot) an administrator or the creator of a chat."""
        if status not in ("administrator", "creator"):
            raise ValueError("status must be 'administrator' or 'creator'")
        return self.set_member(chat_id, user_id, status, **rights)

    def add_topic(self, chat_id: int, name: str) -> int:
        """Create a forum topic; returns its message_thread_id (the id of its service message)."""
        chat = self._chat_or_raise(chat_id)
        if not chat.get("is_forum"):
            raise ValueError(f"chat {chat_id} is not a forum")
        mid = next(self._next_mid[chat_id])
        self.messages[chat_id][mid] = {
            "message_id": mid, "date": _now(), "chat": chat, "message_thread_id": mid,
            "is_topic_message": True, "forum_topic_created": {"name": name, "icon_color": 7322096},
        }  # fmt: skip
        self.topics[chat_id][mid] = name
        return mid

    def block_bot(self, user_id: int) -> None:
        """The user blocked the bot: sends to their private chat answer 403."""
        self.blocked.add(user_id)

    def register_file(self, data: bytes, *, kind: str = "photos", ext: str = "jpg") -> str:
        """Store downloadable bytes; returns a file_id usable with getFile and sendPhoto."""
        n = next(self._next_file)
        file_id, path = f"AgACfake{n:06d}", f"{kind}/file_{n}.{ext}"
        self._files[file_id] = {
            "file_id": file_id, "file_unique_id": f"AQADfake{n:06d}", "file_size": len(data),
            "file_path": path,
        }  # fmt: skip
        self._blobs[path] = data
        return file_id

    def register_url(self, url: str, data: bytes) -> None:
        """Content Telegram would fetch for a file sent by HTTP URL (there is no internet here)."""
        self._urls[url] = data

    # ------------------------------------------------------------ simulated people (each pushes an Update)

    def user_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
        *,
        entities: list[JSON] | None = None,
    ) -> JSON:
        """A user writes in a chat; mention/bot_command/hashtag/url entities are filled in like Telegram."""
        chat, user = self._chat_or_raise(chat_id), self._user(user_id)
        if chat["type"] == "channel":
            raise ValueError("users cannot write in channels: use channel_post()")
        if chat["type"] == "private" and chat_id != user_id:
            raise ValueError("in a private chat only its user can write")
        status = self.members[chat_id].get(user_id, {}).get("status")
        if status == "kicked":
            raise ValueError(f"user {user_id} is banned from chat {chat_id}")
        if status in (None, "left"):
            self.set_member(chat_id, user_id)
        message = self._new_message(
            chat, user, text=text, entities=entities if entities is not None else detect_entities(text),
            thread=self._thread_or_raise(chat, message_thread_id),
            reply_to=self._message_or_raise(chat_id, reply_to_message_id) if reply_to_message_id else None,
        )  # fmt: skip
        return self._push("message", message)

    def text_mention(self, chat_id: int, user_id: int, text: str, mentioned_user_id: int) -> JSON:
        """A user message mentioning someone without a username (text_mention over their first name)."""
        mentioned = self._user(mentioned_user_id)
        name = mentioned["first_name"]
        if name not in text:
            raise ValueError(f"{name!r} does not occur in {text!r}")
        entity = {
            "type": "text_mention", "offset": utf16_len(text[: text.index(name)]), "length": utf16_len(name),
            "user": mentioned,
        }  # fmt: skip
        return self.user_message(
            chat_id, user_id, text, entities=_merge_auto([entity], detect_entities(text))
        )

    def user_photo(self, chat_id: int, user_id: int, data: bytes, caption: str | None = None) -> JSON:
        """A user sends a photo (downloadable through getFile)."""
        chat, user = self._chat_or_raise(chat_id), self._user(user_id)
        sizes = self._photo_sizes(data)
        message = self._new_message(chat, user, photo=sizes, caption=caption)
        if caption:
            message["caption_entities"] = detect_entities(caption)
        return self._push("message", message)

    def press_button(
        self, chat_id: int, message_id: int, user_id: int, data: str, *, check: bool = True
    ) -> JSON:
        """A user taps an inline button of a bot message (check: the button must really exist)."""
        user, message = self._user(user_id), self._message_or_raise(chat_id, message_id)
        if (chat_id, message_id) not in self._sent:
            raise ValueError("only the bot's own messages carry inline keyboards")
        rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        if check and data not in {b.get("callback_data") for row in rows for b in row}:
            raise ValueError(f"message {message_id} has no button with callback_data {data!r}")
        query_id = str(4_400_000_000_000_000 + next(self._next_query))
        self._callbacks[query_id] = False
        query = {
            "id": query_id, "from": user, "message": message, "chat_instance": str(abs(chat_id) * 31),
            "data": data,
        }  # fmt: skip
        return self._push("callback_query", query)

    def channel_post(self, chat_id: int, text: str) -> JSON:
        """The channel publishes a post (no "from", sender_chat is the channel)."""
        chat = self._chat_or_raise(chat_id)
        if chat["type"] != "channel":
            raise ValueError(f"chat {chat_id} is not a channel")
        return self._push(
            "channel_post", self._new_message(chat, None, text=text, entities=detect_entities(text))
        )

    def edit_user_message(self, chat_id: int, message_id: int, text: str) -> JSON:
        """A user (or channel) edits its message: edited_message / edited_channel_post update."""
        message = self._message_or_raise(chat_id, message_id)
        if (chat_id, message_id) in self._sent:
            raise ValueError("that message was sent by the bot")
        message.update(text=text, entities=detect_entities(text), edit_date=_now())
        kind = "edited_channel_post" if self.chats[chat_id]["type"] == "channel" else "edited_message"
        return self._push(kind, dict(message))

    def react(self, chat_id: int, message_id: int, user_id: int, emoji: str | list[str] | None) -> JSON:
        """A user sets (or with None clears) reactions: message_reaction update with old/new lists."""
        chat, user = self._chat_or_raise(chat_id), self._user(user_id)
        if chat["type"] == "channel":
            raise ValueError("channel reactions are anonymous (message_reaction_count)")
        self._message_or_raise(chat_id, message_id)
        emojis = [emoji] if isinstance(emoji, str) else list(emoji or [])
        new = [{"type": "emoji", "emoji": e} for e in emojis]
        old = self._reactions.get((chat_id, message_id, user_id), [])
        self._reactions[(chat_id, message_id, user_id)] = new
        reaction = {
            "chat": chat, "message_id": message_id, "user": user, "date": _now(), "old_reaction": old,
            "new_reaction": new,
        }  # fmt: skip
        return self._push("message_reaction", reaction)

    def _push(self, kind: str, payload: JSON) -> JSON:
        update = {"update_id": next(self._next_update), kind: copy.deepcopy(payload)}  # a snapshot, as sent
        self._updates.append(update)
        self._touch()
        return update

    # ------------------------------------------------------------ state lookups

    def _user(self, user_id: int) -> JSON:
        if user_id not in self.users:
            raise ValueError(f"unknown user {user_id}: add_user() first")
        return self.users[user_id]

    def _chat_or_raise(self, chat_id: int) -> JSON:
        if chat_id not in self.chats:
            raise ValueError(f"unknown chat {chat_id}: add_chat()/add_user() first")
        return self.chats[chat_id]

    def _message_or_raise(self, chat_id: int, message_id: int) -> JSON:
        if message_id not in self.messages.get(chat_id, {}):
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        return self.messages[chat_id][message_id]

    def _thread_or_raise(self, chat: JSON, thread: int | None) -> int | None:
        if thread is None or not chat.get("is_forum"):
            return None
        if thread not in self.topics[chat["id"]]:
            raise ValueError(f"no topic {thread} in chat {chat['id']}")
        return thread

    def _new_message(
        self, chat: JSON, sender: JSON | None, *, thread: int | None = None, reply_to: JSON | None = None,
        **content: Any,
    ) -> JSON:  # fmt: skip
        """Store a message with the next id of its chat; topic messages reply to the topic's root."""
        mid = next(self._next_mid[chat["id"]])
        message: JSON = {"message_id": mid, "date": _now(), "chat": chat}
        if chat["type"] == "channel":
            message["sender_chat"] = chat  # channel posts have no "from", even the bot's
        elif sender is not None:
            message["from"] = sender
        if thread is not None:
            message.update(message_thread_id=thread, is_topic_message=True)
            reply_to = reply_to or self.messages[chat["id"]][thread]
        if reply_to is not None:
            message["reply_to_message"] = _strip_reply(reply_to)
        message.update({k: v for k, v in content.items() if v not in (None, [])})
        self.messages[chat["id"]][mid] = message
        return message

    def _photo_sizes(self, data: bytes, file_id: str | None = None) -> list[JSON]:
        """PhotoSize list for image bytes (registered unless file_id is given); 400 if not an image."""
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError):
            raise bad("IMAGE_PROCESS_FAILED") from None
        info = self._files[file_id or self.register_file(data)]
        return [{"file_id": info["file_id"], "file_unique_id": info["file_unique_id"], "width": width,
                 "height": height, "file_size": info["file_size"]}]  # fmt: skip

    # ------------------------------------------------------------ Bot API validation helpers

    def _chat(self, p: JSON) -> JSON:
        raw = p.get("chat_id")
        if raw in (None, ""):
            raise bad("chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            found = [c for c in self.chats.values() if c.get("username", "").lower() == raw[1:].lower()]
            if not found:
                raise bad("chat not found")
            return found[0]
        try:
            return self.chats[int(raw)]
        except (KeyError, ValueError):
            raise bad("chat not found") from None

    def _check_can_send(self, chat: JSON) -> None:
        """Blocked users, chats the bot left or was kicked from, channels without admin rights."""
        kind = chat["type"]
        if kind == "private":
            if chat["id"] in self.blocked:
                raise ApiError("Forbidden: bot was blocked by the user", 403)
            return
        status = self.members[chat["id"]].get(self.bot_id, {}).get("status", "left")
        if status == "kicked":
            raise ApiError(f"Forbidden: bot was kicked from the {kind} chat", 403)
        if status == "left":
            raise ApiError(f"Forbidden: bot is not a member of the {kind} chat", 403)
        if kind == "channel" and status not in ("administrator", "creator"):
            raise bad("need administrator rights in the channel chat")

    def _thread(self, chat: JSON, p: JSON) -> int | None:
        thread = _int(p, "message_thread_id")
        if thread is None or not chat.get("is_forum"):
            return None
        if thread not in self.topics[chat["id"]]:
            raise bad("message thread not found")
        return thread

    def _reply(self, chat: JSON, p: JSON) -> JSON | None:
        params = _json(p, "reply_parameters")
        if params is None and _int(p, "reply_to_message_id") is not None:
            params = {"message_id": _int(p, "reply_to_message_id"),
                      "allow_sending_without_reply": _bool(p, "allow_sending_without_reply")}  # fmt: skip
        if not params:
            return None
        target = self.messages.get(chat["id"], {}).get(int(params.get("message_id", 0)))
        if target is None and not params.get("allow_sending_without_reply"):
            raise bad("message to be replied not found")
        return target

    def _format(self, p: JSON, key: str, *, caption: bool = False) -> tuple[str | None, list[JSON]]:
        """Parse text/caption per parse_mode and enforce Telegram's limits on the parsed result."""
        raw = _str(p, key)
        if raw is None and caption:
            return None, []
        mode = (_str(p, "parse_mode") or "").lower()
        explicit = _json(p, "caption_entities" if caption else "entities")
        if explicit is not None or not mode:
            text, entities = raw or "", list(explicit or [])
        elif mode == "html":
            text, entities = parse_html(raw or "", self.strict_entities)
        elif mode in ("markdown", "markdownv2"):
            raise bad(f"parse_mode {p['parse_mode']} is not implemented by FakeTelegram: use HTML")
        else:
            raise bad(f"unsupported parse_mode {p['parse_mode']}")
        if caption:
            if utf16_len(text) > MAX_CAPTION:
                raise bad("message caption is too long")
        elif not text.strip():
            raise bad("message text is empty")
        elif utf16_len(text) > MAX_TEXT:
            raise bad("message is too long")
        for entity in entities:
            if entity.get("type") == "text_mention":
                user = self.users.get(int(entity.get("user", {}).get("id", 0)))
                entity["user"] = user
        entities = [e for e in entities if e.get("type") != "text_mention" or e["user"] is not None]
        return text, _merge_auto(entities, detect_entities(text))

    @staticmethod
    def _markup(p: JSON) -> JSON | None:
        """Validate reply_markup like Telegram: inline buttons need an action, callback_data 1-64 bytes."""
        markup = _json(p, "reply_markup", "reply keyboard markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return markup
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad("can't parse inline keyboard button: InlineKeyboardMarkup must be an Array of Arrays")
        if sum(len(row) for row in rows) > 100:
            raise bad("reply markup is too long")
        for button in (b for row in rows for b in row):
            if not isinstance(button, dict) or "text" not in button:
                raise bad('can\'t parse inline keyboard button: Field "text" must be of type String')
            if not BUTTON_KINDS & set(button):
                raise bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            data = button.get("callback_data")
            if "callback_data" in button and not (
                isinstance(data, str) and 1 <= len(data.encode()) <= MAX_CALLBACK_DATA
            ):
                raise bad("BUTTON_DATA_INVALID")
            if "url" in button and _normalize_url(str(button["url"])) is None:
                raise bad("BUTTON_URL_INVALID")
        return markup

    def _bot_message(self, p: JSON, *, edit: str) -> tuple[JSON, SentMessage]:
        """The bot message an edit targets (inline messages are not modelled)."""
        if p.get("inline_message_id"):
            raise bad("MESSAGE_ID_INVALID")
        chat = self._chat(p)
        message_id = _int(p, "message_id", required=True)
        message = self.messages[chat["id"]].get(message_id or 0)
        if message is None:
            raise bad(f"message to {edit} not found")
        sent = self._sent.get((chat["id"], message_id or 0))
        if sent is None:
            raise bad(f"message can't be {edit}ed")
        return message, sent

    def _record(self, method: str, message: JSON, p: JSON) -> JSON:
        key = (message["chat"]["id"], message["message_id"])
        caption = "photo" in message
        self._sent[key] = SentMessage(
            chat_id=key[0], message_id=key[1], method=method,
            text=message.get("text"), raw_text=_str(p, "caption" if caption else "text"),
            parse_mode=_str(p, "parse_mode"),
            entities=message.get("caption_entities" if caption else "entities", []),
            reply_markup=message.get("reply_markup"), photo=message.get("photo"),
            caption=message.get("caption"),
            message_thread_id=message.get("message_thread_id"),
            reply_to_message_id=_reply_id(message),
        )  # fmt: skip
        return message

    # ------------------------------------------------------------ Bot API methods

    def _get_me(self, p: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, p: JSON) -> list[JSON]:
        """Long poll: drop updates below offset, wait up to `timeout` s for allowed ones (409: superseded)."""
        if self.webhook:
            raise ApiError(
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                "the webhook first", 409,
            )  # fmt: skip
        self._poll_generation += 1
        generation = self._poll_generation
        self._touch()  # an older long-poll must notice it was superseded
        offset, limit = _int(p, "offset") or 0, min(max(_int(p, "limit") or 100, 1), 100)
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        allowed = _json(p, "allowed_updates")
        if allowed is not None:
            self._allowed = list(allowed)
        deadline = asyncio.get_running_loop().time() + float(p.get("timeout") or 0)
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
                    "is running", 409,
                )  # fmt: skip
            self._updates = [u for u in self._updates if self._is_allowed(u)]
            remaining = deadline - asyncio.get_running_loop().time()
            if self._updates or remaining <= 0 or self._closed.is_set():
                return self._updates[:limit]
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    def _is_allowed(self, update: JSON) -> bool:
        kind = next(k for k in update if k != "update_id")
        if not self._allowed:
            return kind not in OPT_IN_UPDATES
        return kind in self._allowed

    def _set_webhook(self, p: JSON) -> bool:
        url = _str(p, "url") or ""
        if url and not url.startswith("https://"):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = {"url": url, "allowed_updates": _json(p, "allowed_updates")} if url else None
        if _bool(p, "drop_pending_updates"):
            self._updates.clear()
        return True

    def _delete_webhook(self, p: JSON) -> bool:
        self.webhook = None
        if _bool(p, "drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_webhook_info(self, p: JSON) -> JSON:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}  # fmt: skip

    def _send_message(self, p: JSON) -> JSON:
        chat = self._chat(p)
        if p.get("text") in (None, ""):
            raise bad("message text is empty")
        text, entities = self._format(p, "text")
        markup, thread, reply_to = self._markup(p), self._thread(chat, p), self._reply(chat, p)
        self._check_can_send(chat)
        self._flood(chat)
        message = self._new_message(
            chat, self.bot_user, thread=thread or _thread_of(reply_to, chat), reply_to=reply_to, text=text,
            entities=entities, reply_markup=markup,
        )  # fmt: skip
        self._finalize_draft(chat)
        self._count(chat)
        return self._record("sendMessage", message, p)

    def _send_photo(self, p: JSON) -> JSON:
        chat = self._chat(p)
        photo = p.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            photo = p.get(photo.removeprefix("attach://"))
        if isinstance(photo, Upload):
            data = photo.data
        elif isinstance(photo, str) and photo.startswith(("http://", "https://")):
            if photo not in self._urls:
                raise bad("failed to get HTTP URL content")
            data = self._urls[photo]
        elif isinstance(photo, str) and photo in self._files:
            data = self._blobs[self._files[photo]["file_path"]]
        elif photo in (None, ""):
            raise bad("there is no photo in the request")
        else:
            raise bad("wrong file identifier/HTTP URL specified")
        if len(data) > MAX_PHOTO_BYTES:
            raise bad("file is too big")
        caption, entities = self._format(p, "caption", caption=True)
        markup, thread, reply_to = self._markup(p), self._thread(chat, p), self._reply(chat, p)
        self._check_can_send(chat)
        self._flood(chat)
        self._finalize_draft(chat)
        self._count(chat)
        sizes = self._photo_sizes(data, photo if isinstance(photo, str) and photo in self._files else None)
        message = self._new_message(
            chat, self.bot_user, thread=thread or _thread_of(reply_to, chat), reply_to=reply_to, photo=sizes,
            caption=caption or None, caption_entities=entities, reply_markup=markup,
        )  # fmt: skip
        return self._record("sendPhoto", message, p)

    def _send_chat_action(self, p: JSON) -> bool:
        chat = self._chat(p)
        if _str(p, "action") not in CHAT_ACTIONS:
            raise bad("wrong parameter action in request")
        self._thread(chat, p)
        self._check_can_send(chat)
        return True

    def _flood(self, chat: JSON, edit: tuple[int, int] | None = None) -> None:
        """429 when the bot edits a message again within EDIT_INTERVAL_S or a group's minute is full."""
        if not self.flood_control:
            return
        now = time.monotonic()
        if edit is not None:
            wait = self._last_edit.get(edit, -EDIT_INTERVAL_S) + EDIT_INTERVAL_S - now
            if wait > 0:
                self.flood_refusals += 1
                raise flood(wait)
        if chat["type"] in ("group", "supergroup"):
            recent = [t for t in self._group_sends.get(chat["id"], []) if now - t < 60]
            if len(recent) >= GROUP_MESSAGES_PER_MINUTE:
                self.flood_refusals += 1
                raise flood(60 - (now - recent[0]))
            self._group_sends[chat["id"]] = recent

    def _count(self, chat: JSON, edit: tuple[int, int] | None = None) -> None:
        """A send or edit that went through counts against the flood limits."""
        now = time.monotonic()
        if edit is not None:
            self._last_edit[edit] = now
        if chat["type"] in ("group", "supergroup"):
            self._group_sends.setdefault(chat["id"], []).append(now)

    def _finalize_draft(self, chat: JSON) -> None:
        """The bot's message in a private chat takes the place of its streamed draft."""
        draft = self.drafts.get(chat["id"])
        if draft is not None:
            draft.finalized = True

    def _send_message_draft(self, p: JSON) -> bool:
        chat = self._chat(p)
        if chat["type"] != "private":
            raise bad("TEXTDRAFT_PEER_INVALID")
        draft_id = _int(p, "draft_id", required=True)
        if not draft_id:
            raise bad("DRAFTID_INVALID")
        self._thread(chat, p)
        self._check_can_send(chat)
        text = ""
        if p.get("text") not in (None, ""):
            text, _ = self._format(p, "text")
        old = self.drafts.get(chat["id"])
        history = [*old.history, text] if old is not None and old.draft_id == draft_id else [text]
        self.drafts[chat["id"]] = MessageDraft(chat["id"], draft_id or 0, text, time.monotonic(), history)
        return True

    def visible_draft(self, chat_id: int) -> str | None:
        """What a private chat's streamed draft shows right now (None: nothing)."""
        draft = self.drafts.get(chat_id)
        return draft.text if draft is not None and draft.visible else None

    def _edit_message_text(self, p: JSON) -> JSON:
        message, sent = self._bot_message(p, edit="edit")
        if "text" not in message:
            raise bad("there is no text in the message to edit")
        if p.get("text") in (None, ""):
            raise bad("message text is empty")
        text, entities = self._format(p, "text")
        markup = self._markup(p)  # omitting reply_markup removes the keyboard, as on Telegram
        if (text, entities, markup) == (
            message["text"],
            message.get("entities", []),
            message.get("reply_markup"),
        ):
            raise bad(NOT_MODIFIED)
        self._flood(message["chat"], (message["chat"]["id"], message["message_id"]))
        message.update(text=text, entities=entities, edit_date=_now())
        self._count(message["chat"], (message["chat"]["id"], message["message_id"]))
        _set_optional(message, "reply_markup", markup)
        sent.text, sent.raw_text, sent.entities, sent.reply_markup = text, _str(p, "text"), entities, markup
        sent.parse_mode, sent.edits = _str(p, "parse_mode"), sent.edits + 1
        return message

    def _edit_message_caption(self, p: JSON) -> JSON:
        message, sent = self._bot_message(p, edit="edit")
        if "photo" not in message:
            raise bad("there is no caption in the message to edit")
        caption, entities = self._format(p, "caption", caption=True)
        markup = self._markup(p)
        current = (message.get("caption"), message.get("caption_entities", []), message.get("reply_markup"))
        if (caption or None, entities, markup) == current:
            raise bad(NOT_MODIFIED)
        _set_optional(message, "caption", caption or None)
        _set_optional(message, "caption_entities", entities or None)
        _set_optional(message, "reply_markup", markup)
        message["edit_date"] = _now()
        sent.caption, sent.raw_text = caption or None, _str(p, "caption")
        sent.parse_mode = _str(p, "parse_mode")
        sent.entities, sent.reply_markup, sent.edits = entities, markup, sent.edits + 1
        return message

    def _edit_message_reply_markup(self, p: JSON) -> JSON:
        message, sent = self._bot_message(p, edit="edit")
        markup = self._markup(p)
        if markup == message.get("reply_markup"):
            raise bad(NOT_MODIFIED)
        _set_optional(message, "reply_markup", markup)
        message["edit_date"] = _now()
        sent.reply_markup, sent.edits = markup, sent.edits + 1
        return message

    def _delete_message(self, p: JSON) -> bool:
        chat = self._chat(p)
        message_id = _int(p, "message_id", required=True) or 0
        if message_id not in self.messages[chat["id"]]:
            raise bad("message to delete not found")
        sent = self._sent.get((chat["id"], message_id))
        bot = self.members[chat["id"]].get(self.bot_id, {})
        may_delete = bot.get("status") == "creator" or bot.get("can_delete_messages", False)
        if sent is None and chat["type"] != "private" and not may_delete:
            raise bad("message can't be deleted")
        del self.messages[chat["id"]][message_id]
        if sent is not None:
            sent.deleted = True
        return True

    def _answer_callback_query(self, p: JSON) -> bool:
        query_id = _str(p, "callback_query_id") or ""
        if self._callbacks.get(query_id, True):
            raise bad(QUERY_INVALID)
        if len(_str(p, "text") or "") > 200:
            raise bad("MESSAGE_TOO_LONG")
        self._callbacks[query_id] = True
        self.callback_answers[query_id] = {
            "text": _str(p, "text"), "show_alert": _bool(p, "show_alert"), "url": _str(p, "url"),
            "cache_time": _int(p, "cache_time"),
        }  # fmt: skip
        return True

    def _get_chat_member(self, p: JSON) -> JSON:
        chat = self._chat(p)
        user_id = _int(p, "user_id", required=True) or 0
        if user_id not in self.users:
            raise bad("user not found")
        return self.members[chat["id"]].get(user_id) or {"status": "left", "user": self.users[user_id]}

    def _get_chat_administrators(self, p: JSON) -> list[JSON]:
        chat = self._chat(p)
        if chat["type"] == "private":
            raise bad("there are no administrators in the private chat")
        return [m for m in self.members[chat["id"]].values() if m["status"] in ("creator", "administrator")]

    def _get_chat_member_count(self, p: JSON) -> int:
        chat = self._chat(p)
        return sum(m["status"] not in ("left", "kicked") for m in self.members[chat["id"]].values())

    def _get_chat(self, p: JSON) -> JSON:
        chat = self._chat(p)
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": GIFT_TYPES}

    @staticmethod
    def _scope_key(p: JSON) -> str:
        """'default', 'all_group_chats', 'chat:<id>', 'chat_member:<id>:<user>' plus '/<lang>' if given."""
        scope = _json(p, "scope") or {"type": "default"}
        key = ":".join(str(scope[k]) for k in ("type", "chat_id", "user_id") if k in scope)
        return f"{key}/{p['language_code']}" if p.get("language_code") else key

    def _set_my_commands(self, p: JSON) -> bool:
        commands = _json(p, "commands")
        if not isinstance(commands, list):
            raise bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise bad("BOT_COMMAND_INVALID")
            description = str(command.get("description", "")).strip()
            if not description:
                raise bad("command description is empty")
            if len(description) > 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._scope_key(p)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _get_my_commands(self, p: JSON) -> list[JSON]:
        return self.commands.get(self._scope_key(p), [])

    def _delete_my_commands(self, p: JSON) -> bool:
        self.commands.pop(self._scope_key(p), None)
        return True

    def _get_file(self, p: JSON) -> JSON:
        info = self._files.get(_str(p, "file_id") or "")
        if info is None:
            raise bad("invalid file_id")
        return dict(info)


def _reply_id(message: JSON) -> int | None:
    """The replied-to message id, ignoring the implicit reply to a forum topic's root."""
    reply = message.get("reply_to_message")
    if reply is None or reply.get("forum_topic_created"):
        return None
    return int(reply["message_id"])


def _thread_of(reply_to: JSON | None, chat: JSON) -> int | None:
    """Replies inside a forum topic stay in that topic."""
    return reply_to.get("message_thread_id") if reply_to and chat.get("is_forum") else None


def _set_optional(message: JSON, key: str, value: Any) -> None:
    if value is None:
        message.pop(key, None)
    else:
        message[key] = value
