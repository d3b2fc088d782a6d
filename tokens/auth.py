"""Bearer authentication: header -> shape and checksum -> HMAC -> one query -> principal.

Used by the API and by anything else that accepts bearer tokens. Every failure has a named
reason for the log and the tests; clients get one generic message per status.
"""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.utils import timezone

from orgs.principals import Principal
from policies.addresses import subscriber_of
from policies.rules import address_in, parse_network
from tokens import token_format, usage
from tokens.lookup import SecretRow, find_secret
from tokens.models import TokenScope, TokenStatus
from tokens.outage import Outage, redis_outage

logger = logging.getLogger("keyward.auth")

GENERIC_MESSAGE = "Invalid or missing API token."
ADDRESS_MESSAGE = "Requests with this token are not allowed from your address."
THROTTLED_MESSAGE = "Too many failed authentications from your address; try again later."

T = TypeVar("T")


class AuthenticationFailed(Exception):
    """Why a bearer token was refused. ``reason`` is for logs and tests, never for clients."""

    def __init__(self, reason: str, *, status: int = 401, retry_after: int | None = None) -> None:
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        super().__init__(reason)

    @property
    def message(self) -> str:
        if self.status == 403:
            return ADDRESS_MESSAGE
        if self.status == 429:
            return THROTTLED_MESSAGE
        return GENERIC_MESSAGE


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    wrote_usage: bool


class FailureCounter:
    """Failed bearer authentications per address, counted in the cache (Redis when configured,
    so every instance sees the same count) over a fixed window that starts with the first
    failure.

    A cache that raises never turns a request into an error: while it does not answer, this
    process counts on its own (as it does without Redis) and the outage is logged once
    (``tokens.outage``); the shared count resumes when the cache answers again.
    """

    def __init__(self, outage: Outage = redis_outage) -> None:
        self.outage = outage
        self.local = LocMemCache("keyward-auth-failures", {"OPTIONS": {"MAX_ENTRIES": 100_000}})

    @staticmethod
    def _keys(address: str | None) -> tuple[str, str]:
        key = f"keyward:auth-failures:{subscriber_of(address)}"
        return key, f"{key}:until"

    def _in_cache(self, operation: Callable[[BaseCache], T]) -> T:
        """Run ``operation`` on the shared cache, or on this process's own while it fails."""
        if self.outage.available():
            try:
                result = operation(cache)
            except Exception as error:  # any cache backend error: count in this process
                self.outage.failed(error)
            else:
                self.outage.answered()
                return result
        return operation(self.local)

    def retry_after(self, address: str | None, now: float) -> int | None:
        """Seconds until the address may fail again, or None when it is not throttled."""
        count_key, until_key = self._keys(address)
        values = self._in_cache(lambda store: store.get_many([count_key, until_key]))
        if values.get(count_key, 0) < settings.KEYWARD_AUTH_FAILURE_LIMIT:
            return None
        until = values.get(until_key) or now + settings.KEYWARD_AUTH_FAILURE_WINDOW_SECONDS
        return max(1, math.ceil(until - now))

    def count(self, address: str | None, now: float) -> None:
        count_key, until_key = self._keys(address)
        window = settings.KEYWARD_AUTH_FAILURE_WINDOW_SECONDS

        def add_one(store: BaseCache) -> None:
            if store.add(count_key, 1, timeout=window):
                store.set(until_key, now + window, timeout=window)
                return
            try:
                store.incr(count_key)
            except ValueError:  # expired between add and incr
                store.add(count_key, 1, timeout=window)
                store.set(until_key, now + window, timeout=window)

        self._in_cache(add_one)

    def clear(self) -> None:
        """Forget this process's own counts (the shared ones expire with their window)."""
        self.local.clear()


failures = FailureCounter()


def token_from_header(header: str | None) -> str:
    """Extract the token from ``Bearer <token>``; raise AuthenticationFailed otherwise."""
    if not header:
        raise AuthenticationFailed("missing")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationFailed("malformed")
    return value.strip()


