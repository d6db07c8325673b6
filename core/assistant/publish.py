"""Sharing and approval: turning a draft into Post/SendImage Actions in a target platform's outbox.

Where a draft may go is decided by the operator (``CHORUS_SHARE_TARGETS``: per source community, or ``*``)
plus any channel of the draft's own community; a member can never name an arbitrary chat of another
community. If the community requires approval for the target platform (``core.community``; on by default
for X), a member's share waits until a moderator approves it; a moderator's own share is its approval.
Each (draft, target) is published at most once (``DraftStore.mark_published`` is ``SET NX``), so double
presses and two approving moderators cannot post twice. Published Actions carry ``ref="draft:<id>"``; the
feed picks them up after delivery.
"""

from __future__ import annotations

from typing import Any

from core import metrics
from core.assistant.budget import Budget
from core.assistant.compose import fit_thread
from core.assistant.drafts import Draft, DraftStore, ShareTarget, shown_id
from core.catalog import PlatformCatalog
from core.community import approval_required
from core.contract import (
    Action,
    Capabilities,
    Choice,
    Event,
    OfferChoices,
    Post,
    SendImage,
    in_place,
    reply_to_event,
)
from core.errors import InvalidInput, PermissionDenied
from core.platform import measure_for
from core.settings import Settings
from core.text import clean, defuse_mentions, truncate


class Publisher:
    def __init__(self, store: DraftStore, settings: Settings, redis: Any, platforms: PlatformCatalog) -> None:
        self.store = store
        self.settings = settings
        self.redis = redis
        self.platforms = platforms
        self.budget = Budget(redis, settings)

    # -- where -----------------------------------------------------------------------------------
    def allowed_targets(self, community_key: str) -> list[ShareTarget]:
        """Operator-configured targets for drafts of this community (invalid entries are skipped)."""
        out: list[ShareTarget] = []
        for scope in ("*", community_key):
            for text in self.settings.share_targets.get(scope, []):
                try:
                    target = ShareTarget.parse(text)
                except ValueError:
                    continue
                if target not in out:
                    out.append(target)
        return out

    def resolve(self, event: Event, platform: str, channel: str | None) -> ShareTarget:
        """The target a member named with /share, if they may use it."""
        platform = platform.lower().strip()
        allowed = [t for t in self.allowed_targets(event.community_key) if t.platform == platform]
        if channel:
            channel = channel.strip().lstrip("#")
            for t in allowed:
                if t.channel == channel:
                    return t
            if platform == event.platform:  # another channel of the same community
                return ShareTarget(platform=platform, community=event.community, channel=channel)
        elif allowed:
            return allowed[0]
        names = ", ".join(t.label for t in self.allowed_targets(event.community_key)) or "none configured"
        asked = defuse_mentions(clean(f"{platform}{'/' + channel if channel else ''}"))[:60]
        raise InvalidInput(
            f"I can't share to {asked} from here. "
            f"Share targets: {names}; or a channel of this community: /share <draft> {event.platform} <channel>."
        )

    # -- what ------------------------------------------------------------------------------------
    def actions_for(self, draft: Draft, target: ShareTarget, *, thread: str | None = None) -> list[Action]:
        """Post (and SendImage) Actions that publish the draft, fitted to the target platform."""
        base: dict[str, Any] = {
            "platform": target.platform,
            "community": target.community,
            "channel": target.channel,
            "thread": thread,
            "ref": draft.ref,
        }
        out: list[Action] = []
        parts = fit_parts(draft, self.platforms.capabilities(target.platform))
        if parts:
            text = "\n\n".join(parts)
            out.append(Post(**base, text=text, parts=tuple(parts) if len(parts) > 1 else ()))
        if draft.image_blob:
            caption = draft.image_label or "AI-generated image"
            out.append(SendImage(**base, blob=draft.image_blob, alt_text=draft.alt_text, caption=caption))
        return out

    # -- how -------------------------------------------------------------------------------------
    async def post_here(self, event: Event, draft: Draft) -> list[Action]:
        """Publish in the chat it was asked in: no approval needed."""
        target = ShareTarget(platform=event.platform, community=event.community, channel=event.channel)
        return await self._publish(event, draft, target, thread=event.thread)

    async def share(self, event: Event, draft: Draft, target: ShareTarget) -> list[Action]:
        if (target.platform, target.community, target.channel) == (
            event.platform,
            event.community,
            event.channel,
        ):
            return await self._publish(event, draft, target, thread=event.thread)
        if (
            await approval_required(self.redis, event.community_key, self.platforms[target.platform])
            and not event.author.is_moderator
        ):
            await self.store.add_pending(draft, target)
            approve = OfferChoices(
                **in_place(event),
                ref=draft.ref,
                text=(
                    f"Draft {draft.id} needs a moderator's approval before it goes to {target.label}. "
                    f"Moderators: /approve {draft.id}"
                ),
                choices=(Choice(label="Approve", payload=f"approve:{draft.id}"),),
            )
            return [approve]
        return await self._publish(event, draft, target)

    async def approve(self, event: Event, draft_id: str) -> list[Action]:
        if not event.author.is_moderator:
            raise PermissionDenied("Only moderators of this community can approve drafts.")
        draft = await self.store.get(event.community_key, draft_id)
        if draft is None:
            raise InvalidInput(
                f"There is no draft {shown_id(draft_id)} in this community (drafts expire after a while)."
            )
        targets = await self.store.take_pending(event.community_key, draft.id)
        if not targets:
            return [reply_to_event(event, f"Draft {draft.id} has nothing waiting for approval.")]
        out: list[Action] = []
        for target in targets:
            out.extend(await self._publish(event, draft, target))
        return out

    async def _publish(
        self, event: Event, draft: Draft, target: ShareTarget, *, thread: str | None = None
    ) -> list[Action]:
        actions = self.actions_for(draft, target, thread=thread)
        if not actions:
            raise InvalidInput(f"Draft {draft.id} has nothing to publish.")
        price = self.budget.x_posts_cost(actions)  # X charges per post (more with a link)
        if price:
            await self.budget.check(event.community_key)
        if not await self.store.mark_published(draft, target):
            return [reply_to_event(event, f"Draft {draft.id} was already published to {target.label}.")]
        warning = await self.budget.charge(event.community_key, price) if price else None
        metrics.SPEND.labels("x_post").inc(price)
        if warning:
            actions = [*actions, reply_to_event(event, warning)]
        here = (target.platform, target.community, target.channel) == (
            event.platform,
            event.community,
            event.channel,
        )
        if here:
            return actions
        return [*actions, reply_to_event(event, f"Draft {draft.id} is on its way to {target.label}.")]


def fit_parts(draft: Draft, caps: Capabilities) -> list[str]:
    """A draft written for one platform, fitted to another (X: weighted length, threads split)."""
    measure = measure_for(caps)
    parts = [p for p in draft.parts if p.strip()]
    if all(measure(p) <= caps.max_text for p in parts):
        return parts
    text = "\n\n".join(parts)
    if draft.kind == "thread" or caps.threads:
        return fit_thread(text, caps.max_text, measure, 25)
    return [truncate(text, caps.max_text, measure)]
