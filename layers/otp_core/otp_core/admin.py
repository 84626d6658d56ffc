"""Operator use cases of the fraud guard (``/v1/admin/fraud/...``): blocks, the kill switch, the safe list.

Every input is checked here before anything is written: the app (omitted: ``default``; ``*`` blocks a bucket
for every app), the bucket's one spelling, a manual block's end, the safe list's entries. The store makes each
change one write; the functions see it within the 4 seconds their cached view lives.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from otp_core.errors import FieldError, InvalidRequestError, NotFoundError
from otp_core.fraud import Block, Bucket, Reason, parse_bucket, parse_safe_entry
from otp_core.observability import logger
from otp_core.ports import Clock, FraudStore
from otp_core.records import DEFAULT_APP, EVERY_APP

if TYPE_CHECKING:
    from otp_core.app_admin import AppDirectory

MAX_SAFE_ENTRIES = 1000
_APP_ID = re.compile(r"[a-z0-9-]{1,64}")
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z")


def app_of(value: str | None, *, every: bool, known: Callable[[str], bool]) -> str:
    """The app an operator request names: omitted is ``default``; ``*`` (every app) only where ``every``.

    Raises
    ------
    InvalidRequestError
        Not an app ID.
    NotFoundError
        No such app (``known`` says which are): a block of a misspelt app would look engaged and block nothing.
    """
    if value is None or value == "":
        return DEFAULT_APP
    if every and value == EVERY_APP:
        return value
    if not _APP_ID.fullmatch(value):
        allowed = "1-64 characters of [a-z0-9-]" + (', or "*" for every app' if every else "")
        raise InvalidRequestError("appId is not an app ID", errors=[FieldError("appId", f"must be {allowed}")])
    if not known(value):
        raise NotFoundError("no such app")
    return value


def bucket_of(value: str, field: str = "bucket") -> Bucket:
    try:
        return parse_bucket(value)
    except ValueError as exc:
        raise InvalidRequestError("not a bucket", errors=[FieldError(field, str(exc))]) from None


def _epoch(value: str) -> int:
    if not _RFC3339.fullmatch(value):
        raise ValueError
    return int(datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())


class FraudAdmin:
    """List, set and lift blocks; read and replace the safe list.

    Parameters
    ----------
    store:
        The fraud guard's blocks and safe lists.
    clock:
        Source of the current time.
    apps:
        Which apps exist (blocks and safe lists name one).
    """

    def __init__(self, store: FraudStore, clock: Clock, apps: AppDirectory) -> None:
        self._store = store
        self._clock = clock
        self._apps = apps

    def app_of(self, value: str | None, *, every: bool) -> str:
        """The app a request names (see :func:`app_of`)."""
        return app_of(value, every=every, known=self._apps.exists)

    def blocks(self, app_id: str) -> list[Block]:
        """Blocks in force for the app (its own and every app's), oldest first."""
        return self._store.blocks(app_id, self._clock.now())

    def block(self, app_id: str, bucket: str, until: str | None) -> Block:
        """A manual block of ``bucket``, until ``until`` (RFC 3339, in the future) or until it is deleted.

        Raises
        ------
        InvalidRequestError
            A bad bucket or end.
        """
        target = bucket_of(bucket)
        now = self._clock.now()
        end = None
        if until is not None:
            try:
                end = _epoch(until)
            except ValueError:
                raise InvalidRequestError(
                    "until is not a time", errors=[FieldError("until", "must be an RFC 3339 UTC time")]
                ) from None
            if end <= now:
                raise InvalidRequestError("until has passed", errors=[FieldError("until", "must be in the future")])
        block = self._store.put_block(Block(app_id, target, Reason.MANUAL, now, end))
        logger.warning("manual fraud block set", app_id=app_id, bucket=target.name, until=end)
        return block

    def unblock(self, app_id: str, bucket: str) -> None:
        """Lift the app's block of ``bucket``; its counts and its doubling start afresh.

        Raises
        ------
        InvalidRequestError
            Not a bucket.
        NotFoundError
            The bucket is not blocked for this app.
        """
        target = bucket_of(bucket)
        if not self._store.delete_block(app_id, target, self._clock.now()):
            raise NotFoundError("this bucket is not blocked")
        logger.warning("fraud block lifted", app_id=app_id, bucket=target.name)

    def safe_list(self, app_id: str) -> tuple[str, ...]:
        return self._store.safe_list(app_id)

    def replace_safe_list(self, app_id: str, entries: list[str]) -> tuple[str, ...]:
        """Replace the app's safe list (numbers in canonical E.164, ``prefix:<4-14 digits>``), duplicates once.

        Raises
        ------
        InvalidRequestError
            An entry is neither, or the list is too long; every bad entry is named.
        """
        if len(entries) > MAX_SAFE_ENTRIES:
            raise InvalidRequestError(
                "the safe list is too long", errors=[FieldError("entries", f"at most {MAX_SAFE_ENTRIES} entries")]
            )
        errors = []
        clean: dict[str, None] = {}
        for index, entry in enumerate(entries):
            try:
                clean[parse_safe_entry(entry)] = None
            except ValueError as exc:
                errors.append(FieldError(f"entries[{index}]", str(exc)))
        if errors:
            raise InvalidRequestError("the safe list is not valid", errors=errors)
        saved = self._store.put_safe_list(app_id, tuple(clean))
        logger.warning("fraud safe list replaced", app_id=app_id, entries=len(saved))
        return saved
