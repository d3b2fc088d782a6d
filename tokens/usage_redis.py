"""The usage buffer shared by every process through Redis (used when ``REDIS_URL`` is set).

Each request adds to its token's hash in Redis in one round trip; a Lua script decides in the
same step whether the token's last write is an interval old, and if so hands this request
everything gathered since, by whichever process. So the database sees one write per token per
interval across all instances, a process that dies loses nothing, and every instance's console
shows the requests of all of them.

When Redis does not answer, requests go on: uses are counted in this process's own buffer
(``UsageBuffer``) until Redis is back, and the outage is logged once (``tokens.outage``, shared
with the throttle, so a hung Redis costs one request one timeout per backoff, not every request).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import cast

import redis
from django.conf import settings

from tokens.models import ApiToken
from tokens.outage import Outage, redis_outage
from tokens.usage import Flusher, UsageBuffer, _Pending, _utc_day, write_entry, write_interval

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# Gathered uses wait at most this long in Redis when no process is left to flush them.
KEY_LIFETIME_SECONDS = 7 * 24 * 3600

# One hash per token: "w" (when the database was last written, microseconds since the epoch),
# "at"/"addr" (last use), "d:<day>" (count) and "s:<secret id>" ("<microseconds>|<address>").
# KEYS: the token's hash, the set of tokens with unwritten uses.
# ARGV: token id, now, interval, day field, address, secret field, last write known to the
# database ("" for never), key lifetime. Returns the hash's fields when this request writes.
RECORD = """
local key, pending = KEYS[1], KEYS[2]
redis.call('HINCRBY', key, ARGV[4], 1)
redis.call('HSET', key, 'at', ARGV[2], 'addr', ARGV[5], ARGV[6], ARGV[2] .. '|' .. ARGV[5])
local written = redis.call('HGET', key, 'w') or ARGV[7]
if written == '' or tonumber(ARGV[2]) - tonumber(written) >= tonumber(ARGV[3]) then
  local taken = redis.call('HGETALL', key)
  redis.call('DEL', key)
  redis.call('HSET', key, 'w', ARGV[2])
  redis.call('EXPIRE', key, ARGV[8])
  redis.call('SREM', pending, ARGV[1])
  return taken
end
redis.call('EXPIRE', key, ARGV[8])
redis.call('SADD', pending, ARGV[1])
return false
"""

# KEYS as above. ARGV: token id, now, minimum age of the last write (-1: any), key lifetime.
# Returns the hash's fields when the token has unwritten uses old enough to take.
TAKE = """
local key, pending = KEYS[1], KEYS[2]
local fields = redis.call('HGETALL', key)
local has_counts = false
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'd:' then has_counts = true break end
end
if not has_counts then
  redis.call('SREM', pending, ARGV[1])
  return false
end
local written = redis.call('HGET', key, 'w')
local older_than = tonumber(ARGV[3])
if older_than >= 0 and written and tonumber(ARGV[2]) - tonumber(written) < older_than then
  return false
