"""The assistant's commands, mention handler and draft buttons: the flow from a request to Actions.

A request is counted against the quotas first (given back if the provider fails), composed, stored as a
Draft with an id, remembered in the thread's context, and answered with the draft text, its image and the
choices (post here, shorter, new image, share). Replying to a draft revises it; replying to its image edits
the image. Every draft lookup goes through the Event's own community, so ids from elsewhere never resolve,
and only the draft's author or a moderator may press its buttons.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from core.assistant.card import next_style
from core.assistant.compose import Composer, DigestSummarizer, Request, Target, user_message
from core.assistant.context import ConversationContext
from core.assistant.drafts import Draft, DraftKind, DraftStore, ShareTarget, shown_id
from core.assistant.images import ImageService
from core.assistant.interpret import ModelInterpreter
from core.assistant.models import ChatBackend, ModelRuntime, describe_model
from core.assistant.moderation import Moderator
from core.assistant.publish import Publisher
from core.assistant.quotas import Quotas, Ticket, WindowState
from core.commands import Command, Option
from core.contract import (
    Action,
    Choice,
    DraftRef,
    Event,
    EventKind,
    OfferChoices,
    SendImage,
    in_place,
    new_id,
    reply_to_event,
)
from core.errors import ContentRefused, InvalidInput, PermissionDenied, ProviderError, UserError
from core.features import Feature
from core.live import LivePublisher
from core.prompts.store import AuditEntry, Editor
from core.services import Services
from core.text import clean

log = logging.getLogger(__name__)

_THREAD = re.compile(r"\bthread\b", re.IGNORECASE)
_REROLL = re.compile(r"^\s*(vary|variation|reroll|re-roll|again|another( one)?|new image|regenerate)\b", re.I)
_ID = re.compile(r"^[0-9a-f]{4,32}$")
EDIT_USAGE = (
    "Use /edit <draft id> <the new text> (or reply to the draft with /edit <the new text>); "
    "in a thread, a blank line starts the next part."
)
MAX_PAYLOAD = 64  # bytes: the smallest button payload of the platforms (Telegram callback data)


class ChatRuntime(Protocol):
    """Where the chat model comes from (``models.ModelRuntime``; tests pass scripted ones)."""

    local: bool  # the bundled CPU model: a longer budget, fewer tokens, no conversation history

    @property
    def chain(self) -> Callable[[], Sequence[ChatBackend]] | None:
        """The backends of CHORUS_CHAT_MODELS in order (a method); None: ``chat_model`` alone."""

    async def chat_model(self) -> BaseChatModel: ...


class Assistant:
    """Holds the assistant's parts; one per process (``core.app.Chorus.assistant``)."""

    def __init__(
        self,
        services: Services,
        *,
        runtime: ChatRuntime,
        images: Any,
        moderator: Any,
    ) -> None:
        s = services.settings
        self.services = services
        self.runtime = runtime
        self.images = images
        self.moderator = moderator
        self.store = DraftStore(services.redis, ttl_s=s.draft_ttl_s)
        self.context = ConversationContext(
            services.redis, ttl_s=s.context_ttl_s, max_turns=max(1, s.context_turns)
        )
        self.quotas = Quotas(services.redis, s)
        self.publisher = Publisher(self.store, s, services.redis, services.platforms)
        self.composer = Composer(
            runtime.chat_model,
            prompts=lambda: services.prompts,
            moderator=moderator,
            budget_s=s.local_compose_budget_s if runtime.local else s.compose_budget_s,
            small_model=runtime.local,
            thread_max_parts=s.thread_max_parts,
            chain=runtime.chain,
        )

    @property
    def model_name(self) -> str:
        return "local" if self.runtime.local else self.services.settings.chat_model

    async def draft_request(self, community_key: str, draft_id: str) -> str:
        draft = await self.store.get(community_key, draft_id)
        return draft.request if draft is not None else ""

    # -- writing ---------------------------------------------------------------------------------
    async def write(self, event: Event, kind: DraftKind, request: str) -> list[Action]:
        """A new post, thread or reply from a request."""
        request = clean(request).strip()
        if not request and kind != "reply":
            raise InvalidInput(f"Tell me what to write, e.g. /{kind} our launch next Friday.")
        turns = self._turns() if kind != "reply" else 0
        history = await self.context.history(event, turns) if turns else []
        req = Request(
            kind=kind,
            text=request,
            community_key=event.community_key,
            community_name=event.community,
            target=self.target(event),
            message=event.reply_to.text if kind == "reply" and event.reply_to else None,
            chain=event.reply_to.chain if kind == "reply" and event.reply_to else (),
            history=history,
        )
        draft = await self._compose(event, req)
        draft.kind = kind
        note = await self._attach_image(event, draft, request) if kind in ("post", "thread") else ""
        await self._remember(event, draft, request)
        return self.present(event, draft, note)

    async def revise(self, event: Event, draft: Draft, instruction: str) -> list[Action]:
        instruction = clean(instruction).strip() or "shorter"
        if draft.kind == "image":
            return await self.new_image(event, draft, instruction)
        req = Request(
            kind=draft.kind,
            text=instruction,
            community_key=event.community_key,
            community_name=event.community,
            target=self.target(event),
            parent_text=draft.text,
        )
        revised = await self._compose(event, req)
        revised.kind = draft.kind
        revised.parent = draft.id
        revised.version = draft.version + 1
        revised.request = draft.request
        revised.image_prompt = draft.image_prompt
        revised.image_blob, revised.image_kind = draft.image_blob, draft.image_kind
        revised.image_label, revised.alt_text = draft.image_label, draft.alt_text
        note = ""
        if draft.image_kind == "card":  # a card shows the text: draw it again for the new text
            note = await self._attach_image(event, revised, draft.request, charge=False)
        await self._remember(event, revised, instruction)
        return self.present(event, revised, note)

    async def edit(self, event: Event, draft: Draft, text: str) -> list[Action]:
        """The person's own words replace the draft's text, as its next version (a new id, like a revision):
        shares waiting for approval move to it, and the change is in the community's audit log."""
        text = clean(text).strip()  # clean() also drops the \r of a browser's line breaks
        if not text:
            raise InvalidInput(EDIT_USAGE)
        if not draft.parts:
            raise InvalidInput(
                f"Draft {draft.id} is an image; reply to it with what to change in the picture."
            )
        if text == draft.text:
            return [reply_to_event(event, f"Draft {draft.id} already says that; nothing changed.")]
        parts = _edited_parts(draft.kind, text)
        facts = self.services.platforms[draft.platform]
        target = Target.for_platform(facts)
        longest = max(target.measure(p) for p in parts)
        if longest > target.limit:
            split = " (a blank line starts the next part)" if draft.kind == "thread" else ""
            raise InvalidInput(
                f"That is {longest} characters; a {draft.kind} on {facts.label} holds at most "
                f"{target.limit}{' per part' if draft.kind == 'thread' else ''}. Shorten it{split}."
            )
        await self.composer.check_input(text)
        edited = draft.model_copy(
            update={
                "id": new_id(),
                "parts": parts,
                "parent": draft.id,
                "version": draft.version + 1,
                "written_by": _edited_by(draft, event),
                "skipped_models": [],
                "created_at": time.time(),
            }
        )
        note = ""
        if draft.image_kind == "card":  # a card shows the text: draw it again for the new text
            note = await self._attach_image(event, edited, draft.request, charge=False)
        await self.store.save(edited)
        moved = await self.store.take_pending(event.community_key, draft.id)
        for share in moved:
            await self.store.add_pending(edited, share)
        editor = Editor(id=event.author.id, name=event.author.name, platform=event.platform)
        detail = f"now draft {edited.id} (v{edited.version})"
        await self.services.prompts.store.record(
            event.community_key, AuditEntry(spec=f"draft:{draft.id}", op="edit", editor=editor, detail=detail)
        )
        note += f", replacing draft {draft.id}"
        if moved:
            note += f"; waiting for approval to {', '.join(t.label for t in moved)}"
        return self.present(event, edited, note)

    async def image(self, event: Event, description: str) -> list[Action]:
        description = clean(description).strip()
        if not description:
            raise InvalidInput("Describe the image, e.g. /image a cat astronaut.")
        await self.composer.check_input(description)
        draft = Draft(
            community_key=event.community_key,
            platform=event.platform,
            channel=event.channel,
            thread=event.thread,
            author_id=event.author.id,
            kind="image",
            request=description,
        )
        prompt = await self.image_prompt(event, description, "")
        await self._generate(event, draft, prompt, card_text=description)
        await self.store.save(draft)
        return self.present(event, draft)

    async def new_image(self, event: Event, draft: Draft, instruction: str = "") -> list[Action]:
        """Reroll ("vary") or edit the draft's image; a plain instruction on an image edits it."""
        edit = bool(instruction) and not _REROLL.match(instruction) and draft.image_blob is not None
        if edit:
            await self.composer.check_input(instruction)
        fresh = draft.model_copy(update={"id": new_id(), "author_id": event.author.id})
        fresh.parent, fresh.version = draft.id, draft.version + 1
        card_text = draft.text or draft.request
        if edit and draft.image_blob:
            parent_png = await self.services.bus.get_blob(draft.image_blob)
            await self._with_image_quota(
                event, lambda: self.images.edit(parent_png, instruction, card_text=card_text), fresh
            )
        else:
            style = next_style(draft.image_style) if draft.image_kind == "card" else None
            await self._generate(
                event, fresh, draft.image_prompt or draft.request, card_text=card_text, style=style
            )
        await self.store.save(fresh)
        return self.present(event, fresh, text=False)

    # -- the parts ---------------------------------------------------------------------------------
    def target(self, event: Event) -> Target:
        return Target.for_platform(self.services.platforms[event.platform])

    def _turns(self) -> int:
        # The bundled 135M model copies earlier turns instead of following the request: give it none.
        return 0 if self.runtime.local else self.services.settings.context_turns

    async def _compose(self, event: Event, req: Request) -> Draft:
        ticket = await self.quotas.acquire(event.community_key, event.author.id, "text")
        try:
            composed = await self.composer.compose(req, self.live(event, req.target.limit))
        except ProviderError as exc:
            await self.quotas.release(ticket)
            log.warning("compose failed for %s: %r", event.community_key, exc)
            raise UserError(user_message(exc)) from exc
        except ContentRefused:
            await self.quotas.release(ticket)
            raise
        await self._record(
            event,
            model=_priced_name(composed.model) or self.model_name,
            tokens_in=composed.tokens_in,
            tokens_out=composed.tokens_out,
        )
        return Draft(
            community_key=event.community_key,
            platform=event.platform,
            channel=event.channel,
            thread=event.thread,
            author_id=event.author.id,
            kind=req.kind,
            request=req.text,
            parts=composed.parts,
            hashtags=composed.hashtags,
            alt_text=composed.alt_text,
            written_by=composed.model,
            skipped_models=composed.skipped,
        )

    def live(self, event: Event, max_chars: int) -> LivePublisher | None:
        """Where a mention's draft is shown while written (commands answer once: Discord's slash commands
        already show "thinking" and their answer is a follow-up, not a message the bot can edit)."""
        if event.kind != EventKind.MENTION:
            return None
        if not self.services.platforms.capabilities(event.platform).live_drafts:
            return None  # a platform that shows only the finished draft (X)
        rules = getattr(self.moderator, "rules", None)

        def allowed(text: str) -> bool:
            return rules is None or bool(rules.check(text).allowed)

        return LivePublisher(self.services.redis, event, allowed=allowed, max_chars=max_chars)

    async def _attach_image(self, event: Event, draft: Draft, request: str, *, charge: bool = True) -> str:
        """Give a post its image; a failure or an exhausted image quota leaves a note, not an error."""
        if not self.services.settings.auto_image:
            return ""
        prompt = await self.image_prompt(event, request, draft.text)
        try:
            await self._generate(event, draft, prompt, card_text=draft.text, charge=charge)
        except UserError as exc:
            return f" (no image: {exc.user_message})"
        return ""

    async def image_prompt(self, event: Event, request: str, post: str) -> str:
        """The community's image template filled with the request (and the post the image goes with)."""
        values = {
            "request": request,
            "post": post[:800],
            "community": event.community,
            "platform": event.platform,
        }
        return await self.composer.image_prompt(event.community_key, event.platform, values)

    async def _generate(
        self,
        event: Event,
        draft: Draft,
        prompt: str,
        *,
        card_text: str,
        style: str | None = None,
        charge: bool = True,
    ) -> None:
        draft.image_prompt = prompt

        def call() -> Any:
            return self.images.generate(prompt, card_text=card_text, style=style)

        await self._with_image_quota(event, call, draft, charge=charge)

    async def _with_image_quota(self, event: Event, call: Any, draft: Draft, *, charge: bool = True) -> None:
        ticket: Ticket | None = None
        if charge:
            ticket = await self.quotas.acquire(event.community_key, event.author.id, "image")
        try:
            image = await call()
        except ProviderError as exc:
            if ticket:
                await self.quotas.release(ticket)
            log.warning("image failed for %s: %r", event.community_key, exc)
            raise UserError(user_message(exc)) from exc
        draft.image_blob = await self.services.bus.put_blob(image.png)
        draft.image_kind, draft.image_label, draft.image_style = image.kind, image.label, image.style
        draft.alt_text = image.alt_text
        if charge:
            model = self.services.settings.image_model if image.kind != "card" else "card"
            await self._record(event, model=model, requests=0, images=1)

    async def _record(self, event: Event, **usage: Any) -> None:
        """Count usage and spend; the first time today the community passes the warning share of its
        money cap, its moderators are told in this conversation (once: the flag is set atomically)."""
        warning = await self.quotas.record(event.community_key, event.author.id, **usage)
        if warning:
            await self.services.bus.enqueue([reply_to_event(event, warning)])

    async def _remember(self, event: Event, draft: Draft, request: str) -> None:
        await self.store.save(draft)
        await self.context.add(event, "user", request)
        await self.context.add(event, "assistant", draft.text)
        try:
            await self.services.prompts.remember_request(event.community_key, request)
        except Exception:  # preview samples are a convenience; never fail a draft for them
            log.exception("could not remember the request for prompt previews")

    def present(self, event: Event, draft: Draft, note: str = "", *, text: bool = True) -> list[Action]:
        """The draft's text (unless only its image changed), its image and the choices, in place."""
        out: list[Action] = []
        if draft.parts and text:
            out.append(reply_to_event(event, draft.text, ref=draft.ref))
        if draft.image_blob:
            out.append(
                SendImage(
                    **in_place(event),
                    blob=draft.image_blob,
                    alt_text=draft.alt_text,
                    caption=draft.image_label or "AI-generated image",
                    ref=draft.image_ref,
                )
            )
        target = self.target(event)
        if draft.parts:
            used = max(target.measure(p) for p in draft.parts)
            size = (
                f"{len(draft.parts)} parts, each ≤ {target.limit}"
                if len(draft.parts) > 1
                else f"{used}/{target.limit}"
            )
            summary = f"Draft {draft.id} ({draft.kind}, {size} characters on {target.platform}){note}."
            summary += written_by(draft)
            hint = " Reply to it to revise (e.g. “shorter”, “more playful”)."
        else:
            summary, hint = f"Image draft {draft.id}{note}.", " Reply to the image to edit it, or “vary”."
        choices = [Choice(label="Post here", payload=f"post:{draft.id}")]
        if draft.parts:
            choices.append(Choice(label="Shorter", payload=f"revise:{draft.id}"))
        choices.append(Choice(label="New image", payload=f"image:{draft.id}"))
        for t in self.publisher.allowed_targets(event.community_key):
            if (t.platform, t.community, t.channel) != (event.platform, event.community, event.channel):
                payload = f"share:{draft.id}:{t.platform}:{t.channel}"
                if (
                    len(payload.encode()) > MAX_PAYLOAD
                ):  # Telegram's callback data: the platform's first target
                    payload = f"share:{draft.id}:{t.platform}"
                choices.append(Choice(label=f"Share to {t.label}", payload=payload))
        out.append(
            OfferChoices(
                **in_place(event),
                text=summary + hint,
                choices=tuple(choices[:8]),
                allowed_user=event.author.id,
                ref=draft.ref,
            )
        )
        return out

    # -- lookups ------------------------------------------------------------------------------------
    async def draft(self, event: Event, draft_id: str, *, pressing: bool = True) -> Draft:
        """The draft in *this* community; only its author or a moderator may act on it."""
        draft = await self.store.get(event.community_key, draft_id.strip())
        if draft is None:
            raise InvalidInput(
                f"There is no draft {shown_id(draft_id)} here (drafts are kept "
                f"{self.services.settings.draft_ttl_s // 86400 or 1} days). Mention me to write a new one."
            )
        if pressing and draft.author_id != event.author.id and not event.author.is_moderator:
            raise PermissionDenied("Only the person who asked for this draft (or a moderator) can do that.")
        return draft

    async def replied_draft(self, event: Event) -> tuple[Draft, bool] | None:
        """The draft (and whether its image) the Event replies to, if it replies to one of ours."""
        if event.reply_to is None:
            return None
        info = await self.services.bus.bot_message(event.platform, event.reply_to.message_id)
        parsed = DraftRef.parse(str(info.get("ref") or "")) if info else None
        if parsed is None:
            return None
        draft_id, is_image = parsed.draft_id, parsed.image
        # Anyone in the community may build on a draft by replying: the result is their own new draft.
        return await self.draft(event, draft_id, pressing=False), is_image

    # -- quota and stats -------------------------------------------------------------------------------
    async def quota_text(self, event: Event, scope: str) -> str:
        lines = []
        for kind, label in (("text", "Drafts"), ("image", "Images")):
            states = await self.quotas.state(event.community_key, event.author.id, kind)  # type: ignore[arg-type]
            mine = [s for s in states if s.scope == "user"]
            theirs = [s for s in states if s.scope == "community"]
            if scope in ("", "mine", "me"):
                lines.append(f"{label} (you): {_windows(mine)}")
            if scope in ("", "community", "all"):
                lines.append(f"{label} (community): {_windows(theirs)}")
        return "\n".join(lines) + "\nDaily quotas reset at 00:00 UTC."

    async def stats_text(self, event: Event) -> str:
        ck = event.community_key
        today = await self.quotas.usage(ck, days=1)
        week = await self.quotas.usage(ck, days=7)
        top = await self.quotas.top_users(ck)
        lines = [f"Usage of {event.community} ({self.model_name}):"]
        for label, u in (("Today", today), ("Last 7 days", week)):
            lines.append(
                f"  {label}: {u.requests} requests, {u.tokens_in + u.tokens_out:,} tokens "
                f"({u.tokens_in:,} in / {u.tokens_out:,} out), {u.images} images, est. ${u.cost_usd:.4f}"
            )
        if top:
            lines.append("  Most active today: " + ", ".join(f"{user} ({n})" for user, n in top))
        community, deployment = await self.quotas.budget.today(ck)
        lines.append(f"  Spend today (models, images, X posts): {community.describe()}")
        if deployment.cap and deployment.share >= self.services.settings.budget_warn_at:
            lines.append(f"  Whole deployment today: {deployment.describe()}")
        return "\n".join(lines)


