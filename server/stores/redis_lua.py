"""The Lua scripts behind RedisStore: each call is one atomic EVALSHA.

Rules:
- Every script takes the key prefix as ARGV[1] and builds its key names itself (so the
  store works on a single Redis node or a replica set, not on Redis Cluster, where keys
  must be declared; see docs/compatibility.md).
- Key layout under prefix P (ids and names are embedded verbatim; the correlation key
  length-prefixes the name so "a:b"+"c" and "a"+"b:c" never collide):
    P:wf:<id>             hash: n name, wv def version, st status, ct/ut/et times,
                          c correlation id, pa parent id (absent = None), tx search text,
                          b body, d definition ref, v optimistic version
    P:def:<ref>           string: a workflow definition, written once (SET NX), never
                          deleted; `d` in P:wf:<id> names it ("" = none)
    P:wfs:time            zset create_time -> id (search scans it newest first)
    P:wfs:st:<status>     set of ids          P:wfs:name:<name>   set of ids
    P:wfs:open:<name>     zset def version -> id, only non-terminal workflows
    P:wfs:corr:<len>:<name>:<corr>   set of ids
    P:wft:<id>            set of the workflow's task ids;  P:taskwf  hash task id -> wf id
    P:q:<queue>           zset score = deliver_ms*1000 + (999-priority), member
                          = 16 hex digits of a global sequence + message id
    P:qm:<queue>          hash message id -> its member;  P:queues  set of queue names
    P:qseq                the sequence (insertion order breaks score ties, since equal
                          scores order members lexicographically)
- A pop re-scores the popped members with deadline = now + unack_ms, keeping priority and
  sequence: an unacknowledged message becomes visible again by itself (no separate unack
  set to sweep). ack and remove both delete the message.
- Scores stay exact: deliver_ms*1000+999 < 2^53 for any time before the year 2255.
"""

from __future__ import annotations

# Shared helpers, prepended to every script.
_PRELUDE = r"""
local P = ARGV[1]
local TERMINAL = {COMPLETED=true, FAILED=true, TIMED_OUT=true, TERMINATED=true}

local function q_remove(q, id)
  local mk = P .. ':qm:' .. q
  local member = redis.call('HGET', mk, id)
  if not member then return 0 end
  redis.call('ZREM', P .. ':q:' .. q, member)
  redis.call('HDEL', mk, id)
  return 1
end

local function q_push(q, id, prio, deliver)
  if prio < 0 then prio = 0 elseif prio > 999 then prio = 999 end
  q_remove(q, id)
  local seq = redis.call('INCR', P .. ':qseq')
  local member = string.format('%016x', seq) .. id
  redis.call('ZADD', P .. ':q:' .. q, deliver * 1000 + (999 - prio), member)
  redis.call('HSET', P .. ':qm:' .. q, id, member)
  redis.call('SADD', P .. ':queues', q)
end

local function corr_key(name, corr)
  return P .. ':wfs:corr:' .. string.len(name) .. ':' .. name .. ':' .. corr
end

-- Drop every index entry of the stored workflow `id` (fields from HMGET n wv st c).
local function unindex(id, name, status, corr)
  redis.call('SREM', P .. ':wfs:st:' .. status, id)
  redis.call('SREM', P .. ':wfs:name:' .. name, id)
  redis.call('ZREM', P .. ':wfs:open:' .. name, id)
  if corr then redis.call('SREM', corr_key(name, corr), id) end
end
"""

