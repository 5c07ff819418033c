"""Rate limits that hold across server processes: each key's token bucket kept in Redis.

``TokenBucket`` (memstrata.server.auth) keeps its buckets in the process, so three servers behind a load
balancer (or ``--workers 3``) let a key through at three times its limit. When the server's Memory keeps its
short-term tier in Redis (``--cache redis://…``), ``build_limiter`` returns a ``RedisTokenBucket`` on that
same client instead: one hash per caller holding its tokens and when they were counted, read, refilled and
taken by one Lua script, so a check is atomic and one round trip whichever process makes it. The clock is
Redis's own (``TIME``), so servers whose clocks disagree still share one refill rate.

Each bucket is one key carrying a hash tag (a digest of the caller), so the script runs on a Redis Cluster
too, and the key expires once an idle bucket would be full again: an absent key is a full bucket. When Redis
cannot be reached the check falls back to a bucket in this process (a warning is logged once per outage),
so an outage of the cache never turns requests away; the limit is per process until Redis answers again.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
import time
from typing import Any

from memstrata.server.auth import RateLimit, TokenBucket

log = logging.getLogger("memstrata.server")
RETRY_INTERVAL = 2.0  # while Redis is away, how often a check tries it again

# KEYS[1]: the bucket. ARGV: rate per second, burst, and "now" in seconds ("" = Redis's clock).
# Returns the seconds to wait as text ("0" when a token was taken): Lua numbers come back as integers.
_TAKE = """
if redis.replicate_commands then redis.replicate_commands() end
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local last = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return string.format('%.6f', wait)
"""


def bucket_key(prefix: str, caller: str) -> str:
    """The Redis key of ``caller``'s bucket; the hash tag is a digest, so braces in a caller id change nothing."""
    return f"{prefix}rl:{{{hashlib.sha256(caller.encode()).hexdigest()[:16]}}}{caller}"


class RedisTokenBucket:
    """``TokenBucket``'s contract (``limit``, ``take``) with the buckets in Redis, shared by every process
    that uses the same Redis and prefix."""

    shared = True

    def __init__(self, limit: RateLimit, client: Any, *, prefix: str = "memstrata:") -> None:
        import redis

        self.limit = limit
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_TAKE)
        self._local = TokenBucket(limit)
        self._unreachable = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._errors = redis.exceptions.RedisError
        self._down_since: float | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """True while checks are counted in this process because Redis is away."""
        return self._down_since is not None

    def take(self, caller: str, now: float | None = None) -> float:
        """Take one token from ``caller``'s shared bucket; 0.0 when allowed, else the seconds until one is.

        ``now`` (seconds) replaces Redis's clock, for tests; leave it out in real use."""
        if self._down_since is not None and time.monotonic() < self._next_try:
            return self._local.take(caller)
        rate, burst = self.limit.per_second, max(1, self.limit.burst)
        try:
            raw = self._script(keys=[bucket_key(self.prefix, caller)],
                               args=[repr(rate), burst, "" if now is None else repr(now)])
        except self._errors as exc:
            self._outage(exc)
            return self._local.take(caller)
        if self._down_since is not None:
            with self._lock:
                if self._down_since is not None:
                    log.warning("rate limiter: Redis is back after %.0f s; limits are shared again",
                                time.monotonic() - self._down_since)
                    self._down_since = None
        return float(raw.decode() if isinstance(raw, bytes) else raw)

    def _outage(self, exc: Exception) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                what = "cannot reach Redis" if isinstance(exc, self._unreachable) else "Redis failed"
                log.warning("rate limiter: %s (%s); counting requests in this process until it answers", what, exc)
            self._next_try = time.monotonic() + RETRY_INTERVAL


def redis_of(short_term: Any) -> tuple[Any, str] | None:
    """The Redis client and key prefix of a short-term tier kept in Redis; None for any other tier."""
    # Only a tier built by memstrata.backends.redis qualifies, and if that module was never imported no tier
    # can be one of its own: so no import (and no need for the redis extra) when there is no Redis.
    module = sys.modules.get("memstrata.backends.redis")
    if module is None or not isinstance(short_term, module.RedisShortTerm):
        return None
    return short_term.client, short_term.prefix


def build_limiter(limit: RateLimit | None, short_term: Any = None) -> TokenBucket | RedisTokenBucket | None:
    """The server's limiter: None when off, shared through Redis when ``short_term`` is a Redis tier, else
    one bucket per key in this process."""
    if limit is None or not limit.enabled:
        return None
    found = redis_of(short_term)
    if found is None:
        return TokenBucket(limit)
    client, prefix = found
    return RedisTokenBucket(limit, client, prefix=prefix)