def written_by(draft: Draft) -> str:
    """Which model wrote the draft, and which were tried first (so a weaker fallback is no surprise)."""
    if not draft.written_by:
        return ""
    if draft.skipped_models:
        skipped = ", ".join(draft.skipped_models)
        return f" Written by {draft.written_by} ({skipped} did not answer)."
    return f" Written by {draft.written_by}."


def _priced_name(label: str) -> str:
    """The model name usage is priced under (the bundled model is free: "local")."""
    return "local" if label.endswith("(local)") else label


def _windows(states: list[WindowState]) -> str:
    return ", ".join(f"{s.remaining}/{s.limit} left this {s.period}" for s in states)


# -- handlers ----------------------------------------------------------------------------------------
async def on_mention(a: Assistant, event: Event, svc: Services) -> list[Action]:
    """A plain mention: revise the draft it replies to, answer the message it replies to, or write."""
    replied = await a.replied_draft(event)
    if replied is not None:
        draft, is_image = replied
        if is_image or _REROLL.match(event.text):
            return await a.new_image(event, draft, event.text)
        return await a.revise(event, draft, event.text)
    if event.reply_to is not None and not event.reply_to.from_bot:
        return await a.write(event, "reply", event.text)
    kind: DraftKind = "thread" if _THREAD.search(event.text) else "post"
    return await a.write(event, kind, event.text)