# ARGV: P, now, id, expected, name, wver, status, ct, ut, et, corr, parent, text, body,
#       n_added, n_removed, n_ops, definition ref, definition bytes ("" = already stored),
#       added ids..., removed ids..., ops (kind, queue, id, priority, delay)...
#       corr/parent: "" = None, else "=" + value.
# Returns {1, new_version} or {0, current_version} (0 = absent) on a version conflict.
COMMIT = (
    _PRELUDE
    + r"""
local now = tonumber(ARGV[2])
local id = ARGV[3]
local expected = tonumber(ARGV[4])
local wk = P .. ':wf:' .. id
local cur = redis.call('HMGET', wk, 'v', 'n', 'st', 'c')
local curv = tonumber(cur[1]) or 0
if curv ~= expected then return {0, curv} end
if curv > 0 then unindex(id, cur[2], cur[3], cur[4] or nil) end

local name, wver, status = ARGV[5], ARGV[6], ARGV[7]
local corr, parent = ARGV[11], ARGV[12]
local newv = curv + 1
redis.call('HSET', wk, 'n', name, 'wv', wver, 'st', status, 'ct', ARGV[8], 'ut', ARGV[9],
  'et', ARGV[10], 'tx', ARGV[13], 'b', ARGV[14], 'v', newv, 'd', ARGV[18])
if ARGV[19] ~= '' then redis.call('SET', P .. ':def:' .. ARGV[18], ARGV[19], 'NX') end
local has_corr = corr ~= ''
if has_corr then
  corr = string.sub(corr, 2)
  redis.call('HSET', wk, 'c', corr)
else
  redis.call('HDEL', wk, 'c')
end
if parent == '' then
  redis.call('HDEL', wk, 'pa')
else
  redis.call('HSET', wk, 'pa', string.sub(parent, 2))
end

redis.call('ZADD', P .. ':wfs:time', tonumber(ARGV[8]), id)
redis.call('SADD', P .. ':wfs:st:' .. status, id)
redis.call('SADD', P .. ':wfs:name:' .. name, id)
if not TERMINAL[status] then redis.call('ZADD', P .. ':wfs:open:' .. name, tonumber(wver), id) end
if has_corr then redis.call('SADD', corr_key(name, corr), id) end

local n_added, n_removed, n_ops = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
local i = 20
local tk = P .. ':wft:' .. id
for _ = 1, n_added do
  redis.call('HSET', P .. ':taskwf', ARGV[i], id)
  redis.call('SADD', tk, ARGV[i])
  i = i + 1
end
for _ = 1, n_removed do
  if redis.call('HGET', P .. ':taskwf', ARGV[i]) == id then
    redis.call('HDEL', P .. ':taskwf', ARGV[i])
  end
  redis.call('SREM', tk, ARGV[i])
  i = i + 1
end
for _ = 1, n_ops do
  local kind, q, mid = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if kind == 'push' then
    q_push(q, mid, tonumber(ARGV[i + 3]), now + tonumber(ARGV[i + 4]))
  else
    q_remove(q, mid)
  end
  i = i + 5
end
return {1, newv}
"""
)

# ARGV: P, id, decider queue. Returns 1 if the workflow existed.
DELETE = (
    _PRELUDE
    + r"""
local id = ARGV[2]
local wk = P .. ':wf:' .. id
local cur = redis.call('HMGET', wk, 'v', 'n', 'st', 'c')
if not cur[1] then return 0 end
unindex(id, cur[2], cur[3], cur[4] or nil)
redis.call('ZREM', P .. ':wfs:time', id)
local tk = P .. ':wft:' .. id
for _, tid in ipairs(redis.call('SMEMBERS', tk)) do
  if redis.call('HGET', P .. ':taskwf', tid) == id then redis.call('HDEL', P .. ':taskwf', tid) end
end
redis.call('DEL', wk, tk)
q_remove(ARGV[3], id)
return 1
"""
)

# ARGV: P, queue, count, now, unack_ms. Returns the popped ids in delivery order.
POP = (
    _PRELUDE
    + r"""
local k = P .. ':q:' .. ARGV[2]
local now = tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', k, '-inf', now * 1000 + 999, 'WITHSCORES',
  'LIMIT', 0, tonumber(ARGV[3]))
local deadline = (now + tonumber(ARGV[5])) * 1000
local out = {}
for j = 1, #due, 2 do
  local member = due[j]
  local inv_prio = tonumber(due[j + 1]) % 1000
  redis.call('ZADD', k, deadline + inv_prio, member)
  out[#out + 1] = string.sub(member, 17)
end
return out
"""
)

# ARGV: P, queue, id, priority, deliver_ms.
PUSH = (
    _PRELUDE
    + r"""
q_push(ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
return 1
"""
)

# ARGV: P, queue, id. Returns 1 if the message was there.
REMOVE = (
    _PRELUDE
    + r"""
return q_remove(ARGV[2], ARGV[3])
"""
)

# ARGV: P, name, correlation id, "1" to include closed. Ids whose status allows it.
BY_CORRELATION = (
    _PRELUDE
    + r"""
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', corr_key(ARGV[2], ARGV[3]))) do
  if ARGV[4] == '1' or redis.call('HGET', P .. ':wf:' .. id, 'st') == 'RUNNING' then
    out[#out + 1] = id
  end
end
return out
"""
)

SCRIPTS: dict[str, str] = {
    "commit": COMMIT,
    "delete": DELETE,
    "pop": POP,
    "push": PUSH,
    "remove": REMOVE,
    "by_correlation": BY_CORRELATION,
}
