"""The arithmetic of rate-limit leases (connectors/rate_limits.py), apart from Redis so it can be tested alone.

One ingress process holds at most one lease per key: `size` tokens counted in Redis at once, spent
here one a request until they run out or the lease's life ends, whichever comes first. Sizes follow
use: a key's first lease in a process is one token; a lease spent in full is followed by one twice
its size (up to the key's ceiling, `lease_ceiling`); a lease that expired with tokens left by one
the size of what it spent (at least one), so a quiet key leases about what it uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def lease_ceiling(amount: int, fraction: float, most: int) -> int:
    """The most tokens one lease of a limit of `amount` may hold: a share of it, capped, at least one.
    A small limit (5/second at the default 5 %) gets 1: every request counted in Redis, exactly."""
    return max(1, min(most, math.floor(amount * fraction)))


def lease_life_s(period_s: float, fraction: float) -> float:
    """How long a lease's tokens may be spent: a share of the limit's period, so a token is always
    spent long before Redis stops counting it (at the end of the period)."""
    return period_s * fraction


@dataclass
class Lease:
    """One process's lease for one key."""

    ceiling: int
    life_s: float
    size: int = 0
    left: int = 0
    expires_at: float = -math.inf
    #: After a refused lease, single exact hits until then (the key is near its limit).
    exact_until: float = -math.inf
    #: After a refused single token: refused here until then, when the oldest token Redis counts ages
    #: out (none can come free sooner: Redis never gives tokens back early).
    refused_until: float = -math.inf

    def take(self, now: float) -> bool:
        """Spend one leased token, if a live one is left."""
        if self.left > 0 and now < self.expires_at:
            self.left -= 1
            return True
        return False

    def exact(self, now: float) -> bool:
        """Whether every request is counted in Redis alone now (a small limit, or one near its limit)."""
        return self.ceiling == 1 or now < self.exact_until

    def next_size(self, now: float) -> int:
        """How many tokens to ask Redis for now (this request's one included)."""
        if self.exact(now):
            return 1
        if self.size == 0:
            return 1
        if self.left > 0:  # expired before it was spent: lease what it used
            return max(1, self.size - self.left)
        return min(self.ceiling, 2 * self.size)

    def granted(self, size: int, now: float) -> None:
        """Redis counted `size` tokens at `now`; this request spends one of them."""
        self.size, self.left, self.expires_at = size, size - 1, now + self.life_s

    def refused(self, size: int, now: float) -> None:
        """Redis refused a lease of `size`: the key is within `size` of its limit, so single hits for a while."""
        if size > 1:
            self.exact_until = now + self.life_s

    def unanswered(self, now: float) -> None:
        """Redis could not answer: single tokens for a lease's life, so requests do not queue behind one
        lease call each while it is away (each is admitted, counted as a cache error)."""
        self.exact_until = now + self.life_s

    def refused_for(self, seconds: float, now: float) -> int:
        """Redis refused even one token, and frees its oldest in `seconds`: refuse here until then.
        Returns the whole seconds to tell the client (`Retry-After`, at least 1)."""
        self.refused_until = now + seconds
        return max(1, math.ceil(seconds))

    def still_refused(self, now: float) -> int | None:
        """`Retry-After` for a request while the last refusal holds, or None once it has lapsed."""
        return max(1, math.ceil(self.refused_until - now)) if now < self.refused_until else None
