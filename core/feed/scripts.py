"""The feed's Lua scripts: every multi-key change of the feed is one atomic script inside one partition.

The scripts spell no key name: KEYS[1] is the partition's prefix (``fk.prefix``) and the kinds of keys after
it are written into the Lua source from core/feed/keys.py. A story and every item of it live in its home
partition (core/feed/keys.py), so re-scoring a story and updating its timelines never leaves the slot; an
item that joined a story at home elsewhere is a stub (``@<story id>``) where its id leads, and the scripts
that take item ids answer such a stub with the story id so the caller repeats the call there.

Items are ``<prefix>\\x1e<json>`` strings (see ``items.py``); the prefix fields, 1-based here, are
1 created, 2 community key, 3 channel, 4 source override, 5 reactions, 6 replies, 7 reposts, 8 views,
9 normalised engagement, 10 story id ("" = the item is its own story).

A story's scores are the same in every timeline it is in: ``new`` = its latest item's time, ``hot`` =
ln(1 + sum of its items' normalised engagement) + (its first item's time) / tau. Ordering by that hot
score is ordering by (1 + engagement) * exp(-age / tau) at any moment, so hot timelines need no
periodic re-scoring: only engagement changes touch them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from core.feed import keys as fk

PRIOR_ITEMS = 10
PRIOR_ENGAGEMENT = 10.0  # a new source starts with a baseline of one unit per item
BASELINE_FLOOR = 0.2  # a source where nobody ever reacts still does not turn one reaction into a landslide
WEIGHTS = (1.0, 2.0, 3.0, 0.01)  # reactions, replies, reposts, views


def engagement(reactions: int, replies: int, reposts: int, views: int) -> float:
    """An item's engagement, as the scripts weigh it."""
    w = WEIGHTS
    return w[0] * reactions + w[1] * replies + w[2] * reposts + w[3] * views