async def _post(a: Assistant, event: Event, svc: Services) -> list[Action]:
    return await a.write(event, "post", event.args)


async def _thread(a: Assistant, event: Event, svc: Services) -> list[Action]:
    return await a.write(event, "thread", event.args)


async def _image(a: Assistant, event: Event, svc: Services) -> list[Action]:
    replied = await a.replied_draft(event)
    if replied is not None:
        return await a.new_image(event, replied[0], event.args)
    return await a.image(event, event.args)


async def _revise(a: Assistant, event: Event, svc: Services) -> list[Action]:
    replied = await a.replied_draft(event)
    if replied is not None:
        draft, is_image = replied
        if is_image:
            return await a.new_image(event, draft, event.args)
        return await a.revise(event, draft, event.args)
    first, _, rest = event.args.strip().partition(" ")
    if _ID.match(first):
        return await a.revise(event, await a.draft(event, first), rest)
    raise InvalidInput(
        "Reply to one of my drafts with /revise <what to change>, or use /revise <draft id> <change>."
    )


async def _edit(a: Assistant, event: Event, svc: Services) -> list[Action]:
    """Replace a draft's text with the person's own words (the web's approval queue edits through this)."""
    replied = await a.replied_draft(event)
    if replied is not None:  # replying to the draft: all of it is the new text
        return await a.edit(event, replied[0], event.args)
    first, rest = [*event.args.strip().split(None, 1), "", ""][:2]
    if not _ID.match(first):
        raise InvalidInput(EDIT_USAGE)
    return await a.edit(event, await a.draft(event, first), rest)


