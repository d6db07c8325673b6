"""The versioned per-community prompt store in Redis.

Every key lives under the community's hash tag (``keys.community``), so one community's prompts are one
Redis Cluster slot and no operation can name another community: the community key always comes from the
Event (or the operator's CLI argument), never from what a moderator typed.

``chorus:{c:<community>}:prompt:<slot>[@<platform>]``  hash: ``seq`` (last version number), ``current``
    (the version in force) and ``v:<n>`` (a version's JSON). Versions are append-only: a rollback or a reset
    is a new version, so history is linear and nothing is ever lost.
``chorus:{c:<community>}:prompt:index``    set of the slot keys that have versions
``chorus:{c:<community>}:prompt:audit``    stream of every change (prompts and settings), capped
``chorus:{c:<community>}:prompt:recent``   list of the last requests, for previews (TTL)
``chorus:{c:<community>}:settings``        hash of community settings (``core.community``)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from core import keys
from core.community import settings_key
from core.decode import as_str
from core.prompts.slots import SlotSpec, slot_order

AUDIT_MAXLEN = 10_000
RECENT_KEEP = 20
RECENT_TTL_S = 14 * 86400
RECENT_TEXT_CHARS = 1000

Op = Literal["set", "rollback", "reset", "import", "setting", "edit", "cancel"]

# Append a version and make it current, index the slot and audit the change: one atomic step.
_APPEND = """
local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'v:' .. n, ARGV[1], 'current', n)
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'spec', ARGV[2], 'version', n, 'entry', ARGV[3])
return n
"""


# The version in force of several slots in one round trip (every request reads all of them).
_HEADS = """
local out = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('HGET', key, 'current')
  if current then out[i] = {current, redis.call('HGET', key, 'v:' .. current)} else out[i] = false end
end
return out
"""


class Editor(BaseModel):
    """Who made a change: the platform user (or ``cli`` operator) and where."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str = ""
    platform: str

    def __str__(self) -> str:
        return f"{self.name or self.id} ({self.platform})"