COMMON = f"""
-- KEYS[1] is always a feed partition's prefix (fk.prefix): it routes the call and every name starts with it
local P = KEYS[1]
local ITEM, STORY, TL, SRC = P .. '{fk.ITEM_}', P .. '{fk.STORY_}', P .. '{fk.TIMELINE_}', P .. '{fk.SOURCE_}'
local AUTHOR, MULTI, PLATFORMS, COMMUNITIES = P .. '{fk.AUTHOR_}', P .. '{fk.MULTI_}', P .. '{fk.PLATFORMS_}',
  P .. '{fk.COMMUNITIES_}'
local OPTOUT, GEN = P .. '{fk.OPTOUT_}', P .. '{fk.GEN_}'
local function tl(order, kind, scope)  -- fk.timeline
  return TL .. order .. ':' .. kind .. ':' .. scope
end
local SEP, HEND = '\\31', '\\30'
local STUB = '{fk.STUB}'
local function stub_of(v)  -- the story id a stub points to, or nil for an item
  if v and string.sub(v, 1, 1) == STUB then return string.sub(v, 2) end
  return nil
end
local PRIOR_N, PRIOR_E, FLOOR = {PRIOR_ITEMS}, {PRIOR_ENGAGEMENT}, {BASELINE_FLOOR}

local function split_head(v)
  local e = string.find(v, HEND, 1, true)
  local head = string.sub(v, 1, e - 1)
  local f, i = {{}}, 1
  for part in string.gmatch(head .. SEP, '([^' .. SEP .. ']*)' .. SEP) do f[i] = part; i = i + 1 end
  return f, string.sub(v, e)
end

local function join_head(f, body)
  return table.concat(f, SEP, 1, 10) .. body
end

local function weight(f)
  return {WEIGHTS[0]!r} * tonumber(f[5]) + {WEIGHTS[1]!r} * tonumber(f[6]) + {WEIGHTS[2]!r} * tonumber(f[7])
    + {WEIGHTS[3]!r} * tonumber(f[8])
end

local function source_of(f)
  if f[4] ~= '' then return f[4] end
  return f[2] .. ':' .. f[3]
end

local function baseline(src)
  local s = redis.call('HMGET', SRC .. src, 'n', 'e')
  local b = ((tonumber(s[2]) or 0) + PRIOR_E) / ((tonumber(s[1]) or 0) + PRIOR_N)
  if b < FLOOR then b = FLOOR end
  return b
end

local function platform_of(ck)
  return string.match(ck, '^([^:]*)')
end

local function story_ids(sid)
  local m = redis.call('SMEMBERS', STORY .. sid)
  if #m == 0 then return {{sid}} end
  return m
end

-- The records of many stories ("id FS score FS item id FS value ..." joined by GS) as one string: lead
-- items come from one MGET (a Lua redis.call costs microseconds, so fifty GETs cost more than the page's
-- other work) and the reply is built in one flat table; only multi-item stories read their member sets.
-- A story with no living item is a record without items (a page's cursor still moves past it).
local function story_records(sids, scores)
  local n = #sids
  if n == 0 then return '' end
  local keys, vals = {{}}, {{}}
  for i = 1, n do keys[i] = ITEM .. sids[i] end
  for i = 1, n, 4000 do
    local got = redis.call('MGET', unpack(keys, i, math.min(i + 3999, n)))
    for j = 1, #got do vals[i + j - 1] = got[j] end
  end
  local out, k, single, find = {{}}, 0, SEP .. HEND, string.find
  for i = 1, n do
    local sid, v = sids[i], vals[i]
    out[k + 1] = sid; out[k + 2] = '\\28'; out[k + 3] = scores[i] or ''; k = k + 3
    if v and find(v, single, 1, true) then
      out[k + 1] = '\\28'; out[k + 2] = sid; out[k + 3] = '\\28'; out[k + 4] = v; k = k + 4
    else
      for _, id in ipairs(story_ids(sid)) do
        local w = redis.call('GET', ITEM .. id)
        if w then out[k + 1] = '\\28'; out[k + 2] = id; out[k + 3] = '\\28'; out[k + 4] = w; k = k + 4 end
      end
    end
    k = k + 1; out[k] = '\\29'
  end
  return table.concat(out, '', 1, k - 1)
end

local function index(sid, ck, tnew, hot)
  local p = platform_of(ck)
  redis.call('ZADD', tl('new', 'c', ck), tnew, sid)
  redis.call('ZADD', tl('hot', 'c', ck), hot, sid)
  redis.call('ZADD', tl('new', 'p', p), tnew, sid)
  redis.call('ZADD', tl('hot', 'p', p), hot, sid)
end

-- Re-score a story from its living items; drop it from the scopes in `old` it is no longer in.
local function restory(sid, old, tau)
  local sum, tmin, tmax, scopes, plats, alive = 0, nil, nil, {{}}, {{}}, 0
  for _, id in ipairs(story_ids(sid)) do
    local v = redis.call('GET', ITEM .. id)
    if v then
      local f = split_head(v)
      local t = tonumber(f[1])
      sum = sum + tonumber(f[9])
      if tmin == nil or t < tmin then tmin = t end
      if tmax == nil or t > tmax then tmax = t end
      scopes[f[2]] = true
      plats[platform_of(f[2])] = true
      alive = alive + 1
    end
  end
  if alive > 0 then
    local hot = math.log(1 + sum) + tmin / tau
    for ck in pairs(scopes) do index(sid, ck, tmax, hot) end
  end
  for ck in pairs(old) do
    if not scopes[ck] then
      redis.call('ZREM', tl('new', 'c', ck), sid)
      redis.call('ZREM', tl('hot', 'c', ck), sid)
      local p = platform_of(ck)
      if not plats[p] then
        redis.call('ZREM', tl('new', 'p', p), sid)
        redis.call('ZREM', tl('hot', 'p', p), sid)
      end
    end
  end
  return alive
end

-- Remove one item (deleted at the source, purged, or past retention) and re-score its story.
local function remove(id, tau)
  local key = ITEM .. id
  local v = redis.call('GET', key)
  if not v then return 0 end
  if stub_of(v) then return 0 end
  local f = split_head(v)
  local sid = f[10]
  if sid == '' then sid = id end
  local src = SRC .. source_of(f)
  redis.call('HINCRBY', src, 'n', -1)
  local e = weight(f)
  if e > 0 then redis.call('HINCRBYFLOAT', src, 'e', -e) end
  redis.call('DEL', key)
  local st = STORY .. sid
  if redis.call('SREM', st, id) == 1 and redis.call('SCARD', st) == 0 then
    redis.call('DEL', st)
    redis.call('SREM', MULTI, sid)
  end
  restory(sid, {{[f[2]] = true}}, tau)
  return 1
end
"""