def _edited_by(draft: Draft, event: Event) -> str:
    editor = f"edited by {event.author.name or event.author.id}"
    return f"{draft.written_by}, {editor}" if draft.written_by else editor


def _edited_parts(kind: DraftKind, text: str) -> list[str]:
    """A thread's parts are separated by blank lines; any other draft is one part."""
    if kind != "thread":
        return [text]
    return [part.strip() for part in re.split(r"\n[ \t]*\n", text) if part.strip()]


async def _share(a: Assistant, event: Event, svc: Services) -> list[Action]:
    words = event.args.split()
    replied = await a.replied_draft(event)
    if replied is not None and (not words or not _ID.match(words[0])):
        words = [replied[0].id, *words]
    if len(words) < 2:
        raise InvalidInput("Use /share <draft id> <platform> [channel], e.g. /share 3f2a9c1e x.")
    draft = await a.draft(event, words[0])
    target = a.publisher.resolve(event, words[1], words[2] if len(words) > 2 else None)
    return await a.publisher.share(event, draft, target)


async def _approve(a: Assistant, event: Event, svc: Services) -> list[Action]:
    draft_id = event.args.strip().split(" ")[0] if event.args.strip() else ""
    if not draft_id:
        raise InvalidInput("Use /approve <draft id>.")
    return await a.publisher.approve(event, draft_id)


