"""The Lua script of a Redis bump (`spa_version.stores.redis.store.RedisStore`).

One script increments the epoch, pushes the record, trims the history and publishes, so
no reader ever sees half of a bump (Redis docs, "Scripting with Lua": a script runs
atomically). docs/protocol.md, "Epochs", says how the epoch is chosen.
"""

from __future__ import annotations

__all__ = ["BUMP_SCRIPT"]

# KEYS: epoch, history. ARGV: record JSON without epoch/min_compatible, min
# ('' | 'current' | digits), history length, channel, floor (digits: the client's clock
# and what it knows was served, `Store.bump`).
# Returns {epoch, receivers, record}, or an error reply (nothing changed) for a bad
# min_compatible, a counter that is not 1-15 digits (written by hand, or a float), or an
# epoch past 15 digits. Lua numbers are doubles, exact below 2^53, so every number is
# checked as text first and written with '%d', never tostring (which gives '1e+14').
# The epoch is max(counter + 1, floor, this server's TIME in ms): docs/protocol.md. TIME
# goes through pcall: an ACL written before the script called it (docs/redis.md lists
# +time now) refuses it, and the bump then does without the server's clock.
# Every write is checked against the ACL before the first one (redis.acl_check_cmd, Redis
# 7.0+): Redis runs a script's commands one by one and keeps what ran when a later one is
# refused, so a refused PUBLISH would otherwise leave a release that no worker was told
# about. Redis 6 has no such check (docs/redis.md).
BUMP_SCRIPT = """
local max_epoch = 999999999999999
local stored = redis.call('GET', KEYS[1]) or '0'
if not string.match(stored, '^[0-9]+$') or #stored > 15 then
  return redis.error_reply('SPAVERSION-CORRUPT the epoch counter ' .. KEYS[1] .. ' holds ' ..
    string.format('%q', string.sub(stored, 1, 40)) .. ', not an epoch; nothing was changed')
end
if redis.acl_check_cmd then
  for _, cmd in ipairs({{'SET', KEYS[1], '1'}, {'LPUSH', KEYS[2], '{}'}, {'LTRIM', KEYS[2], '0', '0'},
                        {'PUBLISH', ARGV[4], '{}'}}) do
    if not redis.acl_check_cmd(unpack(cmd)) then
      return redis.error_reply('NOPERM this user has no permissions to run the ' .. string.lower(cmd[1]) ..
        ' command on ' .. cmd[2] .. ', which a bump needs; nothing was changed')
    end
  end
end
local server_clock = 0
local now = redis.pcall('TIME')
if type(now) == 'table' and now[2] then
  server_clock = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local epoch = math.max(tonumber(stored) + 1, tonumber(ARGV[5]), server_clock)
if epoch > max_epoch then
  return redis.error_reply('SPAVERSION-CORRUPT the next epoch would exceed 15 digits; nothing was changed')
end
epoch = string.format('%d', epoch)
local min = ARGV[2]
if min == '' then
  min = 'null'
elseif min == 'current' then
  min = epoch
elseif tonumber(min) > tonumber(epoch) then
  return redis.error_reply(
    'SPAVERSION min_compatible ' .. min .. ' is newer than the release being made (' .. epoch .. ')')
end
local record = '{"epoch":' .. epoch .. ',"min_compatible":' .. min .. ',' .. string.sub(ARGV[1], 2)
redis.call('SET', KEYS[1], epoch)
redis.call('LPUSH', KEYS[2], record)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
local receivers = redis.call('PUBLISH', ARGV[4], record)
return {epoch, receivers, record}
"""