# KEYS[1] a partition's prefix. ARGV: ttl, tau, absolute (0/1), then 3 per item:
#   head = id, created, community key, platform, source, engagement, author key, hot score without
#          engagement, story hint (a story at home here that the item joins, or ''), mode ('w' = the
#          item's own partition, 'f' = a story's home elsewhere), joined by SEP;
#   the stored prefix up to and including the views field and its SEP (Python builds it); json.
# Returns per item: 'n' new story, 'j' joined story, 'u' updated, 'o' opted out, 'r' (mode 'f') the
# story is gone: store the item in its own partition, or '@<story id>': the item is a stub here, it lives
# in that story's home. Near-duplicates are found before the call (core/feed/ingest.py: the LSH index is
# spread over the partitions by band key, so it is read and written outside the scripts).
# The batch is written with one variadic command per key (timelines, authors, sources) instead of one
# command per item: per-command overhead, not the work per member, is what dominates.
INGEST = (
    COMMON
    + """
local ttl, tau, absolute = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local match = string.match
local HEAD = '^' .. string.rep('([^' .. SEP .. ']*)' .. SEP, 9) .. '(.*)$'

local function call_many(cmd, key, items)  -- variadic commands, in slices Lua's unpack can take
  for i = 1, #items, 4000 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 3999, #items)))
  end
end

-- pending writes, flushed at the end (and before any story is re-scored from stored items)
local zadds, pushes, add_n, add_e, stats = {}, {}, {}, {}, {}
local function queue(tbl, key, a, b)
  local t = tbl[key]
  if t == nil then t = {}; tbl[key] = t end
  t[#t + 1] = a
  if b ~= nil then t[#t + 1] = b end
end
local function flush()
  for key, members in pairs(zadds) do call_many('ZADD', key, members) end
  for key, ids in pairs(pushes) do
    call_many('RPUSH', key, ids)
    redis.call('EXPIRE', key, ttl)
  end
  for src, n in pairs(add_n) do redis.call('HINCRBY', SRC .. src, 'n', n) end
  for src, e in pairs(add_e) do
    if e ~= 0 then redis.call('HINCRBYFLOAT', SRC .. src, 'e', e) end
  end
  zadds, pushes, add_n, add_e, stats = {}, {}, {}, {}, {}
end

local function source_baseline(src, own_n, own_e)
  local s = stats[src]
  if s == nil then
    local got = redis.call('HMGET', SRC .. src, 'n', 'e')
    s = {tonumber(got[1]) or 0, tonumber(got[2]) or 0}
    stats[src] = s
  end
  local b = (s[2] + (add_e[src] or 0) + own_e + PRIOR_E) / (s[1] + (add_n[src] or 0) + own_n + PRIOR_N)
  if b < FLOOR then b = FLOOR end
  return b
end

-- parse the batch; one SMISMEMBER for every author
local items, authors = {}, {}
for base = 4, #ARGV, 3 do
  local it = {}
  it.id, it.created, it.ck, it.platform, it.src, it.e, it.author, it.hot, it.hint, it.mode =
    match(ARGV[base], HEAD)
  it.t, it.e = tonumber(it.created), tonumber(it.e)
  it.pre, it.body = ARGV[base + 1], HEND .. ARGV[base + 2]
  items[#items + 1] = it
  authors[#authors + 1] = it.author
end
local opted = redis.call('SMISMEMBER', OPTOUT, unpack(authors))

local out, known = {}, {}
for n, it in ipairs(items) do
  local id, ck = it.id, it.ck
  local key = ITEM .. id
  local result
  if opted[n] == 1 then
    result = 'o'
  else
    local sid = id
    if it.hint ~= '' then
      local lead = redis.call('GET', ITEM .. it.hint)  -- a stub is no story: its item lives elsewhere
      if (lead and not stub_of(lead)) or redis.call('EXISTS', STORY .. it.hint) == 1 then sid = it.hint end
    end
    if sid == id and it.mode == 'f' then
      result = 'r'
    else
      local src, e = it.src, it.e
      local norm, normstr = 0, '0'
      if e > 0 then norm = e / source_baseline(src, 1, e); normstr = string.format('%.6g', norm) end
      local story = ''
      if sid ~= id then story = sid end
      if redis.call('SET', key, it.pre .. normstr .. SEP .. story .. it.body, 'EX', ttl, 'NX') then
        add_n[src] = (add_n[src] or 0) + 1
        add_e[src] = (add_e[src] or 0) + e
        if sid == id then
          local hot = it.hot  -- precomputed for items without engagement (most chat messages)
          if norm > 0 then hot = math.log(1 + norm) + it.t / tau end
          local p = it.platform
          queue(zadds, tl('new', 'c', ck), it.created, id)
          queue(zadds, tl('hot', 'c', ck), hot, id)
          queue(zadds, tl('new', 'p', p), it.created, id)
          queue(zadds, tl('hot', 'p', p), hot, id)
          result = 'n'
        else
          flush()
          local st = STORY .. sid
          if redis.call('EXISTS', st) == 0 then
            redis.call('SADD', st, sid)
            redis.call('SADD', MULTI, sid)
            local lead_key = ITEM .. sid
            local lead = redis.call('GET', lead_key)
            local cut = lead and string.find(lead, SEP .. HEND, 1, true)
            if cut then  -- the first item now names its story: it is no longer a one-item story
              redis.call('SET', lead_key, string.sub(lead, 1, cut) .. sid .. string.sub(lead, cut + 1), 'KEEPTTL')
            end
          end
          redis.call('SADD', st, id)
          redis.call('EXPIRE', st, ttl)
          restory(sid, {}, tau)
          result = 'j'
        end
        queue(pushes, AUTHOR .. it.author, id)
        if not known[ck] then
          known[ck] = true
          redis.call('SADD', PLATFORMS, it.platform)
          redis.call('SADD', COMMUNITIES, ck)
        end
      else
        -- seen before: refresh the text (an edit) and, from polled sources, the engagement
        flush()
        local current = redis.call('GET', key)
        local home = stub_of(current)
        if home then
          result = STUB .. home
        else
          local g, old_body = split_head(current)
          local changed = false
          if absolute then
            local fresh = split_head(it.pre .. '0' .. SEP .. HEND)
            local e_old = weight(g)
            g[5], g[6], g[7], g[8] = fresh[5], fresh[6], fresh[7], fresh[8]
            local e_new = weight(g)
            if e_new ~= e_old then
              local gsrc = source_of(g)
              redis.call('HINCRBYFLOAT', SRC .. gsrc, 'e', e_new - e_old)
              stats[gsrc] = nil
              g[9] = string.format('%.6g', e_new / source_baseline(gsrc, 0, 0))
              changed = true
            end
          end
          if old_body ~= it.body then
            redis.call('INCR', GEN)
            changed = true
          end
          if changed then
            redis.call('SET', key, join_head(g, it.body), 'KEEPTTL')
            local gsid = g[10]
            if gsid == '' then gsid = id end
            restory(gsid, {}, tau)
          end
          result = 'u'
        end
      end
    end
  end
  out[#out + 1] = result
end
flush()
return out
"""
)