async def _reject(a: Assistant, event: Event, svc: Services) -> list[Action]:
    """Drop the shares of a draft that wait for approval (the draft itself stays for its author)."""
    if not event.author.is_moderator:
        raise PermissionDenied("Only moderators of this community can reject drafts.")
    draft_id = event.args.strip().split(" ")[0]
    if not draft_id:
        raise InvalidInput("Use /reject <draft id>.")
    draft = await a.store.get(event.community_key, draft_id)
    targets = await a.store.take_pending(event.community_key, draft.id) if draft else []
    if draft is None or not targets:
        return [reply_to_event(event, f"Draft {shown_id(draft_id)} has nothing waiting for approval here.")]
    where = ", ".join(t.label for t in targets)
    return [reply_to_event(event, f"Draft {draft.id} will not be published to {where}.")]


async def _quota(a: Assistant, event: Event, svc: Services) -> list[Action]:
    scope = event.args.strip().lower()
    if scope not in ("", "mine", "me", "community", "all"):
        raise InvalidInput("Use /quota, /quota mine or /quota community.")
    return [reply_to_event(event, await a.quota_text(event, scope))]


async def _stats(a: Assistant, event: Event, svc: Services) -> list[Action]:
    if not event.author.is_moderator:
        raise PermissionDenied("Only moderators of this community can see its usage.")
    return [reply_to_event(event, await a.stats_text(event))]