class Version(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int = 0
    text: str  # for a reset: the default text as it was then (so diffs stay meaningful)
    default: bool = False  # this version returned the slot to the default
    op: Op
    editor: Editor
    at: float = Field(default_factory=time.time)
    reason: str = ""
    from_version: int | None = None  # the version a rollback copied


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    spec: str  # slot key, or ``setting:<name>``
    version: int | None = None
    op: Op
    editor: Editor
    at: float = Field(default_factory=time.time)
    reason: str = ""
    detail: str = ""


class RecentRequest(BaseModel):
    """A member's request, kept briefly so previews can replay real requests of the community."""

    model_config = ConfigDict(frozen=True)

    text: str
    platform: str
    at: float = Field(default_factory=time.time)


class PromptStore:
    """Raw storage; validation and meaning live in ``core.prompts.service.Prompts``."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._append = redis.register_script(_APPEND)
        self._heads = redis.register_script(_HEADS)

    # -- versions ------------------------------------------------------------------------------
    async def head(self, community: str, spec: SlotSpec) -> Version | None:
        """The version in force, or None if the community never changed this slot."""
        key = _slot_key(community, spec)
        current = await self.redis.hget(key, "current")
        if current is None:
            return None
        return await self.get(community, spec, int(current))

    async def heads(self, community: str, specs: Sequence[SlotSpec]) -> dict[SlotSpec, Version]:
        """The versions in force of ``specs`` (those never changed are left out), in one round trip."""
        if not specs:
            return {}
        rows = await self._heads(keys=[_slot_key(community, spec) for spec in specs])
        return {
            spec: _version(int(row[0]), row[1])
            for spec, row in zip(specs, rows, strict=True)
            if row and row[1] is not None
        }

    async def get(self, community: str, spec: SlotSpec, number: int) -> Version | None:
        raw = await self.redis.hget(_slot_key(community, spec), f"v:{number}")
        return _version(number, raw) if raw is not None else None

    async def versions(self, community: str, spec: SlotSpec) -> tuple[list[Version], int]:
        """Every version, oldest first, and the number of the one in force (0 if none)."""
        raw: dict[bytes, bytes] = await self.redis.hgetall(_slot_key(community, spec))  # type: ignore[assignment]
        out = [_version(int(field[2:]), value) for field, value in raw.items() if field.startswith(b"v:")]
        out.sort(key=lambda v: v.number)
        return out, int(raw.get(b"current", b"0"))

    async def append(self, community: str, spec: SlotSpec, version: Version) -> Version:
        """Store ``version`` as the next number and make it current; the change is audited atomically."""
        record = version.model_dump_json(exclude={"number"})
        entry = AuditEntry(
            spec=spec.key, op=version.op, editor=version.editor, at=version.at, reason=version.reason
        ).model_dump_json(exclude={"spec", "version"})
        number = await self._append(
            keys=[_slot_key(community, spec), _audit_key(community), _index_key(community)],
            args=[record, spec.key, entry, AUDIT_MAXLEN],
        )
        return version.model_copy(update={"number": int(number)})

    async def specs(self, community: str) -> list[SlotSpec]:
        """Slots this community has ever changed, in slot order."""
        members = await self.redis.smembers(_index_key(community))
        return sorted((SlotSpec.parse(as_str(m), None) for m in members), key=slot_order)

    # -- audit and settings --------------------------------------------------------------------
    async def audit(self, community: str, limit: int = 20) -> list[AuditEntry]:
        """The latest changes, newest first."""
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await self.redis.xrevrange(  # type: ignore[assignment]
            _audit_key(community), count=limit
        )
        out = []
        for _id, fields in entries:
            data = json.loads(fields[b"entry"])
            version = fields.get(b"version")
            data.update(spec=as_str(fields[b"spec"]), version=int(version) if version else None)
            out.append(AuditEntry.model_validate(data))
        return out

    async def setting(self, community: str, name: str) -> str | None:
        value = await self.redis.hget(settings_key(community), name)
        return as_str(value) if value is not None else None

    async def set_setting(
        self, community: str, name: str, value: str | None, editor: Editor, reason: str = ""
    ) -> None:
        """Change (or clear, with None) a community setting, audited in the same transaction."""
        entry = AuditEntry(
            spec=f"setting:{name}", op="setting", editor=editor, reason=reason, detail=value or "default"
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            if value is None:
                pipe.hdel(settings_key(community), name)
            else:
                pipe.hset(settings_key(community), name, value)
            pipe.xadd(
                _audit_key(community),
                {"spec": entry.spec, "entry": entry.model_dump_json(exclude={"spec", "version"})},
                maxlen=AUDIT_MAXLEN,
                approximate=True,
            )
            await pipe.execute()

    async def record(self, community: str, entry: AuditEntry) -> None:
        """Add a change made elsewhere (a draft's text edited) to the community's audit log."""
        await self.redis.xadd(
            _audit_key(community),
            {"spec": entry.spec, "entry": entry.model_dump_json(exclude={"spec", "version"})},
            maxlen=AUDIT_MAXLEN,
            approximate=True,
        )

    # -- recent requests (preview material) ----------------------------------------------------
    async def remember(self, community: str, request: RecentRequest) -> None:
        trimmed = request.model_copy(update={"text": request.text[:RECENT_TEXT_CHARS]})
        key = keys.community(community, "prompt", "recent")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, trimmed.model_dump_json())
            pipe.ltrim(key, 0, RECENT_KEEP - 1)
            pipe.expire(key, RECENT_TTL_S)
            await pipe.execute()

    async def recent(self, community: str, limit: int = RECENT_KEEP) -> list[RecentRequest]:
        """Newest first."""
        raw = await self.redis.lrange(keys.community(community, "prompt", "recent"), 0, limit - 1)
        return [RecentRequest.model_validate_json(r) for r in raw]

    # -- operators -----------------------------------------------------------------------------
    async def communities(self) -> list[str]:
        """Every community with prompt history (for ``chorus prompts list``)."""
        prefix, suffix = "chorus:{c:", "}:prompt:index"
        found = {
            as_str(key)[len(prefix) : -len(suffix)]
            async for key in self.redis.scan_iter(match=f"{prefix}*{suffix}", count=500)
        }
        return sorted(found)


def _slot_key(community: str, spec: SlotSpec) -> str:
    return keys.community(community, "prompt", spec.key)


def _audit_key(community: str) -> str:
    return keys.community(community, "prompt", "audit")


def _index_key(community: str) -> str:
    return keys.community(community, "prompt", "index")


def _version(number: int, raw: bytes | str) -> Version:
    return Version.model_validate_json(raw).model_copy(update={"number": number})
