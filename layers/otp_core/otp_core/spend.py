"""Spend guard: budgets of SMS parts per app (hour, day) and for the whole stack (day), as pure rules.

A budget counts the parts carriers bill (``otp_core.messages.sms_parts``) in fixed windows (the clock hour, the
UTC day), so ``Retry-After`` is the window's end. Every send of an app touches its budgets; a budget item
takes no more writes than its cap per window, so under :data:`SHARD_SIZE` parts a window one item holds it,
exactly, and a bigger budget is spread over up to :data:`BUDGET_SHARDS` items, each with its own share of the
cap: a send is charged to a shard with room for its parts (the write's condition is that shard's share), and is
refused only when no shard has room, so the total never passes the cap. A fifth of every budget is held for
challenges to users' enrolled numbers: other sends stop at four fifths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HOUR = 3_600
DAY = 86_400
BUDGET_SHARDS = 4
# Parts per window one budget item may take before the budget is spread over more items.
SHARD_SIZE = 10_000
STACK = "*"


@dataclass(frozen=True)
class Budget:
    """One budget: whose (an app ID, or :data:`STACK`), its window in seconds, its cap in parts."""

    scope: str
    window: int
    cap: int

    @property
    def shards(self) -> int:
        """Items the budget is spread over: one up to SHARD_SIZE parts, more for bigger budgets."""
        return min(BUDGET_SHARDS, max(1, self.cap // SHARD_SIZE))

    def bucket(self, now: int) -> int:
        return now // self.window

    def retry_after(self, now: int) -> int:
        return (self.bucket(now) + 1) * self.window - now


@dataclass(frozen=True)
class BudgetCharge:
    """One budget a send's ``parts`` are charged to; ``enrolled``: the send goes to a user's enrolled number
    (it may use the held fifth); ``start``: the shard tried first (spreads concurrent sends)."""

    budget: Budget
    parts: int
    enrolled: bool
    start: int


def budgets(app_id: str, per_hour: int, per_day: int, stack_per_day: int) -> tuple[Budget, ...]:
    """The budgets a send of ``app_id`` is charged to (a cap of 0 is off)."""
    candidates = (Budget(app_id, HOUR, per_hour), Budget(app_id, DAY, per_day), Budget(STACK, DAY, stack_per_day))
    return tuple(budget for budget in candidates if budget.cap > 0)


def limit(cap: int, *, enrolled: bool) -> int:
    """The parts a send may take the budget to: all of it for an enrolled user's number, else four fifths."""
    return cap if enrolled else cap - cap // 5


def shares(total: int, shards: int) -> list[int]:
    """``total`` split over the shards as evenly as integers allow (the shares sum to ``total``)."""
    base, extra = divmod(total, shards)
    return [base + (1 if shard < extra else 0) for shard in range(shards)]


def pick_shard(spent: Sequence[int], budget: Budget, parts: int, *, enrolled: bool, start: int) -> int | None:
    """A shard whose share still has room for ``parts``, trying from ``start`` round the shards, or None.

    ``spent`` holds the parts of each of the budget's shards as read.
    """
    room = shares(limit(budget.cap, enrolled=enrolled), len(spent))
    for offset in range(len(spent)):
        shard = (start + offset) % len(spent)
        if spent[shard] + parts <= room[shard]:
            return shard
    return None


def share_of(budget: Budget, shard: int, *, enrolled: bool) -> int:
    """The most a shard may hold after a send (its share of the send's limit): the write's condition."""
    return shares(limit(budget.cap, enrolled=enrolled), budget.shards)[shard]
