"""Pure helpers of the benchmark: statistics, ``-X importtime`` parsing, AWS call classification, targets."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

# ------------------------------------------------------------------------------------------ statistics


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values, so a missing measurement shows instead of failing the report."""
    return statistics.median(values) if values else float("nan")


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``, NaN when the baseline is zero or missing."""
    return value / baseline if baseline > 0 else float("nan")


# -------------------------------------------------------------------------------------- import times

_IMPORT_LINE: Final = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)\s*$")


@dataclass(frozen=True)
class ImportTime:
    """One line of ``python -X importtime``: times in microseconds, ``level`` 0 for a top-level import."""

    module: str
    self_us: int
    cumulative_us: int
    level: int


def parse_importtime(stderr: str) -> list[ImportTime]:
    """The import lines of ``-X importtime`` output, in the order Python printed them (children first)."""
    found: list[ImportTime] = []
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            self_us, cumulative_us, indent, module = match.groups()
            found.append(ImportTime(module, int(self_us), int(cumulative_us), len(indent) // 2))
    return found


def direct_imports(lines: Sequence[ImportTime], module: str) -> list[ImportTime]:
    """The imports ``module`` (imported at top level) triggered itself, as printed before its own line."""
    children: list[ImportTime] = []
    for line in lines:
        if line.level == 1:
            children.append(line)
        elif line.level == 0:
            if line.module == module:
                return children
            children = []
    return []


def top(lines: Iterable[ImportTime], count: int = 5, *, by: str = "cumulative") -> list[ImportTime]:
    """The ``count`` slowest lines by ``cumulative`` or ``self`` time."""
    key = (lambda line: line.cumulative_us) if by == "cumulative" else (lambda line: line.self_us)
    return sorted(lines, key=key, reverse=True)[:count]


# --------------------------------------------------------------------------------------- AWS calls

DYNAMODB_READS: Final = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
DYNAMODB_WRITES: Final = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call: botocore's service name (``dynamodb``, ``secretsmanager``), operation, item count.

    ``items`` is the number of items of a transaction or batch (each costs capacity), else 1. ``key`` is the
    item kind of a single-item DynamoDB call: its partition key up to the first ``#`` (``CHL``, ``CNT``).
    """

    service: str
    operation: str
    items: int = 1
    key: str = ""

    def __str__(self) -> str:
        suffix = f"({self.items} items)" if self.operation.startswith(("Transact", "Batch")) else ""
        kind = f"[{self.key}]" if self.key else ""
        return f"{self.service}:{self.operation}{kind}{suffix}"


@dataclass(frozen=True)
class CallCounts:
    """AWS calls of one request, by the kinds the targets talk about."""

    reads: int = 0
    writes: int = 0
    write_items: int = 0
    sns_publishes: int = 0
    kms: int = 0
    secrets: int = 0
    other: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.reads + self.writes + self.sns_publishes + self.kms + self.secrets + len(self.other)

    def get(self, name: str) -> int:
        """A count by field name; ``total`` too."""
        value = getattr(self, name)
        if not isinstance(value, int):
            raise KeyError(name)
        return value


def count_calls(calls: Iterable[ApiCall]) -> CallCounts:
    """Classify calls: DynamoDB reads and writes (a transaction is one write), SNS publishes, KMS, secrets."""
    counts: Counter[str] = Counter()
    other: list[str] = []
    for call in calls:
        if call.service == "dynamodb" and call.operation in DYNAMODB_READS:
            counts["reads"] += 1
        elif call.service == "dynamodb" and call.operation in DYNAMODB_WRITES:
            counts["writes"] += 1
            counts["write_items"] += call.items
        elif call.service == "sns" and call.operation in ("Publish", "PublishBatch"):
            counts["sns_publishes"] += 1
        elif call.service == "kms":
            counts["kms"] += 1
        elif call.service == "secretsmanager":
            counts["secrets"] += 1
        else:
            other.append(str(call))
    return CallCounts(other=tuple(other), **counts)


def describe_calls(calls: Iterable[ApiCall]) -> str:
    """``dynamodb:GetItem, sns:Publish`` with repeats folded (``2x dynamodb:GetItem``); ``none`` if empty."""
    folded = Counter(str(call) for call in calls)
    if not folded:
        return "none"
    return ", ".join(name if n == 1 else f"{n}x {name}" for name, n in folded.items())


# ---------------------------------------------------------------------------------------- targets

_COUNT_LABELS: Final = {
    "reads": ("table read", "table reads"),
    "writes": ("table write", "table writes"),
    "sns_publishes": ("SMS publish", "SMS publishes"),
    "kms": ("KMS call", "KMS calls"),
    "secrets": ("secret read", "secret reads"),
    "total": ("AWS call", "AWS calls"),
}


@dataclass(frozen=True)
class Limit:
    """One bound on a count: ``exactly`` or ``at most`` ``value``."""

    count: str
    value: int
    exactly: bool = False

    def holds(self, counts: CallCounts) -> bool:
        actual = counts.get(self.count)
        return actual == self.value if self.exactly else actual <= self.value

    def __str__(self) -> str:
        bound = "" if self.exactly else "<= "
        singular, plural = _COUNT_LABELS.get(self.count, (self.count, self.count))
        return f"{bound}{self.value} {singular if self.value == 1 else plural}"


@dataclass(frozen=True)
class Target:
    """The calls a request may make; an empty target always holds."""

    limits: tuple[Limit, ...] = ()

    def misses(self, counts: CallCounts) -> list[Limit]:
        return [limit for limit in self.limits if not limit.holds(counts)]

    def __str__(self) -> str:
        return " + ".join(str(limit) for limit in self.limits) or "-"


# ------------------------------------------------------------------------------------ SMS bodies


def code_from_sms(message: str) -> str:
    """The one-time code of the default English SMS (``123456 is your ... code``): its first word."""
    word = message.split(maxsplit=1)[0] if message.strip() else ""
    if not word.isdigit():
        raise ValueError("the SMS does not start with a code; was a custom or non-English template used?")
    return word


def wrong_code(code: str) -> str:
    """A code of the same length that is certainly not ``code``."""
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


# ------------------------------------------------------------------------------------------- sizes

MB: Final = 1024 * 1024


@dataclass(frozen=True)
class PackageSize:
    """A deployment package: ``zipped`` and ``unzipped`` bytes and its file count."""

    name: str
    zipped: int
    unzipped: int
    files: int
    zipped_by_entry: dict[str, int] = field(default_factory=dict)

    def largest(self, count: int = 6) -> list[tuple[str, int]]:
        """The ``count`` top-level entries that take the most zipped bytes."""
        return sorted(self.zipped_by_entry.items(), key=lambda item: item[1], reverse=True)[:count]


def megabytes(size: int) -> float:
    return size / MB