def authenticate(
    header: str | None, address: str | None, *, now: datetime | None = None
) -> Authenticated:
    """Turn an Authorization header into a principal, or raise AuthenticationFailed.

    An address that failed too often gets 429 for every token that does not authenticate
    (a bad checksum without touching the database), while a valid token from it is served:
    one misconfigured script behind an office's NAT must not lock out everyone else there.
    """
    now = now or timezone.now()
    try:
        raw = token_from_header(header)
        try:
            token_format.parse(raw)
        except token_format.MalformedToken as error:
            raise AuthenticationFailed(
                "bad_checksum" if str(error) == "bad checksum" else "malformed"
            ) from None
        # One digest per pepper in use (one, but two while peppers rotate), by pepper id.
        digests = {
            pepper_id: token_format.digest(raw, pepper)
            for pepper_id, pepper in settings.KEYWARD_TOKEN_PEPPERS
        }
        found = find_secret(list(digests.values()))
        if found is None:
            raise AuthenticationFailed("unknown")
        secret = found.secret
        # The row must carry the digest made with its own pepper, compared in constant time.
        expected = digests.get(secret.pepper_id)
        if expected is None or not hmac.compare_digest(expected, secret.digest):
            raise AuthenticationFailed("unknown")
        principal = _check(found, raw, address, now)
    except AuthenticationFailed as failure:
        if failure.status == 401 and failure.reason != "missing":
            # Asked only when a token failed: a valid one is served whatever the address's
            # count, so its request never waits for the shared cache.
            retry_after = failures.retry_after(address, now.timestamp())
            if retry_after is not None:
                # Throttled: refused without counting, so the window ends when it said.
                logger.info(
                    "Bearer authentication refused: %s from %s (throttled)", failure.reason, address
                )
                raise AuthenticationFailed(
                    "throttled", status=429, retry_after=retry_after
                ) from None
            failures.count(address, now.timestamp())
        logger.info("Bearer authentication refused: %s from %s", failure.reason, address)
        raise
    wrote = usage.current().record(
        token=secret.token, secret_id=secret.pk, address=address, now=now
    )
    return Authenticated(principal=principal, wrote_usage=wrote)


def _check(found: SecretRow, raw: str, address: str | None, now: datetime) -> Principal:
    secret = found.secret
    token = secret.token
    if token_format.SCOPE_BY_PREFIX[raw[: token_format.PREFIX_LENGTH]] != token.scope:
        raise AuthenticationFailed("unknown")
    if not secret.is_valid(now):
        raise AuthenticationFailed("secret_ended")
    if token.status == TokenStatus.REVOKED:
        raise AuthenticationFailed("revoked")
    if token.is_expired(now):
        raise AuthenticationFailed("expired")
    if not token.user.is_active:
        raise AuthenticationFailed("user_inactive")
    policy = found.scope_policy
    if not policy.allowed:
        raise AuthenticationFailed("scope_disallowed")
    if policy.expiry_capped(token.created_at, now):
        # A shorter maximum lifetime counts from the policy change, before the change has
        # rewritten this token's expiry (policies/services/apply.py rewrites in batches).
        raise AuthenticationFailed("expired")
    owner_role = found.owner_role if token.scope == TokenScope.PERSONAL else None
    if token.scope == TokenScope.PERSONAL and owner_role is None:
        raise AuthenticationFailed("owner_not_member")
    if (
        policy.enforced_ip_filter_id is not None
        and token.ip_filter_id != policy.enforced_ip_filter_id
    ):
        # Applying a policy gives every token its enforced filter; anything else is refused.
        raise AuthenticationFailed("enforced_filter_missing", status=403)
    if address is None:
        if token.ip_filter_id is not None or token.allowed_addresses:
            raise AuthenticationFailed("address_unknown", status=403)
    else:
        if token.ip_filter is not None and not token.ip_filter.decide(address).allowed:
            raise AuthenticationFailed("ip_filter", status=403)
        if token.allowed_addresses and not address_in(
            [parse_network(entry) for entry in token.allowed_addresses], address
        ):
            raise AuthenticationFailed("allowed_addresses", status=403)
    return Principal(
        user=token.user,
        organization=token.organization,
        org_role=owner_role,
        token=token,
        address=address,
        owner_is_group_admin=found.owner_is_group_admin,
    )