# KEYS[1] a partition's prefix. ARGV: tau, id, mode ('d' delta | 'a' absolute), reactions, replies,
# reposts, views. Returns 1 if the item exists, 0 if not, '@<story id>' if it lives in that story's home.
ENGAGE = (
    COMMON
    + """
local tau, id, mode = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local key = ITEM .. id
local v = redis.call('GET', key)
if not v then return 0 end
if stub_of(v) then return v end
local f, body = split_head(v)
local e_old = weight(f)
for k = 1, 4 do
  local x = tonumber(ARGV[3 + k])
  if mode == 'd' then x = tonumber(f[4 + k]) + x end
  if x < 0 then x = 0 end
  f[4 + k] = tostring(math.floor(x))
end
local e_new = weight(f)
local src = source_of(f)
if e_new ~= e_old then redis.call('HINCRBYFLOAT', SRC .. src, 'e', e_new - e_old) end
f[9] = string.format('%.6g', e_new / baseline(src))
redis.call('SET', key, join_head(f, body), 'KEEPTTL')
local sid = f[10]
if sid == '' then sid = id end
restory(sid, {}, tau)
return 1
"""
)

# KEYS[1] a partition's prefix. ARGV: id, json. Returns 1 if the text changed, or the stub like ENGAGE.
EDIT = (
    COMMON
    + """
local key = ITEM .. ARGV[1]
local v = redis.call('GET', key)
if not v then return 0 end
if stub_of(v) then return v end
local f, body = split_head(v)
local new = HEND .. ARGV[2]
if body == new then return 0 end
redis.call('SET', key, join_head(f, new), 'KEEPTTL')
redis.call('INCR', GEN)
return 1
"""
)

