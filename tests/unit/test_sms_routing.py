"""Failover, routing, the send budget and the circuit breaker, over scripted senders (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from otp_core.errors import DeliveryFailedError, InvalidPhoneNumberError
from otp_core.ports import SmsSender
from otp_core.records import OutgoingSms, SentSms
from otp_core.sms.breaker import (
    Admission,
    CircuitBreaker,
    CircuitState,
    CircuitStatus,
    CircuitStore,
    admission,
    counted_failures,
    may_close,
    may_open,
    may_start_probe,
)
from otp_core.sms.routing import FailoverSender, country_of, parse_country_routes
from otp_core.sms.vendor import ProviderError, VendorConfig, VendorSender
from tests.fakes import FakeClock, MemoryCircuitStore

NZ = "+64211234567"
AU = "+61491570156"
US = "+14155552671"


def sms(to: str = US) -> OutgoingSms:
    return OutgoingSms(to=to, body="123456 is your code", sender_id=None, challenge_id="c-1")


Outcome = Exception | None


class Scripted(SmsSender):
    """Answers each send with the next scripted outcome (None = accepted); the last one repeats."""

    def __init__(self, name: str, *outcomes: Outcome) -> None:
        self.name = name
        self.outcomes = list(outcomes) or [None]
        self.sent: list[OutgoingSms] = []

    def send(self, sms: OutgoingSms) -> SentSms:
        self.sent.append(sms)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if outcome is not None:
            raise outcome
        return SentSms(provider=self.name, message_id=f"{self.name}-{len(self.sent)}")


def down(name: str, reason: str = "connect", *, ambiguous: bool = False) -> ProviderError:
    return ProviderError(name, reason, ambiguous=ambiguous)


def emitted(capsys: pytest.CaptureFixture[str]) -> list[tuple[str, dict[str, str]]]:
    """(metric name, dimensions) of every EMF document printed since the last call."""
    found: list[tuple[str, dict[str, str]]] = []
    for line in capsys.readouterr().out.splitlines():
        try:
            document: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        directives = document.get("_aws", {}).get("CloudWatchMetrics", [])
        for directive in directives:
            # Powertools adds "service" when POWERTOOLS_SERVICE_NAME is set, as it is in a stack.
            dimensions = {
                name: document[name] for group in directive["Dimensions"] for name in group if name != "service"
            }
            found.extend((metric["Name"], dimensions) for metric in directive["Metrics"])
    return found


def breaker(clock: FakeClock, store: CircuitStore | None = None, **overrides: int) -> CircuitBreaker:
    options = {"threshold": 2, "window_seconds": 60, "cooldown_seconds": 30, **overrides}
    return CircuitBreaker(store or MemoryCircuitStore(), clock, **options)


# ---------------------------------------------------------------------------------------------- failover


@pytest.mark.parametrize(
    "failure",
    [down("a", "connect"), down("a", "timeout", ambiguous=True), down("a", "http_5xx"), RuntimeError("adapter bug")],
    ids=["down", "slow", "5xx", "bug"],
)
def test_a_failing_first_provider_hands_the_same_message_to_the_second(
    failure: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a first provider that fails and a second that works
    first, second = Scripted("a", failure), Scripted("b")
    sender = FailoverSender({"a": first, "b": second}, default_route=("a", "b"))
    message = sms(NZ)

    # When sending
    sent = sender.send(message)

    # Then the second provider sent exactly the same message (the same code), in the send's second attempt
    assert sent == SentSms("b", "b-1", attempts=2)
    assert first.sent == [message]
    assert second.sent == [message]
    # And the metrics say so, per provider and country
    assert emitted(capsys) == [
        ("SmsFailed", {"provider": "a", "country": "NZ"}),
        ("SmsFailover", {"provider": "b", "country": "NZ"}),
        ("SmsSent", {"provider": "b", "country": "NZ"}),
    ]


def test_every_provider_failing_is_delivery_failed() -> None:
    first, second = Scripted("a", down("a")), Scripted("b", down("b", "http_5xx"))
    sender = FailoverSender({"a": first, "b": second}, default_route=("a", "b"))

    with pytest.raises(DeliveryFailedError) as caught:
        sender.send(sms())

    # A plain DeliveryFailedError (502, refunded by the service), after trying both
    assert type(caught.value) is DeliveryFailedError
    assert caught.value.status == 502
    assert (len(first.sent), len(second.sent)) == (1, 1)


def test_a_bad_number_stops_without_failover(capsys: pytest.CaptureFixture[str]) -> None:
    first = Scripted("a", InvalidPhoneNumberError("the SMS provider rejected this phone number"))
    second = Scripted("b")
    sender = FailoverSender({"a": first, "b": second}, default_route=("a", "b"))

    with pytest.raises(InvalidPhoneNumberError):
        sender.send(sms())

    assert second.sent == []
    assert emitted(capsys) == []


def test_country_routes_replace_the_default_order() -> None:
    # Given NZ routed to tnz then modica, AU to messagemedia, everything else to sns
    providers = {name: Scripted(name) for name in ("sns", "tnz", "modica", "messagemedia")}
    sender = FailoverSender(
        providers, default_route=("sns",), country_routes=parse_country_routes("NZ:tnz,modica;AU:messagemedia")
    )

    # Then each destination goes to its own route
    assert sender.send(sms(NZ)).provider == "tnz"
    assert sender.send(sms(AU)).provider == "messagemedia"
    assert sender.send(sms(US)).provider == "sns"
    assert sender.route_for(NZ) == ("NZ", ("tnz", "modica"))


def test_parse_country_routes_rejects_malformed_entries() -> None:
    assert parse_country_routes("") == {}
    assert parse_country_routes(" nz : tnz , modica ; ") == {"NZ": ("tnz", "modica")}
    for bad in ("NZ", "NZ:", "NZL:tnz", "NZ:tnz;NZ:modica", "NZ:Tnz!"):
        with pytest.raises(ValueError):
            parse_country_routes(bad)


def test_country_of_unknown_numbers() -> None:
    assert country_of(NZ) == "NZ"
    assert country_of("+999") == "ZZ"


def test_a_route_needs_senders_for_every_provider() -> None:
    with pytest.raises(ValueError):
        FailoverSender({"a": Scripted("a")}, default_route=("a",), country_routes={"NZ": ("b",)})


# ---------------------------------------------------------------------------------------------- timeouts


class TimedSender(VendorSender):
    """Records the timeout each attempt got and moves the fake monotonic clock by ``takes`` seconds."""

    name = "timed"
    default_base_url = "https://example.invalid"

    def __init__(self, now: list[float], takes: float, outcome: Outcome) -> None:
        super().__init__(VendorConfig(load_credentials=dict))
        self.now, self.takes, self.outcome = now, takes, outcome
        self.timeouts: list[float] = []

    def send_within(self, sms: OutgoingSms, timeout: float) -> SentSms:
        self.timeouts.append(timeout)
        self.now[0] += self.takes
        if self.outcome is not None:
            raise self.outcome
        return SentSms("timed", "t-1")


def test_each_attempt_gets_the_per_attempt_timeout_within_the_budget() -> None:
    # Given a 3 s per-attempt timeout, a 7 s budget and providers that each use up their whole timeout
    now = [100.0]
    slow = [TimedSender(now, 3.0, down("timed", "timeout", ambiguous=True)) for _ in range(3)]
    last = TimedSender(now, 0.1, None)
    providers: dict[str, SmsSender] = {"a": slow[0], "b": slow[1], "c": slow[2], "d": last}
    sender = FailoverSender(
        providers, default_route=("a", "b", "c", "d"), timeout=3.0, budget=7.0, monotonic=lambda: now[0]
    )

    # When sending
    with pytest.raises(DeliveryFailedError):
        sender.send(sms())

    # Then attempts got 3 s, 3 s, then the 1 s left, and the budget stopped the fourth
    assert [s.timeouts for s in slow] == [[3.0], [3.0], [1.0]]
    assert last.timeouts == []


# ---------------------------------------------------------------------------------------------- circuit


def test_the_circuit_opens_after_threshold_failures_and_skips_the_provider() -> None:
    # Given a breaker opening after 2 failures, and a first provider that is down
    clock = FakeClock(1_000_000)
    first, second = Scripted("a", down("a")), Scripted("b")
    sender = FailoverSender({"a": first, "b": second}, default_route=("a", "b"), breaker=breaker(clock))

    # When three sends go out
    for _ in range(3):
        assert sender.send(sms()).provider == "b"

    # Then the third skipped the first provider without calling it
    assert len(first.sent) == 2
    assert len(second.sent) == 3


def test_the_circuit_probes_once_after_the_cooldown_and_closes_on_success() -> None:
    clock = FakeClock(1_000_000)
    store = MemoryCircuitStore()
    first = Scripted("a", down("a"), down("a"), None)
    second = Scripted("b")
    sender = FailoverSender({"a": first, "b": second}, default_route=("a", "b"), breaker=breaker(clock, store))
    sender.send(sms())
    sender.send(sms())
    assert store.read("a").status is CircuitStatus.OPEN

    # Still inside the cool-down: skipped
    clock.advance(29)
    assert sender.send(sms()).provider == "b"
    assert len(first.sent) == 2

    # After the cool-down: one probe, which succeeds and closes the circuit
    clock.advance(1)
    assert sender.send(sms()).provider == "a"
    assert store.read("a") == CircuitState(status=CircuitStatus.CLOSED, window=store.read("a").window)
    assert sender.send(sms()).provider == "a"


def test_a_failed_probe_opens_the_circuit_for_another_cooldown() -> None:
    clock = FakeClock(1_000_000)
    store = MemoryCircuitStore()
    first, second = Scripted("a", down("a")), Scripted("b")
    sender = FailoverSender({"a": first, "b": second}, default_route=("a", "b"), breaker=breaker(clock, store))
    sender.send(sms())
    sender.send(sms())

    clock.advance(30)
    sender.send(sms())  # the probe, which fails

    state = store.read("a")
    assert state.status is CircuitStatus.OPEN
    assert state.open_until == clock.now() + 30
    assert len(first.sent) == 3


def test_only_one_instance_wins_the_probe() -> None:
    # Given an open circuit whose cool-down is over, shared by two instances
    clock = FakeClock(1_000_000)
    store = MemoryCircuitStore()
    store.states["a"] = CircuitState(status=CircuitStatus.OPEN, failures=2, open_until=clock.now())
    one, two = breaker(clock, store), breaker(clock, store)

    # When both ask, then exactly one probes
    permits = [one.acquire("a"), two.acquire("a")]
    assert [p is not None and p.probe for p in permits] == [True, False]


def test_a_stale_probe_can_be_taken_over() -> None:
    clock = FakeClock(1_000_000)
    store = MemoryCircuitStore()
    store.states["a"] = CircuitState(status=CircuitStatus.HALF_OPEN, probe_until=clock.now() + 30)
    assert breaker(clock, store).acquire("a") is None
    clock.advance(30)
    permit = breaker(clock, store).acquire("a")
    assert permit is not None and permit.probe


def test_failures_in_different_windows_do_not_add_up() -> None:
    clock = FakeClock(1_000_020)
    store = MemoryCircuitStore()
    cb = breaker(clock, store, threshold=2, window_seconds=60)
    permit = cb.acquire("a")
    assert permit is not None
    cb.failed(permit)
    clock.advance(60)
    cb.failed(permit)
    assert store.read("a").status is CircuitStatus.CLOSED
    assert store.read("a").failures == 1


def test_a_bad_number_counts_as_a_healthy_answer() -> None:
    clock = FakeClock(1_000_000)
    store = MemoryCircuitStore()
    first = Scripted("a", InvalidPhoneNumberError("bad"))
    sender = FailoverSender({"a": first, "b": Scripted("b")}, default_route=("a", "b"), breaker=breaker(clock, store))
    for _ in range(3):
        with pytest.raises(InvalidPhoneNumberError):
            sender.send(sms())
    assert store.read("a").failures == 0


class BrokenStore(MemoryCircuitStore):
    def read(self, provider: str) -> CircuitState:
        raise RuntimeError("table unavailable")

    def count_failure(self, provider: str, window: int, ttl: int) -> int:
        raise RuntimeError("table unavailable")


def test_a_broken_circuit_store_never_blocks_a_send() -> None:
    clock = FakeClock(1_000_000)
    first, second = Scripted("a", down("a")), Scripted("b")
    sender = FailoverSender({"a": first, "b": second}, default_route=("a", "b"), breaker=breaker(clock, BrokenStore()))
    for _ in range(3):
        assert sender.send(sms()).provider == "b"
    assert len(first.sent) == 3


def test_every_circuit_open_fails_fast_without_calls() -> None:
    clock = FakeClock(1_000_000)
    store = MemoryCircuitStore()
    for name in ("a", "b"):
        store.states[name] = CircuitState(status=CircuitStatus.OPEN, failures=5, open_until=clock.now() + 10)
    first, second = Scripted("a"), Scripted("b")
    sender = FailoverSender({"a": first, "b": second}, default_route=("a", "b"), breaker=breaker(clock, store))

    with pytest.raises(DeliveryFailedError):
        sender.send(sms())
    assert first.sent == second.sent == []


# ---------------------------------------------------------------------------------------------- refusals of the request


def refused(name: str, reason: str = "rejected_content") -> ProviderError:
    return ProviderError(name, reason)


@pytest.mark.parametrize(
    ("reason", "counts"),
    [
        ("rejected_content", False),
        ("rejected_destination", False),
        ("rejected", True),
        ("http_5xx", True),
        ("timeout", True),
        ("auth", True),
        ("config", True),
        ("throttled", True),
    ],
)
def test_only_refusals_of_the_request_are_kept_out_of_the_circuit(reason: str, counts: bool) -> None:
    assert ProviderError("a", reason).counts_against_circuit is counts


@pytest.mark.parametrize("reason", ["rejected_content", "rejected_destination"])
def test_refusals_of_the_request_fail_over_but_never_open_the_circuit(
    reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a breaker opening after 2 failures, and a first provider refusing every message's sender ID
    clock = FakeClock(1_000_000)
    store = MemoryCircuitStore()
    first, second = Scripted("a", refused("a", reason)), Scripted("b")
    sender = FailoverSender({"a": first, "b": second}, default_route=("a", "b"), breaker=breaker(clock, store))

    # When one caller sends ten such messages
    for _ in range(10):
        assert sender.send(sms(NZ)).provider == "b"

    # Then each failed over, the first provider was still asked every time, and its circuit has not moved
    assert len(first.sent) == 10
    assert store.read("a") == CircuitState()
    # And the metrics count refusals, not provider failures
    metrics_out = emitted(capsys)
    assert metrics_out.count(("SmsRejected", {"provider": "a", "country": "NZ"})) == 10
    assert [name for name, _ in metrics_out if name == "SmsFailed"] == []


def test_genuine_failures_still_open_the_circuit_between_refusals() -> None:
    # Given a threshold of 2 and a provider that is down, with a refusal of the request in between
    clock = FakeClock(1_000_000)
    store = MemoryCircuitStore()
    first = Scripted("a", down("a", "http_5xx"), refused("a"), refused("a"), down("a", "http_5xx"), None)
    sender = FailoverSender({"a": first, "b": Scripted("b")}, default_route=("a", "b"), breaker=breaker(clock, store))

    # When four sends go out
    for _ in range(4):
        sender.send(sms())

    # Then the refusals neither counted nor reset the count: the two 5xx opened the circuit
    assert store.read("a").status is CircuitStatus.OPEN
    assert store.read("a").failures == 2
    # And the next send skips the provider
    sender.send(sms())
    assert len(first.sent) == 4


def test_n_refusals_leave_the_circuit_closed_while_n_failures_open_it() -> None:
    # Given the same threshold (3) for two providers: one refusing content, one answering 5xx
    clock = FakeClock(1_000_000)
    store = MemoryCircuitStore()
    content, outage = Scripted("content", refused("content")), Scripted("outage", down("outage", "http_5xx"))
    cb = breaker(clock, store, threshold=3)
    refusing = FailoverSender({"content": content, "b": Scripted("b")}, default_route=("content", "b"), breaker=cb)
    failing = FailoverSender({"outage": outage, "b": Scripted("b")}, default_route=("outage", "b"), breaker=cb)

    # When each gets three sends
    for _ in range(3):
        refusing.send(sms())
        failing.send(sms())

    # Then only the outage opened its circuit
    assert store.read("content").status is CircuitStatus.CLOSED
    assert store.read("content").failures == 0
    assert store.read("outage").status is CircuitStatus.OPEN


def test_a_refusal_on_the_probe_is_a_healthy_answer_and_closes_the_circuit() -> None:
    # Given an open circuit whose cool-down is over
    clock = FakeClock(1_000_000)
    store = MemoryCircuitStore()
    store.states["a"] = CircuitState(status=CircuitStatus.OPEN, failures=2, open_until=clock.now())
    first = Scripted("a", refused("a"))
    sender = FailoverSender({"a": first, "b": Scripted("b")}, default_route=("a", "b"), breaker=breaker(clock, store))

    # When the probe's message is refused for its sender ID
    assert sender.send(sms()).provider == "b"

    # Then the provider answered properly, as for a bad number: the circuit closes
    assert len(first.sent) == 1
    assert store.read("a").status is CircuitStatus.CLOSED


def test_every_provider_refusing_the_request_is_delivery_failed() -> None:
    sender = FailoverSender(
        {"a": Scripted("a", refused("a")), "b": Scripted("b", refused("b"))}, default_route=("a", "b")
    )
    with pytest.raises(DeliveryFailedError) as caught:
        sender.send(sms())
    # A plain DeliveryFailedError (502, refunded by the service), the provider's reason only in the cause
    assert type(caught.value) is DeliveryFailedError
    assert caught.value.detail == "the SMS could not be sent; retry later"


# ---------------------------------------------------------------------------------------------- the breaker's rules


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (CircuitState(), Admission.TRY),
        (CircuitState(status=CircuitStatus.OPEN, open_until=101), Admission.SKIP),
        (CircuitState(status=CircuitStatus.OPEN, open_until=100), Admission.PROBE),
        (CircuitState(status=CircuitStatus.HALF_OPEN, probe_until=101), Admission.SKIP),
        (CircuitState(status=CircuitStatus.HALF_OPEN, probe_until=100), Admission.PROBE),
    ],
    ids=["closed", "open", "cooled-down", "probing", "probe-expired"],
)
def test_admission_at_100(state: CircuitState, expected: Admission) -> None:
    assert admission(state, 100) is expected
    # The store's write is conditioned on the same rule, so the decision and the write cannot disagree
    assert may_start_probe(state, 100) is (expected is Admission.PROBE)


def test_failures_count_in_their_window_and_a_newer_window_is_left_alone() -> None:
    assert counted_failures(CircuitState(), 10) == 1
    assert counted_failures(CircuitState(failures=2, window=10), 10) == 3
    assert counted_failures(CircuitState(failures=2, window=9), 10) == 1
    # A clock behind another instance's does not reset the live window
    assert counted_failures(CircuitState(failures=2, window=11), 10) is None


def test_opening_needs_the_expected_state_and_from_closed_the_threshold() -> None:
    assert not may_open(CircuitState(failures=1), CircuitStatus.CLOSED, 2)
    assert may_open(CircuitState(failures=2), CircuitStatus.CLOSED, 2)
    assert not may_open(CircuitState(status=CircuitStatus.OPEN, failures=9), CircuitStatus.CLOSED, 2)
    assert may_open(CircuitState(status=CircuitStatus.HALF_OPEN), CircuitStatus.HALF_OPEN, 2)
    assert may_close(CircuitState(status=CircuitStatus.HALF_OPEN))
    assert not may_close(CircuitState())
