"""Ticketing rules, table-driven: codes, booking limits, windows, price caps, device slots,
rate limiting, and the entry gate on a real SQLite store."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from webinar.accounts import hash_password
from webinar.rooms.roles import ROLE_CAPABILITIES, Capability, Role
from webinar.storage.store import Event, Store
from webinar.ticketing import Grant, Refusal, RefusalCode, SecondDevice, Ticketing, mailing, records
from webinar.ticketing.codes import (
    CODE_ALPHABET,
    CODE_BITS,
    format_code,
    new_code,
    normalize_code,
)
from webinar.ticketing.imports import parse_invitees
from webinar.ticketing.limiter import AttemptLimiter
from webinar.ticketing.records import EventAccess, RegistrationStatus
from webinar.ticketing.rules import (
    BookingLimits,
    BookingRefused,
    BookingRule,
    Window,
    check_booking,
    code_window,
    parse_price,
)
from webinar.ticketing.seats import Seats

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

# ------------------------------------------------------------------------------ codes


def test_codes_have_enough_entropy_and_no_look_alikes() -> None:
    assert CODE_BITS >= 50
    assert not set("0O1IL") & set(CODE_ALPHABET)
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == 12 and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert math.isclose(CODE_BITS, 12 * math.log2(31))


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("ABCD-EFGH-JKMN", "ABCDEFGHJKMN"),
        ("abcd efgh jkmn", "ABCDEFGHJKMN"),
        ("  abcdefghjkmn ", "ABCDEFGHJKMN"),
        ("ABCD-EFGH-JKM", None),  # too short
        ("ABCD-EFGH-JKMN2", None),  # too long
        ("ABCD-EFGH-JKM0", None),  # 0 is not in the alphabet
        ("ABCD-EFGH-JKMI", None),
        ("x" * 100, None),
    ],
)
def test_code_normalisation(typed: str, canonical: str | None) -> None:
    assert normalize_code(typed) == canonical


def test_code_display() -> None:
    assert format_code("ABCDEFGHJKMN") == "ABCD-EFGH-JKMN"


# ------------------------------------------------------------------------------ booking

LIMITS = BookingLimits()


@pytest.mark.parametrize(
    ("start", "active", "rule"),
    [
        (None, 0, None),  # a room open at once: only the count applies
        (None, 3, BookingRule.MAX_ACTIVE),
        (NOW + 10 * MIN - timedelta(seconds=1), 0, BookingRule.MIN_LEAD),
        (NOW + 10 * MIN, 0, None),
        (NOW + timedelta(days=30), 0, None),
        (NOW + timedelta(days=30, seconds=1), 0, BookingRule.MAX_LEAD),
        (NOW - MIN, 0, BookingRule.MIN_LEAD),
        (NOW + timedelta(days=1), 2, None),
        (NOW + timedelta(days=1), 3, BookingRule.MAX_ACTIVE),
    ],
)
def test_booking_rules(start: datetime | None, active: int, rule: BookingRule | None) -> None:
    if rule is None:
        check_booking(start, NOW, LIMITS, active_events=active)
        return
    with pytest.raises(BookingRefused) as refused:
        check_booking(start, NOW, LIMITS, active_events=active)
    assert refused.value.rule is rule
    assert str(refused.value)


def test_booking_rules_are_configurable_and_edits_keep_their_start() -> None:
    limits = BookingLimits(min_lead=timedelta(hours=2), max_active_events=1)
    with pytest.raises(BookingRefused, match="2 hours"):
        check_booking(NOW + MIN * 90, NOW, limits, active_events=0)
    # editing an event that started already: an unchanged start is fine, the count too
    check_booking(NOW - MIN, NOW, limits, active_events=5, editing=True, previous_start=NOW - MIN)
    check_booking(None, NOW, limits, active_events=5, editing=True, previous_start=None)
    with pytest.raises(BookingRefused) as refused:
        check_booking(NOW, NOW, limits, active_events=0, editing=True, previous_start=NOW - MIN)
    assert refused.value.rule is BookingRule.MIN_LEAD
    # a room without a start that gets one: the new start must keep the rules
    with pytest.raises(BookingRefused):
        check_booking(NOW + MIN, NOW, limits, active_events=0, editing=True, previous_start=None)


# ------------------------------------------------------------------------------ windows


@pytest.mark.parametrize(
    ("offset_seconds", "inside"),
    [
        (-(5 + 10) * 60 - 1, False),  # one second before the code opens
        (-(5 + 10) * 60, True),  # join window 5 min + 10 min early
        (0, True),
        (60 * 60 + 15 * 60 - 1, True),  # last second: 60 min + 15 min late
        (60 * 60 + 15 * 60, False),
    ],
)
def test_code_window_edges_to_the_second(offset_seconds: int, inside: bool) -> None:
    window = code_window(
        NOW, timedelta(minutes=60), timedelta(minutes=5), early=10 * MIN, late=15 * MIN
    )
    assert window.contains(NOW + timedelta(seconds=offset_seconds)) is inside


def test_code_window_across_a_dst_change_counts_real_time() -> None:
    # Europe/Berlin jumps from 02:00 to 03:00 on 2026-03-29: a 60-minute event starting at
    # 01:30 local ends at 03:30 local, one real hour later.
    start = datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    window = code_window(start, 60 * MIN, 0 * MIN, early=0 * MIN, late=0 * MIN)
    assert window.closes is not None
    assert window.closes - start == 60 * MIN
    assert window.closes.astimezone(ZoneInfo("Europe/Berlin")).hour == 3
    assert window.contains(start) and not window.contains(window.closes)


def test_event_without_a_start_has_an_open_window() -> None:
    window = code_window(None, 60 * MIN, 5 * MIN, early=MIN, late=MIN)
    assert window == Window(None, None) and window.contains(NOW)


# ------------------------------------------------------------------------------ prices


@pytest.mark.parametrize(
    ("price", "currency", "minor", "error"),
    [
        ("1000", "USD", 100000, None),
        ("1000.01", "USD", None, "at most 1000 USD"),
        ("4000", "pln", 400000, None),
        ("4000.50", "PLN", None, "at most 4000 PLN"),
        ("100000", "RUB", 10000000, None),
        ("1400", "SGD", 140000, None),
        ("1401", "SGD", None, "at most 1400"),
        ("33000", "THB", 3300000, None),
        ("19.90", "EUR", 1990, None),
        ("19.999", "EUR", None, "two decimals"),
        ("0", "EUR", None, "above 0"),
        ("-5", "EUR", None, "above 0"),
        ("ten", "EUR", None, "number"),
        ("10", "JPY", None, "not supported"),
    ],
)
def test_price_caps(price: str, currency: str, minor: int | None, error: str | None) -> None:
    if error is None:
        assert parse_price(price, currency) == minor
    else:
        with pytest.raises(ValueError, match=error):
            parse_price(price, currency)


# ------------------------------------------------------------------------------ seats


@dataclass
class FakeHolder:
    evicted: list[str] = field(default_factory=list)

    def evict(self, reason: str) -> None:
        self.evicted.append(reason)


def test_single_use_takeover_tells_the_first_device() -> None:
    seats = Seats(grace=60)
    first, second = FakeHolder(), FakeHolder()
    seats.claim("t", capacity=1, policy=SecondDevice.TAKEOVER, client_key="a", holder=first, now=0)
    seats.claim("t", capacity=1, policy=SecondDevice.TAKEOVER, client_key="b", holder=second, now=1)
    assert first.evicted == ["taken-over"] and second.evicted == []
    assert seats.in_use("t", 2) == 1


def test_single_use_refusal_and_rejoin_after_a_drop() -> None:
    seats = Seats(grace=60)
    first, second = FakeHolder(), FakeHolder()
    seat = seats.claim(
        "t", capacity=1, policy=SecondDevice.REFUSE, client_key="a", holder=first, now=0
    )
    with pytest.raises(Refusal) as refused:
        seats.claim(
            "t", capacity=1, policy=SecondDevice.REFUSE, client_key="b", holder=second, now=1
        )
    assert refused.value.code is RefusalCode.TICKET_IN_USE
    seats.release(seat, 2, dropped=True)
    # the dropped device's place is kept for it ...
    with pytest.raises(Refusal):
        seats.claim(
            "t", capacity=1, policy=SecondDevice.REFUSE, client_key="b", holder=second, now=30
        )
    # ... it always gets back in ...
    again = FakeHolder()
    seats.claim("t", capacity=1, policy=SecondDevice.REFUSE, client_key="a", holder=again, now=31)
    assert first.evicted == [] and again.evicted == []
    # ... and after the grace anyone may take a free place.
    seats.release(seats.holding("t", 31)[0], 32, dropped=True)
    seats.claim("t", capacity=1, policy=SecondDevice.REFUSE, client_key="b", holder=second, now=93)


def test_group_code_admits_up_to_its_capacity() -> None:
    seats = Seats()
    holders = [FakeHolder() for _ in range(4)]
    claimed = [
        seats.claim(
            "g", capacity=3, policy=SecondDevice.TAKEOVER, client_key=str(i), holder=h, now=0
        )
        for i, h in enumerate(holders[:3])
    ]
    with pytest.raises(Refusal) as refused:
        seats.claim(
            "g", capacity=3, policy=SecondDevice.TAKEOVER, client_key="3", holder=holders[3], now=0
        )
    assert refused.value.code is RefusalCode.GROUP_FULL
    seats.release(claimed[0], 1, dropped=False)
    seats.claim(
        "g", capacity=3, policy=SecondDevice.TAKEOVER, client_key="3", holder=holders[3], now=1
    )
    assert all(h.evicted == [] for h in holders)


# ------------------------------------------------------------------------------ limiter


def test_rate_limit_per_client_and_per_event() -> None:
    limiter = AttemptLimiter(per_client=3, per_event=5, window=60)
    for t in range(3):
        assert limiter.retry_after("1.2.3.4", "e", t) == 0
        limiter.failed("1.2.3.4", "e", t)
    assert limiter.retry_after("1.2.3.4", "e", 3) == 57
    assert limiter.retry_after("5.6.7.8", "e", 3) == 0
    limiter.failed("5.6.7.8", "e", 3)
    limiter.failed("5.6.7.8", "e", 4)
    # The event's limit is reached: it holds back whoever has failed before ...
    assert limiter.retry_after("5.6.7.8", "e", 5) == 55
    # ... but not someone who has not mistyped (a flood cannot lock everyone out) ...
    assert limiter.retry_after("9.9.9.9", "e", 5) == 0
    # ... until they fail once too; an unknown address counts as having failed.
    limiter.failed("9.9.9.9", "e", 5)
    assert limiter.retry_after("9.9.9.9", "e", 6) == 54
    assert limiter.retry_after(None, "e", 6) == 54
    assert limiter.retry_after("9.9.9.9", "other", 6) == 0
    assert limiter.retry_after("1.2.3.4", "e", 61) == 0  # the failures aged out


# ------------------------------------------------------------------------------ the gate


@dataclass
class Clock:
    now: datetime = NOW
    tick: float = 0.0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "data") as s:
        yield s


def gate(store: Store, clock: Clock) -> Ticketing:
    return Ticketing(store, clock=clock, monotonic=lambda: clock.tick)


async def set_access(store: Store, access: EventAccess) -> None:
    await store.run(lambda core: records.put_access(core.connection, access))


async def admit(
    ticketing: Ticketing, event: Event, credential: str | None, client_key: str = "c1"
) -> object:
    return await ticketing.admit(
        event, credential, client="10.0.0.1", client_key=client_key, holder=FakeHolder()
    )


async def refused(
    ticketing: Ticketing, event: Event, credential: str | None, client_key: str = "c1"
) -> Refusal:
    with pytest.raises(Refusal) as info:
        await admit(ticketing, event, credential, client_key)
    return info.value


async def test_keys_work_on_every_access_type(store: Store) -> None:
    ticketing = gate(store, Clock())
    for access_type in ("open", "password", "token", "paid"):
        event = await store.create_event("E", NOW + MIN * 60, access_type=access_type)
        host = await ticketing.admit(
            event, event.host_key, client=None, client_key="h", holder=FakeHolder()
        )
        presenter = await ticketing.admit(
            event, event.presenter_key, client=None, client_key="p", holder=FakeHolder()
        )
        assert host.role is Role.HOST and Capability.END_FOR_ALL in host.capabilities
        assert presenter.role is Role.PRESENTER and presenter.expires_at is None


async def test_open_event(store: Store) -> None:
    ticketing = gate(store, Clock())
    event = await store.create_event("E", None)
    grant = await ticketing.admit(event, None, client=None, client_key="x", holder=FakeHolder())
    assert grant.role is Role.ATTENDEE
    assert grant.capabilities == ROLE_CAPABILITIES[Role.ATTENDEE]
    assert Capability.PUBLISH_VIDEO not in grant.capabilities
    assert (await refused(ticketing, event, "nope")).code is RefusalCode.BAD_CREDENTIAL


async def test_password_event(store: Store) -> None:
    clock = Clock()
    ticketing = gate(store, clock)
    event = await store.create_event("E", NOW + MIN * 30, access_type="password")
    await set_access(
        store,
        EventAccess(
            event.event_id,
            attendee_password_hash=hash_password("attend-2026", n=2**10),
            presenter_password_hash=hash_password("present-2026", n=2**10),
        ),
    )
    assert (await refused(ticketing, event, None)).code is RefusalCode.CREDENTIAL_REQUIRED
    assert (await refused(ticketing, event, "attend-2025")).code is RefusalCode.BAD_CREDENTIAL
    attendee = await ticketing.admit(
        event, "attend-2026", client=None, client_key="a", holder=FakeHolder()
    )
    presenter = await ticketing.admit(
        event, "present-2026", client=None, client_key="b", holder=FakeHolder()
    )
    assert attendee.role is Role.ATTENDEE and presenter.role is Role.PRESENTER
    assert attendee.expires_at == NOW + MIN * 30 + timedelta(days=14)
    clock.now = NOW + MIN * 30 + timedelta(days=14)
    assert (await refused(ticketing, event, "attend-2026")).code is RefusalCode.BOOKING_EXPIRED


async def test_token_event(store: Store) -> None:
    ticketing = gate(store, Clock())
    event = await store.create_event("E", NOW + MIN * 30, access_type="token")
    other = await store.create_event("F", NOW + MIN * 30, access_type="token")
    ada = await store.run(
        lambda core: records.add_invitee(
            core.connection, event.event_id, "Ada L", "ada@example.org"
        )
    )
    grant = await ticketing.admit(
        event, ada.token, client=None, client_key="a", holder=FakeHolder()
    )
    assert grant.role is Role.ATTENDEE and grant.name == "Ada L"
    assert grant.invitee_id == ada.invitee_id
    assert (await refused(ticketing, other, ada.token)).code is RefusalCode.BAD_CREDENTIAL
    assert (await refused(ticketing, event, None)).code is RefusalCode.CREDENTIAL_REQUIRED
    assert (
        # one character changed (a token ending in "x" already must not stay the same)
        await refused(ticketing, event, ada.token[:-1] + ("y" if ada.token.endswith("x") else "x"))
    ).code is RefusalCode.BAD_CREDENTIAL
    await store.run(lambda core: records.revoke_invitee(core.connection, ada.invitee_id))
    assert (await refused(ticketing, event, ada.token, "z")).code is RefusalCode.REVOKED


async def test_token_second_device_refused_when_the_event_says_so(store: Store) -> None:
    ticketing = gate(store, Clock())
    event = await store.create_event("E", NOW + MIN * 30, access_type="token")
    await set_access(store, EventAccess(event.event_id, second_device=SecondDevice.REFUSE))
    ada = await store.run(
        lambda core: records.add_invitee(core.connection, event.event_id, "Ada", "ada@example.org")
    )
    grant = await admit(ticketing, event, ada.token, "laptop")
    assert (await refused(ticketing, event, ada.token, "phone")).code is RefusalCode.TICKET_IN_USE
    # a second live connection saying it is the same device is another device too
    assert (await refused(ticketing, event, ada.token, "laptop")).code is RefusalCode.TICKET_IN_USE
    assert isinstance(grant, Grant)
    ticketing.release(grant, dropped=True)
    await admit(ticketing, event, ada.token, "laptop")  # the same device, back after a drop


async def paid_event(store: Store, seats: int = 1) -> tuple[Event, records.Registration]:
    event = await store.create_event(
        "Paid", NOW + MIN * 60, access_type="paid", duration_minutes=60, join_window_minutes=5
    )
    await set_access(store, EventAccess(event.event_id, price_minor=2500, currency="EUR"))
    reg = await store.run(
        lambda core: records.add_registration(
            core.connection,
            event.event_id,
            first_name="Grace",
            last_name="Hopper",
            email="grace@example.org",
            seats=seats,
            amount_minor=2500 * seats,
            currency="EUR",
            provider=records.PaymentProvider.MANUAL,
            capacity=None,
        )
    )
    return event, reg


async def test_paid_code_lifecycle(store: Store) -> None:
    clock = Clock(now=NOW + MIN * 50)
    ticketing = gate(store, clock)
    event, reg = await paid_event(store)
    assert reg.status is RegistrationStatus.PENDING and reg.code is None
    confirmed = await store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code is not None
    code = confirmed.code
    assert (await refused(ticketing, event, None)).code is RefusalCode.CREDENTIAL_REQUIRED
    assert (await refused(ticketing, event, "AAAA-BBBB-CCCC")).code is RefusalCode.BAD_CREDENTIAL
    grant = await ticketing.admit(
        event, format_code(code).lower(), client=None, client_key="a", holder=FakeHolder()
    )
    assert grant.role is Role.ATTENDEE and grant.name == "Grace Hopper"
    assert grant.expires_at == NOW + MIN * (60 + 60 + 15)
    checked = await store.run(
        lambda core: records.get_registration(core.connection, reg.registration_id)
    )
    assert checked is not None and checked.checked_in_at == NOW + MIN * 50
    # the first entry is the check-in; later ones do not move it
    clock.now = NOW + MIN * 70
    ticketing.release(grant, dropped=False)
    await ticketing.admit(event, code, client=None, client_key="a", holder=FakeHolder())
    again = await store.run(
        lambda core: records.get_registration(core.connection, reg.registration_id)
    )
    assert again is not None and again.checked_in_at == NOW + MIN * 50


@pytest.mark.parametrize(
    ("minutes", "ok"),
    [(60 - 15, True), (60 - 15 - 1, False), (60 + 60 + 15 - 1, True), (60 + 60 + 15, False)],
)
async def test_paid_code_window(store: Store, minutes: int, ok: bool) -> None:
    clock = Clock(now=NOW + MIN * minutes)
    ticketing = gate(store, clock)
    event, reg = await paid_event(store)
    confirmed = await store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code is not None
    if ok:
        await admit(ticketing, event, confirmed.code)
    else:
        refusal = await refused(ticketing, event, confirmed.code)
        assert refusal.code is RefusalCode.OUTSIDE_WINDOW
        assert refusal.opens == NOW + MIN * 45 and refusal.closes == NOW + MIN * 135
        assert "12:45 to 14:15 UTC" in refusal.message


async def test_pending_rejected_and_cancelled_codes_admit_nobody(store: Store) -> None:
    ticketing = gate(store, Clock(now=NOW + MIN * 55))
    event, reg = await paid_event(store)
    confirmed = await store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code
    await store.run(
        lambda core: records.end_registration(
            core.connection, reg.registration_id, RegistrationStatus.CANCELLED
        )
    )
    refusal = await refused(ticketing, event, confirmed.code)
    assert refusal.code is RefusalCode.NOT_CONFIRMED and "cancelled" in refusal.message


async def test_group_code_capacity_through_the_gate(store: Store) -> None:
    ticketing = gate(store, Clock(now=NOW + MIN * 55))
    event, reg = await paid_event(store, seats=2)
    confirmed = await store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code
    await admit(ticketing, event, confirmed.code, "one")
    await admit(ticketing, event, confirmed.code, "two")
    assert (await refused(ticketing, event, confirmed.code, "three")).code is RefusalCode.GROUP_FULL


async def test_wrong_attempts_are_rate_limited(store: Store) -> None:
    clock = Clock(now=NOW + MIN * 55)
    ticketing = gate(store, clock)
    event, _ = await paid_event(store)
    for _ in range(10):
        assert (
            await refused(ticketing, event, "AAAA-BBBB-CCCC")
        ).code is RefusalCode.BAD_CREDENTIAL
    refusal = await refused(ticketing, event, "AAAA-BBBB-CCCC")
    assert refusal.code is RefusalCode.RATE_LIMITED
    assert refusal.retry_after == 300 and "try again in 300 s" in refusal.message
    clock.tick = 301
    assert (await refused(ticketing, event, "AAAA-BBBB-CCCC")).code is RefusalCode.BAD_CREDENTIAL


def test_registration_questions() -> None:
    fields = records.parse_form_fields("Company\n  Job   title *\n\n")
    assert fields == (records.FormField("Company"), records.FormField("Job title", True))
    assert records.form_fields_text(fields) == "Company\nJob title *"
    with pytest.raises(ValueError, match="asked twice"):
        records.parse_form_fields("Company\ncompany")
    with pytest.raises(ValueError, match="at most 10"):
        records.parse_form_fields("\n".join(f"Q{i}" for i in range(11)))


# ------------------------------------------------------------------------------ webhooks

SECRET = "whsec_unit"
BODY = b'{"id": "evt_1"}'


def _header(t: int, body: bytes = BODY, secret: str = SECRET) -> str:
    import hashlib
    import hmac

    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (None, "unsigned"),
        ("", "unsigned"),
        ("t=1000", "needs t= and v1="),
        ("v1=abc", "needs t= and v1="),
        ("t=soon,v1=abc", "not a number"),
        ("t=1000,v1=" + "0" * 64, "signature mismatch"),
        (_header(1000, secret="whsec_other"), "signature mismatch"),
        (_header(1000, body=b"{}"), "signature mismatch"),
        (_header(1000 - 301), "stale"),  # replayed later than the tolerance
        (_header(1000 + 301), "stale"),
        (_header(1000 - 300), None),
        (_header(1000), None),
        ("t=1000,v1=" + "0" * 64 + "," + _header(1000).split(",")[1], None),  # rolled secrets
    ],
)
def test_stripe_signature(header: str | None, problem: str | None) -> None:
    from webinar.ticketing.payments import WebhookRefused, verify_stripe_signature

    if problem is None:
        verify_stripe_signature(BODY, header, SECRET, now=1000, tolerance=300)
        return
    with pytest.raises(WebhookRefused, match=problem):
        verify_stripe_signature(BODY, header, SECRET, now=1000, tolerance=300)


def test_stripe_events_we_ignore_and_refuse() -> None:
    from webinar.ticketing.payments import PaidCheckout, WebhookRefused, parse_stripe_event

    assert (
        parse_stripe_event(b'{"id": "evt_9", "type": "charge.refunded", "data": {"object": {}}}')
        == "evt_9"
    )
    unpaid = (
        b'{"id": "evt_8", "type": "checkout.session.completed",'
        b' "data": {"object": {"payment_status": "unpaid"}}}'
    )
    assert parse_stripe_event(unpaid) == "evt_8"
    with pytest.raises(WebhookRefused):
        parse_stripe_event(b"[]")
    paid = parse_stripe_event(
        b'{"id": "evt_7", "type": "checkout.session.completed", "data": {"object": {'
        b'"id": "cs_1", "payment_status": "paid", "client_reference_id": "4",'
        b' "amount_total": 2500, "currency": "eur"}}}'
    )
    assert paid == PaidCheckout("evt_7", "cs_1", 4, 2500, "EUR")


async def test_erasing_an_events_people_keeps_the_accounts_and_admits_nobody(
    store: Store,
) -> None:
    clock = Clock(now=NOW + MIN * 50)
    ticketing = gate(store, clock)
    event, reg = await paid_event(store)
    other, other_reg = await paid_event(store)
    confirmed = await store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code is not None
    await admit(ticketing, event, confirmed.code, "laptop")
    ada = await store.run(
        lambda core: records.add_invitee(core.connection, event.event_id, "Ada", "ada@example.org")
    )
    for registration_id, invitee_id in ((reg.registration_id, None), (None, ada.invitee_id)):
        planned = await store.run(
            lambda core, r=registration_id, i=invitee_id: records.plan_reminder(
                core.connection,
                event.event_id,
                NOW + timedelta(days=1),
                NOW,
                registration_id=r,
                invitee_id=i,
            )
        )
        assert planned
    # an update queued for the registrant and a CSV preview with people's addresses
    await store.run(
        lambda core: mailing.enqueue(
            core.connection,
            event.event_id,
            mailing.Kind.UPDATE,
            registration_id=reg.registration_id,
        )
    )
    await store.run(
        lambda core: mailing.save_import(
            core.connection, event.event_id, parse_invitees(b"Bo,bo@example.org\n")
        )
    )
    counts = await store.run(lambda core: records.erase_people(core.connection, event.event_id))
    assert counts == {"registrations": 1, "invitees": 1}
    left = await store.run(
        lambda core: core.connection.execute(
            "SELECT state, message_to FROM mail_outbox WHERE event_id = ?", (event.event_id,)
        ).fetchall()
    )
    assert [tuple(row) for row in left] == [("skipped", None)]  # nothing goes out to them
    previews = await store.run(
        lambda core: core.connection.execute("SELECT count(*) FROM invite_imports").fetchone()
    )
    assert previews[0] == 0
    (erased,) = await store.run(
        lambda core: records.list_registrations(core.connection, event.event_id)
    )
    assert (erased.first_name, erased.last_name, erased.email, erased.code) == ("", "", "", None)
    assert erased.answers == {}
    # the organiser's accounts stay: seats, status, amount
    assert erased.status is RegistrationStatus.CONFIRMED
    assert (erased.seats, erased.amount_minor, erased.currency) == (1, 2500, "EUR")
    assert (
        await store.run(lambda core: records.list_invitees(core.connection, event.event_id)) == []
    )
    reminders = await store.run(
        lambda core: records.list_reminders(core.connection, event.event_id)
    )
    assert [r.state for r in reminders] == ["skipped"]  # the invitee's went with the invitee
    # the code and the invitation admit nobody now
    refusal = await refused(ticketing, event, confirmed.code, "phone")
    assert refusal.code is RefusalCode.BAD_CREDENTIAL
    # another event's people are untouched, and erasing twice changes nothing more
    (kept,) = await store.run(
        lambda core: records.list_registrations(core.connection, other.event_id)
    )
    assert kept.email == "grace@example.org" and kept == other_reg
    again = await store.run(lambda core: records.erase_people(core.connection, event.event_id))
    assert again == {"registrations": 0, "invitees": 0}