# KEYS[1] a partition's prefix. ARGV: tau, ids... Returns {how many existed, stubs...}: the stubs are
# deleted here and returned as '@<story id>' SEP item id, to delete the item in that story's home.
DELETE = (
    COMMON
    + """
local n, follow = 0, {}
for i = 2, #ARGV do
  local key = ITEM .. ARGV[i]
  local home = stub_of(redis.call('GET', key))
  if home then
    redis.call('DEL', key)
    follow[#follow + 1] = STUB .. home .. SEP .. ARGV[i]
  else
    n = n + remove(ARGV[i], tonumber(ARGV[1]))
  end
end
if n > 0 then redis.call('INCR', GEN) end
return {n, unpack(follow)}
"""
)

# KEYS[1] a partition's prefix, KEYS[2] the author's item list there. ARGV: tau, author key, batch.
# Records the opt-out, then removes up to `batch` of the author's items; returns {removed, left}.
PURGE = (
    COMMON
    + """
local tau, batch = tonumber(ARGV[1]), tonumber(ARGV[3])
redis.call('SADD', OPTOUT, ARGV[2])
local ids = redis.call('LRANGE', KEYS[2], 0, batch - 1)
local n = 0
for _, id in ipairs(ids) do n = n + remove(id, tau) end
redis.call('LTRIM', KEYS[2], #ids, -1)
local left = redis.call('LLEN', KEYS[2])
if left == 0 then redis.call('DEL', KEYS[2]) end
if n > 0 then redis.call('INCR', GEN) end
return {n, left}
"""
)