# -- buttons -----------------------------------------------------------------------------------------
async def _press_post(a: Assistant, event: Event, svc: Services, arg: str) -> list[Action]:
    return await a.publisher.post_here(event, await a.draft(event, arg))


async def _press_revise(a: Assistant, event: Event, svc: Services, arg: str) -> list[Action]:
    return await a.revise(event, await a.draft(event, arg), "shorter")


async def _press_image(a: Assistant, event: Event, svc: Services, arg: str) -> list[Action]:
    return await a.new_image(event, await a.draft(event, arg))


async def _press_share(a: Assistant, event: Event, svc: Services, arg: str) -> list[Action]:
    draft_id, _, where = arg.partition(":")
    platform, _, channel = where.partition(":")
    draft = await a.draft(event, draft_id)
    allowed = a.publisher.allowed_targets(event.community_key)
    target = next(
        (t for t in allowed if t.platform == platform and t.channel in (channel, channel or t.channel)), None
    )
    if target is None:
        raise InvalidInput("That share target is no longer configured. Use /share to pick another.")
    return await a.publisher.share(event, draft, target)


async def _press_approve(a: Assistant, event: Event, svc: Services, arg: str) -> list[Action]:
    return await a.publisher.approve(event, arg)


# -- wiring ------------------------------------------------------------------------------------------
async def composer_preview(a: Assistant, event: Event, overrides: dict[str, str], request: str) -> str:
    """Prompt preview: what a post would look like with these templates (nothing is stored)."""
    req = Request(
        kind="post",
        text=request,
        community_key=event.community_key,
        community_name=event.community,
        target=a.target(event),
        overrides=overrides,
    )
    ticket = await a.quotas.acquire(event.community_key, event.author.id, "text")
    try:
        composed = await a.composer.compose(req)
    except ProviderError as exc:
        await a.quotas.release(ticket)
        raise UserError(user_message(exc)) from exc
    await a._record(
        event,
        model=a.model_name,
        tokens_in=composed.tokens_in,
        tokens_out=composed.tokens_out,
    )
    return "\n\n".join(composed.parts)


