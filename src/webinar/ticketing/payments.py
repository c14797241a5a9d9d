"""Payment providers: *manual* (the organiser confirms by hand; the default) and Stripe
Checkout (hosted payment page; the webhook confirms).

A provider starts a payment for a pending registration; it never confirms one itself.
Stripe's webhook is verified with Stripe's signature scheme: the ``Stripe-Signature``
header carries ``t=<unix time>`` and one or more ``v1=<hex HMAC-SHA256>`` of
``"<t>.<raw body>"`` under the endpoint's signing secret. Unsigned, badly signed or stale
(replayed) requests are refused; each event ID is applied at most once (see
:func:`webinar.ticketing.records.apply_payment_once`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from webinar.formats import BadJson, parse_json

from .records import PaymentProvider, Registration

logger = logging.getLogger(__name__)

STRIPE_TIMEOUT_SECONDS = 20.0
MAX_WEBHOOK_BYTES = 256 * 1024


class PaymentError(Exception):
    """The provider could not start the payment."""


@dataclass(frozen=True, slots=True)
class Checkout:
    """Where to send the payer: the provider's page, and the provider's reference."""

    reference: str
    url: str


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    registration: Registration
    title: str
    unit_amount_minor: int
    currency: str
    success_url: str
    cancel_url: str


class Provider(Protocol):
    name: PaymentProvider

    async def start(self, request: CheckoutRequest) -> Checkout | None:
        """Begin paying; None when the organiser confirms by hand."""
        ...


class ManualProvider:
    name = PaymentProvider.MANUAL

    async def start(self, request: CheckoutRequest) -> Checkout | None:
        return None


class StripeCheckout:
    """Creates Stripe Checkout Sessions (``POST /v1/checkout/sessions``)."""

    name = PaymentProvider.STRIPE

    def __init__(self, secret_key: str, api_url: str = "https://api.stripe.com") -> None:
        self._secret_key = secret_key
        self._api_url = api_url.rstrip("/")

    @staticmethod
    def session_form(request: CheckoutRequest) -> dict[str, str]:
        reg = request.registration
        return {
            "mode": "payment",
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": str(reg.registration_id),
            "customer_email": reg.email,
            "metadata[registration_id]": str(reg.registration_id),
            "metadata[event_id]": reg.event_id,
            "line_items[0][quantity]": str(reg.seats),
            "line_items[0][price_data][currency]": request.currency.lower(),
            "line_items[0][price_data][unit_amount]": str(request.unit_amount_minor),
            "line_items[0][price_data][product_data][name]": request.title[:200],
        }

    async def start(self, request: CheckoutRequest) -> Checkout | None:
        form = self.session_form(request)
        timeout = aiohttp.ClientTimeout(total=STRIPE_TIMEOUT_SECONDS)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.post(
                    f"{self._api_url}/v1/checkout/sessions",
                    data=form,
                    headers={
                        "Authorization": f"Bearer {self._secret_key}",
                        "Idempotency-Key": f"registration-{request.registration.registration_id}",
                    },
                ) as response,
            ):
                body = await response.json(content_type=None)
                if response.status != 200:
                    message = (
                        body.get("error", {}).get("message", "") if isinstance(body, dict) else ""
                    )
                    raise PaymentError(
                        f"Stripe refused the checkout ({response.status}): {message}"
                    )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PaymentError(f"Stripe could not be reached: {exc}") from exc
        if not isinstance(body, dict) or not body.get("id") or not body.get("url"):
            raise PaymentError("Stripe answered without a checkout session")
        return Checkout(reference=str(body["id"]), url=str(body["url"]))


# ----------------------------------------------------------------------------- webhooks


class WebhookRefused(Exception):
    """A webhook we do not act on; ``reason`` is logged, the sender gets 400."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def stripe_signature(secret: str, timestamp: int, payload: bytes) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_stripe_signature(
    payload: bytes, header: str | None, secret: str, *, now: float, tolerance: float
) -> None:
    """Raise :class:`WebhookRefused` unless ``header`` signs ``payload`` recently enough."""
    if not header:
        raise WebhookRefused("unsigned: no Stripe-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookRefused("bad signature header: t is not a number") from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookRefused("bad signature header: needs t= and v1=")
    expected = stripe_signature(secret, timestamp, payload)
    # Check every v1 (Stripe sends several while a secret is being rolled).
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise WebhookRefused("signature mismatch")
    if abs(now - timestamp) > tolerance:
        raise WebhookRefused(f"stale signature ({int(now - timestamp)} s old): a replay?")


@dataclass(frozen=True, slots=True)
class PaidCheckout:
    """What a verified ``checkout.session.completed`` says was paid."""

    webhook_id: str
    session_id: str
    registration_id: int
    amount_total: int
    currency: str


@dataclass(frozen=True, slots=True)
class ExpiredCheckout:
    """``checkout.session.expired``: the payer never finished; the place is freed."""

    webhook_id: str
    session_id: str


#: Longest Stripe ID (event, checkout session) we keep; Stripe's are far shorter.
MAX_STRIPE_ID_CHARS = 255
#: Registration IDs are SQLite rowids.
_MAX_ROWID = 2**63 - 1


def _stripe_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_STRIPE_ID_CHARS:
        raise WebhookRefused(f"not a Stripe event: {what} must be a short string")
    return value


def _whole(value: Any, what: str, *, low: int, high: int, digits: bool = False) -> int:
    """A whole number from JSON; ``digits``: also as a string of digits (Stripe gives back the
    IDs we gave it as strings)."""
    if (
        digits
        and isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= 19
    ):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise WebhookRefused(f"checkout session with a bad {what}")
    return value


def parse_stripe_event(payload: bytes) -> PaidCheckout | ExpiredCheckout | str:
    """A paid or an expired checkout, or the ID of an event we ignore.

    The event's shape is checked before anything is read from it: an object with a string
    ``id`` and ``type`` and an object ``data.object``; anything else is :class:`WebhookRefused`
    (the sender gets 400, nothing changes)."""
    try:
        event: Any = parse_json(payload)
    except BadJson as exc:
        raise WebhookRefused(f"not a Stripe event: {exc}") from None
    if not isinstance(event, dict):
        raise WebhookRefused("not a Stripe event: not a JSON object")
    webhook_id = _stripe_id(event.get("id"), "id")
    kind = event.get("type")
    data = event.get("data")
    if not isinstance(kind, str) or not isinstance(data, dict):
        raise WebhookRefused("not a Stripe event: needs a type and a data object")
    obj = data.get("object")
    if not isinstance(obj, dict):
        raise WebhookRefused("not a Stripe event: data.object must be an object")
    if kind == "checkout.session.expired" and isinstance(obj.get("id"), str):
        return ExpiredCheckout(webhook_id, _stripe_id(obj["id"], "the session id"))
    if kind != "checkout.session.completed" or obj.get("payment_status") != "paid":
        return webhook_id
    currency = obj.get("currency")
    if not isinstance(currency, str) or not 0 < len(currency) <= 10:
        raise WebhookRefused("checkout session without reference, amount or currency")
    return PaidCheckout(
        webhook_id=webhook_id,
        session_id=_stripe_id(obj.get("id"), "the session id"),
        registration_id=_whole(
            obj.get("client_reference_id"), "reference", low=1, high=_MAX_ROWID, digits=True
        ),
        amount_total=_whole(obj.get("amount_total"), "amount", low=0, high=_MAX_ROWID),
        currency=currency.upper(),
    )


def check_paid_matches(paid: PaidCheckout, registration: Registration | None) -> Registration:
    """Refuse a payment that does not match what the registration owes."""
    if registration is None:
        raise WebhookRefused(f"no registration {paid.registration_id}")
    if registration.provider_ref != paid.session_id:
        raise WebhookRefused(
            f"session {paid.session_id} is not the checkout of registration"
            f" {registration.registration_id}"
        )
    if paid.amount_total != registration.amount_minor or paid.currency != registration.currency:
        raise WebhookRefused(
            f"amount mismatch: paid {paid.amount_total} {paid.currency}, owed"
            f" {registration.amount_minor} {registration.currency}"
        )
    return registration
