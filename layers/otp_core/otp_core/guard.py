"""The fraud guard and the spend guard as one collaborator of the sending use cases.

It turns the request's policy and the stack's thresholds into what a send's write must check
(:class:`~otp_core.fraud.FraudCharge`, :class:`~otp_core.spend.BudgetCharge`), consults the cached view of the
blocks in force, records a trip as a block, and reports what happened as logs and metrics (by country, never
by number). The counting and the caps themselves are conditions of the repository's one write.
"""

from __future__ import annotations

import dataclasses

from otp_core.errors import DestinationBlockedError
from otp_core.fraud import (
    HOUR,
    FraudCharge,
    Mode,
    Rules,
    Trip,
    country_shard,
    destination_buckets,
    is_safe,
    refusing_block,
)
from otp_core.observability import count, logger, metrics
from otp_core.policy import SendReceipt
from otp_core.ports import FraudStore
from otp_core.settings import Policy, Settings
from otp_core.spend import BudgetCharge, budgets


class SendGuard:
    """Fraud guard and spend guard of the sending use cases.

    Parameters
    ----------
    store:
        Blocks and safe lists (a cached view on the functions).
    thresholds:
        The stack's trip thresholds; the mode and the code lifetime come from each request's policy.
    stack_budget_per_day:
        The stack-wide daily budget of SMS parts (0 = off).
    """

    def __init__(self, store: FraudStore, thresholds: Rules, stack_budget_per_day: int) -> None:
        self._store = store
        self._thresholds = thresholds
        self._stack_budget_per_day = stack_budget_per_day

    @classmethod
    def from_settings(cls, store: FraudStore, settings: Settings) -> SendGuard:
        """The guard with the stack parameters' thresholds and stack budget."""
        thresholds = Rules(
            block_velocity=settings.fraud_block_velocity_per_hour,
            country_velocity=settings.fraud_country_velocity_per_hour,
            country_min_verified_percent=settings.fraud_country_min_verified_percent,
            verification_lag_seconds=settings.fraud_verification_lag_seconds,
            conversion_min_challenges=settings.fraud_conversion_min_challenges,
            conversion_min_percent=settings.fraud_conversion_min_percent,
            block_seconds=settings.fraud_block_hours * HOUR,
        )
        return cls(store, thresholds, settings.stack_sms_budget_per_day)

    def rules(self, policy: Policy) -> Rules:
        return dataclasses.replace(
            self._thresholds, mode=Mode(policy.fraud_guard_mode), code_ttl_seconds=policy.code_ttl_seconds
        )

    def new_challenge(
        self,
        policy: Policy,
        *,
        app_id: str,
        challenge_id: str,
        phone_number: str,
        region: str,
        now: int,
        enrolled: bool = False,
        resend: bool = False,
    ) -> FraudCharge:
        """How a send to ``phone_number`` meets the fraud guard (one cached read of the blocks).

        ``enrolled``: the owner's challenge to their enrolled (already verified) number. Like a safe-listed
        number it is counted but never judged or refused by a trip, so an attacker who trips a block cannot
        lock its enrolled users out of MFA; manual blocks still hold. ``resend``: a resend is no new challenge,
        but it is an SMS: a block in force refuses it, and so does a bucket that would trip now or whose SMS of
        the hour reached twice its velocity cap (:func:`otp_core.fraud.judge_resend`); it is counted as a
        resend.
        """
        rules = self.rules(policy)
        view = self._store.guard(app_id, now)
        guarded = rules.mode is not Mode.OFF
        return FraudCharge(
            app_id=app_id,
            buckets=destination_buckets(phone_number, region),
            shard=country_shard(challenge_id),
            rules=rules,
            count=guarded and not resend,
            judge=guarded and not enrolled and not is_safe(phone_number, view.safe_list),
            refused_by=refusing_block(view, phone_number, region, now, rules.mode, enrolled=enrolled),
            resend=resend and guarded,
            since=dict(view.tripped),
        )

    def budgets(
        self, policy: Policy, *, app_id: str, parts: int, enrolled: bool, challenge_id: str
    ) -> tuple[BudgetCharge, ...]:
        """The budgets a send of ``parts`` is charged to."""
        start = int(challenge_id[9:13], 16)  # the UUID's second group: where concurrent sends start
        return tuple(
            BudgetCharge(budget, parts, enrolled, start)
            for budget in budgets(
                app_id, policy.sms_budget_per_hour, policy.sms_budget_per_day, self._stack_budget_per_day
            )
        )

    def refused(self, error: DestinationBlockedError, policy: Policy, *, app_id: str, region: str, now: int) -> None:
        """A send was refused by a block or by its own trip: record the trip as a block, count and log it."""
        trip = error.trip
        if isinstance(trip, Trip):
            block = self._store.record_trip(app_id, trip, now, self.rules(policy))
            count("SmsPumpingSuspected", region)
            logger.warning(
                "fraud guard tripped",
                bucket_level=trip.bucket.level,
                country=region,
                reason=trip.reason.value,
                sends=trip.sends,
                verified=trip.verified,
                blocked_until=block.until,
            )
        count("SmsBlocked", region)

    def observed(self, receipt: SendReceipt, *, region: str) -> None:
        """After a stored send: the trips ``monitor`` mode let through, and how full the budgets are."""
        for trip in receipt.suspected:
            count("SmsPumpingSuspected", region)
            logger.warning(
                "fraud guard would block (monitor mode)",
                bucket_level=trip.bucket.level,
                country=region,
                reason=trip.reason.value,
                sends=trip.sends,
                verified=trip.verified,
            )
        if receipt.budget_shards:
            metrics.add_metric(name="SmsBudgetUsedPercent", unit="Percent", value=receipt.budget_used_percent)