def commands(a: Assistant) -> tuple[Command[Services], ...]:
    """The assistant's commands, bound to it."""
    return (
        Command(
            "post",
            "draft a post",
            "post <request>",
            partial(_post, a),
            options=(Option("request", "what to write about", True, rest=True),),
            group="assistant",
        ),
        Command(
            "thread",
            "draft a thread",
            "thread <request>",
            partial(_thread, a),
            options=(Option("request", "what the thread is about", True, rest=True),),
            group="assistant",
        ),
        Command(
            "image",
            "make an image (reply to my image to edit it)",
            "image <description>",
            partial(_image, a),
            options=(Option("description", "what to show", True, rest=True),),
            group="assistant",
        ),
        Command(
            "revise",
            "revise a draft (reply to it)",
            "revise <what to change>",
            partial(_revise, a),
            options=(Option("change", "e.g. shorter, more playful", True, rest=True),),
            group="assistant",
        ),
        Command(
            "edit",
            "replace a draft's text with yours (reply to it)",
            "edit <draft> <new text>",
            partial(_edit, a),
            options=(
                Option("draft", "the draft id", True),
                Option("text", "the new text", True, rest=True),
            ),
            group="assistant",
        ),
        Command(
            "share",
            "share a draft to another platform or channel",
            "share <draft> <platform> [channel]",
            partial(_share, a),
            options=(
                Option("draft", "the draft id", True),
                Option("platform", "x, telegram, discord…", True),
                Option("channel", "where (optional)"),
            ),
            group="assistant",
        ),
        Command(
            "approve",
            "approve a draft for publishing",
            "approve <draft>",
            partial(_approve, a),
            moderator_only=True,
            options=(Option("draft", "the draft id", True),),
            group="assistant",
        ),
        Command(
            "reject",
            "turn down a draft waiting for approval",
            "reject <draft>",
            partial(_reject, a),
            moderator_only=True,
            options=(Option("draft", "the draft id", True),),
            group="assistant",
        ),
        Command(
            "quota",
            "your (or the community's) remaining requests",
            "quota [mine|community]",
            partial(_quota, a),
            options=(Option("scope", "mine or community", choices=("mine", "community")),),
            group="assistant",
        ),
        Command(
            "stats",
            "usage of this community",
            "stats",
            partial(_stats, a),
            moderator_only=True,
            group="assistant",
        ),
    )