# KEYS[1] a partition's prefix, then timelines of that partition (one, or one per platform for the global
# timeline). ARGV: max score ('+inf' or the cursor's), cursor story id ('' = none), limit, and '1' to
# load the stories' items ('0': ids and scores only, for a merge across partitions).
# Returns one string: per story "id FS score FS item id FS value ...", stories separated by GS (one bulk
# reply parses far faster than nested arrays); a story whose items are gone has no item fields.
PAGE = (
    COMMON
    + """
local maxs, cm, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cs = tonumber(maxs)
local lists = {}
for n = 1, #KEYS - 1 do
  local k = KEYS[n + 1]
  local extra = 0
  if cm ~= '' then extra = redis.call('ZCOUNT', k, maxs, maxs) end
  local r = redis.call('ZREVRANGEBYSCORE', k, maxs, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + extra)
  local i = 1
  while cm ~= '' and i < #r and tonumber(r[i + 1]) == cs and r[i] >= cm do i = i + 2 end  -- shown already
  lists[n] = {r = r, i = i}
end
local sids, scores, seen = {}, {}, {}
if #lists == 1 then  -- one timeline: already in order
  local l = lists[1]
  for i = l.i, #l.r - 1, 2 do
    if #sids >= limit then break end
    sids[#sids + 1] = l.r[i]; scores[#scores + 1] = l.r[i + 1]
  end
else
  -- k-way merge of the sorted lists (score, then id, both descending), skipping a story seen on two platforms
  while #sids < limit do
    local best, bs, bm
    for _, l in ipairs(lists) do
      if l.i < #l.r then
        local m, s = l.r[l.i], tonumber(l.r[l.i + 1])
        if best == nil or s > bs or (s == bs and m > bm) then best, bs, bm = l, s, m end
      end
    end
    if best == nil then break end
    local sid, score = best.r[best.i], best.r[best.i + 1]
    best.i = best.i + 2
    if not seen[sid] then
      seen[sid] = true
      sids[#sids + 1] = sid; scores[#scores + 1] = score
    end
  end
end
if ARGV[4] == '0' then
  local out = {}
  for i = 1, #sids do out[i] = sids[i] .. '\\28' .. scores[i] end
  return table.concat(out, '\\29')
end
return story_records(sids, scores)
"""
)

# KEYS[1] a partition's prefix, KEYS[2] a ``new`` timeline, KEYS[3] the ``hot`` timeline of the same scope. ARGV: start, end, offset,
# count, tau. Returns {count seen, ids joined by GS, sums and latest times joined by spaces} for the
# stories active in [start, end] (three flat strings: Python splits each in C instead of a record each). A one-item story's engagement is read
# back from its hot score (its first and latest time are the same): one ZMSCORE and one SMISMEMBER (of the
# set of multi-item stories) for the whole chunk instead of reading items; only multi-item stories do.
WINDOW = (
    COMMON
    + """
local tau = tonumber(ARGV[5])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], ARGV[2], 'WITHSCORES', 'LIMIT', ARGV[3], ARGV[4])
local out_ids, out_sums, out_latest = {}, {}, {}
local n = #ids / 2
if n == 0 then return {'0', '', '', ''} end
local sids = {}
for j = 1, n do sids[j] = ids[2 * j - 1] end
local hots = redis.call('ZMSCORE', KEYS[3], unpack(sids))
local multi = redis.call('SMISMEMBER', MULTI, unpack(sids))
for j = 1, n do
  local sid, latest = sids[j], ids[2 * j]
  local sum, alive = 0, 0
  if multi[j] == 0 then
    local hot = hots[j]
    if hot then
      sum = math.exp(tonumber(hot) - tonumber(latest) / tau) - 1
      if sum < 1e-9 then sum = 0 end
      alive = 1
    end
  else
    for _, id in ipairs(story_ids(sid)) do
      local v = redis.call('GET', ITEM .. id)
      if v then
        local f = split_head(v)
        sum = sum + tonumber(f[9])
        alive = alive + 1
      end
    end
  end
  if alive > 0 then
    local k = #out_ids + 1
    out_ids[k] = sid; out_sums[k] = tostring(sum); out_latest[k] = latest
  end
end
return {tostring(n), table.concat(out_ids, '\\29'), table.concat(out_sums, ' '), table.concat(out_latest, ' ')}
"""
)

# KEYS[1] a partition's prefix. ARGV: ids of stories at home there. Returns one string like PAGE's (score empty).
STORIES = (
    COMMON
    + """
return story_records(ARGV, {})
"""
)