end
local last_use = redis.call('HGET', key, 'at')
redis.call('DEL', key)
redis.call('HSET', key, 'w', last_use)
redis.call('EXPIRE', key, ARGV[4])
redis.call('SREM', pending, ARGV[1])
return fields
"""


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def _moment(micros: str | bytes) -> datetime:
    return EPOCH + int(micros) * MICROSECOND


class RedisUsageBuffer:
    """Uses gathered in Redis, shared by every process; this process's own ``UsageBuffer``
    takes them while Redis does not answer."""

    def __init__(
        self, url: str, *, namespace: str = "keyward", outage: Outage = redis_outage
    ) -> None:
        timeout = settings.KEYWARD_REDIS_TIMEOUT_SECONDS
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
        # The braces keep every key in one slot, so the scripts also run on Redis Cluster.
        self._prefix = f"{namespace}:{{usage}}:"
        self._record = self._redis.register_script(RECORD)
        self._take = self._redis.register_script(TAKE)
        self.local = UsageBuffer()  # while Redis does not answer
        self.outage = outage
        self._flusher = Flusher(self.flush)

    def _key(self, token_id: int) -> str:
        return f"{self._prefix}t:{token_id}"

    @property
    def _pending_key(self) -> str:
        return f"{self._prefix}pending"

    def _available(self) -> bool:
        return self.outage.available()

    def _failed(self, error: redis.RedisError) -> None:
        self.outage.failed(error)

    def record(
        self, *, token: ApiToken, secret_id: int, address: str | None, now: datetime
    ) -> bool:
        if not self._available():
            return self.local.record(token=token, secret_id=secret_id, address=address, now=now)
        try:
            taken = self._record(
                keys=[self._key(token.pk), self._pending_key],
                args=[
                    token.pk,
                    _micros(now),
                    _micros(EPOCH + write_interval()),
                    f"d:{_utc_day(now).isoformat()}",
                    address or "",
                    f"s:{secret_id}",
                    _micros(token.last_used_at) if token.last_used_at else "",
                    KEY_LIFETIME_SECONDS,
                ],
            )
        except redis.RedisError as error:
            self._failed(error)
            return self.local.record(token=token, secret_id=secret_id, address=address, now=now)
        self.outage.answered()
        self._flusher.ensure_running()
        if not taken:
            return False
        write_entry(token.pk, _entry(taken))
        return True

    def flush(self, *, older_than: timedelta | None = None, now: datetime | None = None) -> int:
        written = self.local.flush(older_than=older_than, now=now)
        if not self._available():
            return written
        now = now or datetime.now(UTC)
        minimum_age = -1 if older_than is None else older_than // MICROSECOND
        try:
            for token_id in self._redis.smembers(self._pending_key):
                taken = self._take(
                    keys=[self._key(int(token_id)), self._pending_key],
                    args=[token_id, _micros(now), minimum_age, KEY_LIFETIME_SECONDS],
                )
                if taken:
                    write_entry(int(token_id), _entry(taken))
                    written += 1
        except redis.RedisError as error:
            self._failed(error)
        return written

    def _pending_fields(self, token_id: int) -> dict[str, str]:
        if not self._available():
            return {}
        try:
            # The client decodes responses (decode_responses=True): keys and values are str.
            return cast(dict[str, str], self._redis.hgetall(self._key(token_id)))
        except redis.RedisError as error:
            self._failed(error)
            return {}

    def pending_counts(self, token_id: int) -> dict[date, int]:
        counts = self.local.pending_counts(token_id)
        for day, count in _entry(self._pending_fields(token_id)).counts.items():
            counts[day] = counts.get(day, 0) + count
        return counts

    def pending_secret_uses(self, token_id: int) -> dict[int, tuple[datetime, str | None]]:
        uses = self.local.pending_secret_uses(token_id)
        for secret_id, use in _entry(self._pending_fields(token_id)).secrets.items():
            if secret_id not in uses or use[0] > uses[secret_id][0]:
                uses[secret_id] = use
        return uses

    def pending_count(self) -> int:
        total = self.local.pending_count()
        if not self._available():
            return total
        try:
            token_ids = self._redis.smembers(self._pending_key)
            pipeline = self._redis.pipeline(transaction=False)
            for token_id in token_ids:
                pipeline.hgetall(self._key(int(token_id)))
            for fields in pipeline.execute():
                total += sum(_entry(fields).counts.values())
        except redis.RedisError as error:
            self._failed(error)
        return total

    def clear(self) -> None:
        self.local.clear()
        try:
            keys = list(self._redis.scan_iter(match=f"{self._prefix}*", count=1000))
            if keys:
                self._redis.delete(*keys)
        except redis.RedisError as error:
            self._failed(error)


def _entry(fields: dict[str, str] | list[str]) -> _Pending:
    """A token's gathered uses from its hash (a dict, or the flat list a script returns)."""
    if isinstance(fields, list):
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    entry = _Pending(written_at=None)
    if "at" in fields:
        entry.last_used_at = _moment(fields["at"])
        entry.last_used_address = fields.get("addr") or None
    for name, value in fields.items():
        if name.startswith("d:"):
            entry.counts[date.fromisoformat(name[2:])] = int(value)
        elif name.startswith("s:"):
            micros, _, address = value.partition("|")
            entry.secrets[int(name[2:])] = (_moment(micros), address or None)
    return entry