async def install(svc: Services) -> Assistant:
    """Create the providers (nothing connects or starts until first use) and register the assistant."""
    runtime = ModelRuntime(svc.settings)
    images = ImageService(svc.settings)
    moderator = Moderator(svc.settings)
    svc.closers.extend([runtime.aclose, images.aclose, moderator.aclose])
    return setup(svc, runtime=runtime, images=images, moderator=moderator)


def setup(svc: Services, *, runtime: ChatRuntime, images: Any, moderator: Any) -> Assistant:
    """Register everything with given providers (install() passes the real ones; tests pass fakes)."""
    assistant = Assistant(svc, runtime=runtime, images=images, moderator=moderator)
    svc.previewer.provide(partial(composer_preview, assistant))
    svc.summarizer.provide(DigestSummarizer(assistant.composer))
    svc.draft_requests.provide(assistant.draft_request)
    svc.interpreter.provide(ModelInterpreter(runtime.chat_model, assistant.composer.budget_s))
    svc.delivery_hooks.append(assistant.quotas.budget.charge_delivered_x)  # what the bot posts on X costs
    for command in commands(assistant):
        svc.commands.register(command)
    svc.mention = partial(on_mention, assistant)
    for verb, handler in (
        ("post", _press_post),
        ("revise", _press_revise),
        ("image", _press_image),
        ("share", _press_share),
        ("approve", _press_approve),
    ):
        svc.choices.register(verb, partial(handler, assistant))
    return assistant


FEATURE = Feature("assistant", install, describe=lambda settings: {"Model": describe_model(settings)})

__all__ = ["FEATURE", "Assistant", "ShareTarget", "install", "setup"]