# KEYS[1] a partition's prefix, KEYS[2] a community's ``new`` timeline there. ARGV: tau, cutoff, batch.
# Removes items created before the cutoff from up to `batch` stories; returns how many stories it saw.
SWEEP = (
    COMMON
    + """
local tau, cutoff = tonumber(ARGV[1]), tonumber(ARGV[2])
local sids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[3])
local ck = string.sub(KEYS[2], string.len(tl('new', 'c', '')) + 1)
for _, sid in ipairs(sids) do
  for _, id in ipairs(story_ids(sid)) do
    local v = redis.call('GET', ITEM .. id)
    if v and tonumber(split_head(v)[1]) < cutoff then remove(id, tau) end
  end
  restory(sid, {[ck] = true}, tau)
end
return #sids
"""
)

# KEYS[1] a partition's prefix. ARGV: ids of stories at home there. Returns, per story, the lead item's value
# or (the lead gone) one member's, '' if none: the texts a near-duplicate is checked against, joined by GS.
LEADS = (
    COMMON
    + """
local out = {}
for i, sid in ipairs(ARGV) do
  local v = redis.call('GET', ITEM .. sid)
  if not v then
    local m = redis.call('SRANDMEMBER', STORY .. sid)
    if m then v = redis.call('GET', ITEM .. m) end
  end
  out[i] = v or ''
end
return table.concat(out, '\\29')
"""
)

# KEYS[1] a partition's prefix. ARGV: pairs (LSH window, band keys of 6 bytes concatenated). Returns, per pair
# and joined by GS, the story id of each band key ('' if none) joined by US: one argument per window instead of
# one per band key, which is what packing a command costs in Python.
LSH_GET = (
    COMMON
    + """
local out = {}
for a = 1, #ARGV, 2 do
  local key, bands, fields = P .. 'LSH_' .. ARGV[a], ARGV[a + 1], {}
  for b = 1, #bands, 6 do fields[#fields + 1] = string.sub(bands, b, b + 5) end
  local got = {}
  for i = 1, #fields, 4000 do
    local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + 3999, #fields)))
    for j = 1, #part do got[i + j - 1] = part[j] or '' end
  end
  out[#out + 1] = table.concat(got, SEP)
end
return table.concat(out, '\\29')
"""
).replace("'LSH_'", f"'{fk.LSH_}'")

# KEYS[1] a partition's prefix. ARGV: pairs (LSH window, band keys concatenated, story ids joined by US), then
# the window width and slack: sets each band key to its story and the bucket's expiry.
LSH_SET = (
    COMMON
    + """
local width, slack = tonumber(ARGV[#ARGV - 1]), tonumber(ARGV[#ARGV])
for a = 1, #ARGV - 2, 3 do
  local w = tonumber(ARGV[a])
  local key, bands, fields, i = P .. 'LSH_' .. ARGV[a], ARGV[a + 1], {}, 0
  for sid in string.gmatch(ARGV[a + 2], '[^' .. SEP .. ']+') do
    fields[#fields + 1] = string.sub(bands, i * 6 + 1, i * 6 + 6)
    fields[#fields + 1] = sid
    i = i + 1
  end
  for j = 1, #fields, 4000 do redis.call('HSET', key, unpack(fields, j, math.min(j + 3999, #fields))) end
  redis.call('EXPIREAT', key, (w + 2) * width + slack)  -- useful while the next window may match
end
return 1
"""
).replace("'LSH_'", f"'{fk.LSH_}'")


async def run_many(
    redis: Any, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]
) -> list[Any]:
    """One script on several partitions in one round trip (a pipeline of EVALSHA; on a cluster, one call
    per partition at once) instead of a round trip per partition. A server that does not know the script yet (just started, or a replica
    promoted since) answers NOSCRIPT: then each call is made on its own, which loads it."""
    if len(calls) == 1:
        keys, args = calls[0]
        return [await script(keys=keys, args=args)]
    if isinstance(redis, RedisCluster):  # its pipelines refuse EVALSHA: the calls go to their nodes at once
        return list(await asyncio.gather(*(script(keys=keys, args=args) for keys, args in calls)))
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            return list(await pipe.execute())
    except NoScriptError:
        return list(await asyncio.gather(*(script(keys=keys, args=args) for keys, args in calls)))
