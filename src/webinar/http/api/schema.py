"""The API's request and response types, as msgspec Structs.

Handlers build these and the route wrapper encodes them; request bodies are decoded into
them (unknown fields refused). The OpenAPI description takes its schemas from the same types
(``msgspec.json.schema_components``), so the document says what the code sends and takes.
Times are ISO 8601 strings in UTC.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from webinar.recordings.sharing import LINK_MAX_DAYS

Time = Annotated[str, Meta(description="ISO 8601, UTC", examples=["2030-01-31T18:00:00Z"])]
EventId = Annotated[
    str, Meta(description="The 9-digit event ID as shown: 123-456-789", examples=["123-456-789"])
]
#: A deprecated field kept for one release (the OpenAPI schema marks it).
_DEPRECATED = {"deprecated": True}


def _deprecated(description: str) -> Meta:
    return Meta(description=description, extra_json_schema=_DEPRECATED)


# ----------------------------------------------------------------------------- common


class ErrorDetail(Struct):
    code: Annotated[str, Meta(description="For programs: what went wrong")]
    message: Annotated[str, Meta(description="For people, in the request's language")]


class Error(Struct):
    """Every error answer of /api/v1. Some codes add fields beside code and message (e.g.
    booking-rule's rule, insufficient-scope's scope and needed)."""

    error: ErrorDetail


class LegacyError(Struct):
    """The error envelope of the deprecated paths (unchanged for their last release)."""

    error: str
    message: str


class Deleted(Struct):
    deleted: str


class Queued(Struct):
    queued: bool


# ----------------------------------------------------------------------------- who calls


class Account(Struct):
    username: str
    role: Literal["admin", "organiser"]


class Me(Struct):
    """The token of the request."""

    token_id: Annotated[str | None, Meta(description="null for the configured admin.token")]
    name: str
    scope: Literal["read", "write", "admin"]
    account: Annotated[Account | None, Meta(description="null for the configured admin.token")]
    sees_all_events: bool


class Token(Struct):
    token_id: Annotated[str, Meta(examples=["tok_3f2a9c0e1b7d44aa"])]
    name: str
    scope: Literal["read", "write", "admin"]
    account: Account
    created_at: Time
    last_used_at: Time | None


class NewToken(Struct):
    token: Token
    secret: Annotated[
        str,
        Meta(description="Send as Authorization: Bearer <secret>; shown only in this answer"),
    ]


class TokenCreate(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    scope: Literal["read", "write", "admin"]
    user: (
        Annotated[str, Meta(description="The account's user name (default: the caller's own)")]
        | UnsetType
    ) = UNSET


class TokenPage(Struct):
    items: list[Token]
    next_cursor: str | None


# ----------------------------------------------------------------------------- events


class FormField(Struct, forbid_unknown_fields=True):
    label: str
    required: bool = False


class EventAccess(Struct):
    has_attendee_password: bool
    has_presenter_password: bool
    price: Annotated[str | None, Meta(examples=["19.90"])]
    currency: str | None
    capacity: int | None
    second_device: Literal["takeover", "refuse"]
    payment_provider: Literal["manual", "stripe"]
    form_fields: list[FormField]
    registration_required: Annotated[
        bool,
        Meta(
            description="People register first and enter by their personal link (paid"
            " events always have registration); an open event then admits only them"
        ),
    ] = False
    waiting_list: Annotated[
        bool, Meta(description="With every place taken, registrants wait in order")
    ] = False
    registration_redirect_url: Annotated[
        str | None, Meta(description="Where registrants go next; null: the thank-you page")
    ] = None
    privacy_text: Annotated[
        str, Meta(description="Shown with a consent checkbox on the registration form")
    ] = ""
    privacy_url: str | None = None


class EventLinks(Struct):
    attendee: str
    presenter: Annotated[str, Meta(description="Carries the presenter key: keep it private")]
    host: Annotated[str, Meta(description="Carries the host key: keep it private")]
    register: (
        Annotated[
            str,
            Meta(description="The registration page (paid events and events that require one)"),
        ]
        | UnsetType
    ) = UNSET


class Event(Struct):
    event_id: EventId
    title: str
    starts_at: Time | None
    timezone: str
    duration_minutes: int
    join_window_minutes: int
    access_type: Literal["open", "password", "token", "paid"]
    camera_limit: int
    language: Annotated[str | None, Meta(description="en, ru, cs, or null: each person's own")]
    agenda: str
    lobby_message: str
    thank_you_url: str | None
    external_url: Annotated[
        str | None,
        Meta(
            description="The external player's link as entered (YouTube, Vimeo, Zoom or an"
            " allowed host); shown only to admitted attendees, in the room"
        ),
    ]
    hls_mode: Annotated[
        Literal["off", "all", "overflow"],
        Meta(
            description="Who watches over HLS instead of WebRTC: nobody, every attendee, or"
            " the attendees beyond hls_overflow_after"
        ),
    ]
    hls_overflow_after: Annotated[
        int, Meta(description="With hls_mode overflow: attendees watching live before HLS")
    ]
    booking_ends_at: Time | None
    settings_changed_at: Time | None
    cancelled_at: Time | None
    access: EventAccess
    links: EventLinks
    reminder_minutes: Annotated[
        int, Meta(description="Reminders go out this long before the start; 0: none")
    ] = 60
    calendar_sequence: Annotated[
        int, Meta(description="The SEQUENCE of the event's calendar entry (.ics) now")
    ] = 0


_ACCESS_TYPE = Meta(extra_json_schema={"enum": ["open", "password", "token", "paid"]})


class EventFields(Struct, forbid_unknown_fields=True):
    """Every field is optional on PATCH; POST needs ``title`` (and a paid event a start)."""

    title: str | UnsetType = UNSET
    starts_at: (
        Annotated[
            str | None,
            Meta(
                description="With an offset, that instant; without one, local time in timezone",
                examples=["2030-05-04T09:00:00Z", "2030-05-04T11:00"],
            ),
        ]
        | UnsetType
    ) = UNSET
    timezone: Annotated[str, Meta(description="IANA name; default UTC")] | UnsetType = UNSET
    duration_minutes: Annotated[int, Meta(ge=1, le=1440)] | UnsetType = UNSET
    join_window_minutes: Annotated[int, Meta(ge=0, le=1440)] | UnsetType = UNSET
    access_type: Annotated[str, _ACCESS_TYPE] | UnsetType = UNSET
    camera_limit: Annotated[int, Meta(ge=1, le=7)] | UnsetType = UNSET
    language: (
        Annotated[str | None, Meta(extra_json_schema={"enum": ["en", "ru", "cs", None]})]
        | UnsetType
    ) = UNSET
    agenda: str | UnsetType = UNSET
    lobby_message: str | UnsetType = UNSET
    thank_you_url: str | UnsetType | None = UNSET
    external_url: (
        Annotated[
            str | None,
            Meta(
                description="A YouTube, Vimeo or Zoom link, or a player URL of a host the"
                " server allows; null or empty: none",
                examples=["https://www.youtube.com/watch?v=dQw4w9WgXcQ"],
            ),
        ]
        | UnsetType
    ) = UNSET
    hls_mode: (
        Annotated[str, Meta(extra_json_schema={"enum": ["off", "all", "overflow"]})] | UnsetType
    ) = UNSET
    hls_overflow_after: Annotated[int, Meta(ge=0, le=100_000)] | UnsetType = UNSET
    attendee_password: str | UnsetType | None = UNSET
    presenter_password: str | UnsetType | None = UNSET
    price: (
        Annotated[str | int | float | None, Meta(description='Decimal, e.g. "19.90"')] | UnsetType
    ) = UNSET
    currency: str | UnsetType | None = UNSET
    capacity: int | str | UnsetType | None = UNSET
    second_device: (
        Annotated[str | None, Meta(extra_json_schema={"enum": ["takeover", "refuse", None]})]
        | UnsetType
    ) = UNSET
    payment_provider: (
        Annotated[str | None, Meta(extra_json_schema={"enum": ["manual", "stripe", None]})]
        | UnsetType
    ) = UNSET
    form_fields: list[FormField] | UnsetType = UNSET
    registration_required: bool | UnsetType = UNSET
    waiting_list: bool | UnsetType = UNSET
    registration_redirect_url: (
        Annotated[str | None, Meta(description="http(s) URL; null or empty: the thank-you page")]
        | UnsetType
    ) = UNSET
    privacy_text: (
        Annotated[str | None, Meta(description="At most 2000 characters; null or empty: none")]
        | UnsetType
    ) = UNSET
    privacy_url: str | UnsetType | None = UNSET
    reminder_minutes: (
        Annotated[
            int,
            Meta(ge=0, le=10080, description="Minutes before the start (default 60); 0: none"),
        ]
        | UnsetType
    ) = UNSET


class EventPage(Struct):
    items: list[Event]
    next_cursor: str | None
    events: Annotated[list[Event], _deprecated("The same as items; removed in the next release")]


class Sent(Struct):
    sent: int


class Cancelled(Struct):
    cancelled: bool
    told: int


class Registration(Struct):
    registration_id: int
    first_name: str
    last_name: str
    email: str
    seats: int
    status: Literal["pending", "confirmed", "rejected", "cancelled", "waitlisted"]
    amount: Annotated[str, Meta(examples=["39.80"])]
    currency: str | None
    provider: Literal["manual", "stripe"]
    code: Annotated[str | None, Meta(description="The reservation code once confirmed")]
    created_at: Time | None
    confirmed_at: Time | None
    checked_in_at: Time | None
    answers: dict[str, str]
    consent: Annotated[
        str | None, Meta(description="The privacy text the person agreed to; null: none asked")
    ] = None


class RegistrationPage(Struct):
    items: list[Registration]
    next_cursor: str | None
    registrations: Annotated[
        list[Registration], _deprecated("The same as items; removed in the next release")
    ]


_DELIVERY = Literal["pending", "sending", "sent", "skipped", "failed"]


class Invitee(Struct):
    invitee_id: int
    name: str
    email: str
    status: Literal["active", "revoked"]
    sent_at: Time | None
    revoked_at: Time | None
    language: Annotated[
        str | None, Meta(description="Of their e-mails; null: the event's, else English")
    ] = None
    fields: Annotated[
        dict[str, str], Meta(description="The extra columns of the CSV they were imported from")
    ] = msgspec.field(default_factory=dict)
    delivery: Annotated[
        _DELIVERY | None,
        Meta(
            description="Where their latest invitation e-mail is: pending (queued), sending,"
            " sent, skipped, failed (after every retry)"
        ),
    ] = None


class InviteeCreate(Struct, forbid_unknown_fields=True):
    name: str
    email: str
    language: Annotated[str | None, Meta(extra_json_schema={"enum": ["en", "ru", "cs", None]})] = (
        None
    )


class ImportRow(Struct):
    line: Annotated[int, Meta(description="The line in the file")]
    name: str
    email: str
    language: str | None
    fields: dict[str, str]


class ImportProblem(Struct, omit_defaults=True):
    """A line that is not imported: ``code`` for programs, ``reason`` for people."""

    line: int
    code: Literal[
        "missing-email",
        "invalid-email",
        "missing-name",
        "name-too-long",
        "duplicate",
        "already-invited",
        "unknown-language",
        "field-too-long",
    ]
    reason: Annotated[str, Meta(description="Why, in the request's language")]
    text: Annotated[str, Meta(description="The line as it is in the file (at most 200 characters)")]
    email: str | UnsetType = UNSET
    first: Annotated[int, Meta(description="duplicate: the line it is on first")] | UnsetType = (
        UNSET
    )
    language: str | UnsetType = UNSET
    column: str | UnsetType = UNSET
    max: int | UnsetType = UNSET


class ImportPreview(Struct):
    """What sending a CSV import would do: every row it would invite and every line it
    would not, and why. Nothing is sent until ``POST …/send``."""

    import_id: Annotated[str, Meta(examples=["imp_0123456789abcdef"])]
    event_id: EventId
    file_name: str
    lines: Annotated[int, Meta(description="Lines with something on them (a header counts)")]
    extra_columns: list[str]
    to_invite: int
    invitees: list[ImportRow]
    problems: list[ImportProblem]
    created_at: Time
    sent_at: Time | None
    send: Annotated[str, Meta(description="Where to POST to send it")]


class ImportSent(Struct):
    invited: Annotated[int, Meta(description="Invitations queued (the outbox sends them)")]
    already_invited: Annotated[
        list[str], Meta(description="Addresses invited between the preview and the send")
    ]


class Outbox(Struct):
    """The event's queued e-mails (invitations, updates, cancellations): how many wait, how
    many failed after every retry, and every count by kind and state."""

    waiting: int
    failed: int
    outbox: dict[str, dict[str, int]]


class InviteePage(Struct):
    items: list[Invitee]
    next_cursor: str | None
    invitees: Annotated[
        list[Invitee], _deprecated("The same as items; removed in the next release")
    ]


# ----------------------------------------------------------------------------- interaction


class PollOptionSpec(Struct, forbid_unknown_fields=True):
    text: str
    image_id: Annotated[str | None, Meta(description="From POST .../images")] = None
    correct: Annotated[bool, Meta(description="A right answer (tests)")] = False


class PollQuestionSpec(Struct, forbid_unknown_fields=True):
    text: str
    kind: Literal["single", "multiple", "text"] = "single"
    options: list[PollOptionSpec] = msgspec.field(default_factory=list)
    accepted: Annotated[
        list[str], Meta(description="A test's text question: the answers counted right")
    ] = msgspec.field(default_factory=list)


class PollSpec(Struct, forbid_unknown_fields=True):
    """A poll or scored test (docs/protocol.md, poll-create, has the bounds)."""

    title: str
    questions: list[PollQuestionSpec]
    kind: Literal["poll", "test"] = "poll"


class PollOption(Struct):
    option_id: str
    text: str
    image_id: str | None
    correct: bool


class PollQuestion(Struct):
    question_id: str
    text: str
    kind: Literal["single", "multiple", "text"]
    accepted: list[str]
    options: list[PollOption]


class Poll(Struct):
    poll_id: str
    title: str
    kind: Literal["poll", "test"]
    state: Literal["draft", "open", "closed"]
    results_shown: bool
    questions: list[PollQuestion]


class PollPage(Struct):
    items: list[Poll]
    next_cursor: str | None


class CtaSpec(Struct, forbid_unknown_fields=True):
    message: Annotated[str, Meta(description="1-54 characters, one line")]
    button: Annotated[str, Meta(description="1-30 characters")]
    url: Annotated[str, Meta(description="http(s) with a host")]
    duration_seconds: Annotated[int | None, Meta(description="Empty or 5-3600")] = None


class PreparedCta(Struct):
    prepared_id: str
    message: str
    button: str
    url: str
    duration_seconds: int | None


class PreparedCtaPage(Struct):
    items: list[PreparedCta]
    next_cursor: str | None


class Image(Struct):
    image_id: Annotated[str, Meta(examples=["img_0123456789abcdef01234567"])]
    url: str
    content_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"]


Cell = str | int | float | bool | None
Row = dict[str, Cell]


class Interaction(Struct):
    """One object per row of each CSV export, keyed by its columns."""

    event_id: EventId
    chat: list[Row]
    questions: list[Row]
    polls: list[Row]
    scores: list[Row]
    cta: list[Row]


class EngagementDetails(Struct):
    sessions: list[Row]
    chat: list[Row]
    questions: list[Row]
    polls: list[Row]
    scores: list[Row]
    cta: list[Row]


class Engagement(Struct):
    """One row per person: attendance columns, then engagement columns (docs/api.md)."""

    event_id: EventId
    columns: list[str]
    attendees: list[Row]
    details: EngagementDetails


# ----------------------------------------------------------------------------- statistics


class PersonStats(Struct):
    person_key: str
    name: str
    email: str | None
    role: str
    first_join: Time
    last_leave: Annotated[Time | None, Meta(description="null while in the room")]
    sessions: int
    seconds: float
    browser: str
    os: str
    engagement: Annotated[Row, Meta(description="The engagement columns; absent: nothing")]
    device: Literal["desktop", "phone", "tablet", "other", "unknown"] = "unknown"
    model: Annotated[str, Meta(description="The phone's or tablet's model, if named")] = ""
    joined_late: Annotated[
        bool | None, Meta(description="First joined over 5 minutes after the start")
    ] = None
    left_early: Annotated[
        bool | None, Meta(description="Last left over 5 minutes before the end")
    ] = None


class RatingSummary(Struct):
    count: int
    average: Annotated[float | None, Meta(description="null: no rating yet")]
    distribution: Annotated[
        dict[str, int], Meta(description='How many gave each number of stars: {"1": 0, ...}')
    ]


class RatingItem(Struct):
    name: str
    email: str | None
    stars: Annotated[int, Meta(ge=1, le=5)]
    comment: str
    via: Literal["room", "email"]
    rated_at: Time


class RegistrantStats(Struct):
    """A registrant or invitee and what attendance and the ratings say of them."""

    kind: Literal["registration", "invitation"]
    name: str
    email: str
    status: str
    registered_at: Time
    attended: bool
    minutes: int
    first_join: Time | None
    last_leave: Time | None
    joined_late: bool | None
    left_early: bool | None
    device: str | None
    model: str | None
    browser: str | None
    os: str | None
    rating: int | None
    rating_comment: str | None


class OptionResult(Struct):
    text: str
    votes: int
    percent: int
    correct: bool


class QuestionResult(Struct):
    text: str
    kind: Literal["single", "multiple", "text"]
    answered: int
    right: Annotated[int | None, Meta(description="Tests: answered right; null: not scored")]
    options: list[OptionResult]
    texts: list[str]


class PollResult(Struct):
    poll_id: str
    title: str
    kind: Literal["poll", "test"]
    state: Literal["open", "closed"]
    answered: int
    questions: list[QuestionResult]


class CtaResult(Struct):
    cta_id: str
    message: str
    button: str
    url: str
    shown_at: Time
    closed_at: Time | None
    clicks: int
    people: int


class LeadItem(Struct):
    """An address given at the e-mail gate of a published recording of the event."""

    email: str
    first_viewed: Time
    links: int


class ConcurrencyStep(Struct, array_like=True):
    """``[time, people]``: from this time on, this many sessions were in the room."""

    at: Time
    sessions: int


class EventStats(Struct):
    event_id: EventId
    attendees: int
    participants: int
    peak_concurrency: int
    peak_at: Time | None
    average_seconds: float
    people: list[PersonStats]
    concurrency: list[ConcurrencyStep]
    rating: RatingSummary | None = None
    ratings: list[RatingItem] = []
    registrants: list[RegistrantStats] = []
    devices: Annotated[dict[str, int], Meta(description="Attendees per kind of device")] = {}
    browsers: Annotated[dict[str, int], Meta(description="Attendees per browser")] = {}
    poll_results: list[PollResult] = []
    cta_results: list[CtaResult] = []
    leads: list[LeadItem] = []


class Month(Struct):
    month: Annotated[str, Meta(examples=["2030-01"])]
    events: int
    attendees: int


class Monthly(Struct):
    months: list[Month]


# ----------------------------------------------------------------------------- recordings


class RecordedStream(Struct):
    slot: str
    kind: Literal["audio", "video"]
    codec: str
    frames: int
    first_ms: Annotated[int | None, Meta(description="Its first frame's time in the file")]
    last_ms: int | None


class RecordingFile(Struct):
    name: str
    feed: str
    label: str
    part: int
    offset: Annotated[float, Meta(description="Seconds into the recording of its time 0")]
    duration: float
    size: int
    streams: list[RecordedStream]
    error: Annotated[str | None, Meta(description="What went wrong writing it, if anything")]
    download: Annotated[str, Meta(description="Where the API serves it")]


class Recording(Struct):
    recording_id: str
    event_id: EventId
    started_at: Time
    ended_at: Time
    duration_seconds: float
    size_bytes: int
    files: list[RecordingFile]


class RecordingPage(Struct):
    items: list[Recording]
    next_cursor: str | None


class Trim(Struct, forbid_unknown_fields=True):
    start: Annotated[float, Meta(ge=0, description="Seconds")] = 0.0
    end: Annotated[float | None, Meta(description="Seconds; null: to the end")] = None


class Publication(Struct):
    publication_id: str
    recording_id: str
    link: Annotated[str, Meta(description="The page that plays it (a lead form if asked)")]
    expires_at: Time
    expired: bool
    require_email: bool
    viewers: int
    sent: Annotated[int, Meta(description="E-mails sent with the link (on creation)")]


class PublicationCreate(Struct, forbid_unknown_fields=True):
    days: Annotated[int, Meta(ge=1, le=LINK_MAX_DAYS, description="How long the link works")] = 14
    require_email: bool = False
    recipients: Annotated[
        list[str], Meta(description="E-mail addresses each sent a personal link")
    ] = msgspec.field(default_factory=list)


class PublicationPage(Struct):
    items: list[Publication]
    next_cursor: str | None


class RecordingSettings(Struct, forbid_unknown_fields=True):
    auto_record: Annotated[bool, Meta(description="Start recording when the event starts")]


class LiveStreamSettings(Struct):
    url: Annotated[
        str | None, Meta(description="The ingest: rtmp:// or rtmps://host[:port]/app; null: none")
    ]
    key_set: bool
    key_hint: Annotated[str | None, Meta(description="The stream key's last four characters")]
    updated_at: str | None


class LiveStreamSettingsUpdate(Struct, forbid_unknown_fields=True):
    url: Annotated[str, Meta(description="rtmp:// or rtmps://host[:port]/app", max_length=1000)]
    key: (
        Annotated[
            str, Meta(description="The stream key; null keeps the saved one", max_length=1000)
        ]
        | None
    ) = None


# ----------------------------------------------------------------------------- webhooks


class WebhookEndpoint(Struct):
    endpoint_id: int
    url: str
    events: Annotated[list[str], Meta(description="Empty: every event")]
    created_at: Time


class NewWebhookEndpoint(Struct):
    endpoint: WebhookEndpoint
    secret: Annotated[str, Meta(description="The signing secret; shown only in this answer")]


class WebhookEndpointCreate(Struct, forbid_unknown_fields=True):
    url: str
    events: Annotated[list[str], Meta(description="Event names; empty: every event")] = (
        msgspec.field(default_factory=list)
    )


class WebhookEndpointPage(Struct):
    items: list[WebhookEndpoint]
    next_cursor: str | None


class DeliveryAttempt(Struct):
    attempt: int
    at: Time
    http_status: int | None
    error: str | None
    duration_ms: int


class Delivery(Struct):
    delivery_id: str
    endpoint_id: int
    url: str
    event: str
    event_id: EventId | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: Time | None
    created_at: Time
    finished_at: Time | None
    payload: dict[str, Any]
    history: list[DeliveryAttempt]


class DeliveryPage(Struct):
    items: list[Delivery]
    next_cursor: str | None


# ----------------------------------------------------------------------------- join tokens

JoinKeyAlgorithm = Literal["HS256", "RS256", "EdDSA"]


class JoinKey(Struct):
    """A key the organiser's backend signs join tokens with (its ID is their ``kid``)."""

    key_id: Annotated[str, Meta(examples=["jk_3f2a9c0e1b7d44aa"])]
    label: str
    algorithm: JoinKeyAlgorithm
    created_at: Time
    public_key: Annotated[
        str | None, Meta(description="RS256 and EdDSA: the registered public key (PEM)")
    ]


class NewJoinKey(JoinKey):
    """The key just made; an HS256 key with its secret."""

    secret: (
        Annotated[
            str,
            Meta(description="HS256: the shared secret (its UTF-8 bytes sign); shown only here"),
        ]
        | UnsetType
    ) = UNSET


class JoinKeyCreate(Struct, forbid_unknown_fields=True):
    """Only a label: the server makes an HS256 secret. With ``public_key``: an RS256 (RSA,
    2048 bits or more) or EdDSA (Ed25519) public key is registered."""

    label: Annotated[str, Meta(description="1-100 characters", examples=["CRM"])]
    algorithm: Annotated[
        JoinKeyAlgorithm | None,
        Meta(description="Optional; with public_key it must be the key's"),
    ] = None
    public_key: Annotated[
        str | None, Meta(description="The public key in PEM (-----BEGIN PUBLIC KEY-----)")
    ] = None


class JoinKeyPage(Struct):
    items: list[JoinKey]
    next_cursor: str | None


class Embed(Struct):
    """How an event's room is shown in another site."""

    event_id: EventId
    origins: Annotated[list[str], Meta(description="The event's own allowed sites, alphabetical")]
    frame_ancestors: Annotated[
        list[str],
        Meta(description="Every site that may frame its pages: the server's, then the event's"),
    ]
    snippet: Annotated[str, Meta(description="The <iframe> HTML to paste into such a site")]


class EmbedSettings(Struct, forbid_unknown_fields=True):
    origins: Annotated[
        list[str],
        Meta(
            description="Origins such as https://www.example.org (at most 20); they replace "
            "the event's, an empty list clears them",
            examples=[["https://www.example.org"]],
        ),
    ]


#: Every type the description names (request and response bodies).
ALL: tuple[type, ...] = (
    Error,
    LegacyError,
    Deleted,
    Queued,
    Me,
    Token,
    NewToken,
    TokenCreate,
    TokenPage,
    Event,
    EventFields,
    EventPage,
    Sent,
    Cancelled,
    Registration,
    RegistrationPage,
    Invitee,
    InviteeCreate,
    InviteePage,
    ImportPreview,
    ImportSent,
    Outbox,
    PollSpec,
    Poll,
    PollPage,
    CtaSpec,
    PreparedCta,
    PreparedCtaPage,
    Image,
    Interaction,
    Engagement,
    EventStats,
    Monthly,
    Recording,
    RecordingPage,
    Trim,
    Publication,
    PublicationCreate,
    PublicationPage,
    RecordingSettings,
    WebhookEndpoint,
    NewWebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointPage,
    Delivery,
    DeliveryPage,
    JoinKey,
    NewJoinKey,
    JoinKeyCreate,
    JoinKeyPage,
    Embed,
    EmbedSettings,
)


class ContentFile(Struct):
    """A file uploaded to an event (webinar.content)."""

    content_id: Annotated[str, Meta(examples=["cnt_0123456789abcdef01234567"])]
    event_id: str
    file_name: str
    declared_type: Annotated[str, Meta(description="What the upload claimed to be")]
    content_type: Annotated[str, Meta(description="What its content is (magic bytes)")]
    size_bytes: int
    sha256: str
    scan_status: Annotated[
        Literal["clean", "unscanned"],
        Meta(description="clean: scanned by clamd; unscanned: no scanner is configured"),
    ]
    uploaded_by: Literal["organiser", "presenter"]
    created_at: str
    url: Annotated[str, Meta(description="Where admitted attendees download it")]
    download: Annotated[str, Meta(description="Where the API downloads it")]
    pages: Annotated[
        int | None,
        Meta(description="A presentation's page count once rendered (render_status ready)"),
    ] = None
    render_status: Annotated[
        Literal["none", "rendering", "ready", "failed"],
        Meta(
            description=(
                "Presentations (PDF, PowerPoint, OpenDocument) are rendered to page images:"
                " rendering, ready or failed; none for other files"
            )
        ),
    ] = "none"
    render_message: Annotated[
        str | None, Meta(description="Why the pages could not be made (failed)")
    ] = None


class ContentPage(Struct):
    items: list[ContentFile]
    next_cursor: str | None
    quota_bytes: int
    used_bytes: int
    scanning: bool


class StageLogItem(Struct):
    """One change of what a room showed on stage (webinar.content.stage)."""

    at: str
    kind: Annotated[
        str,
        Meta(
            description="What changed: layout, presentation, page, video, files, whiteboard",
            examples=["page"],
        ),
    ]
    by: Annotated[str | None, Meta(description="The participant who changed it")]
    details: Annotated[
        dict[str, Any],
        Meta(
            description=(
                "layout: {layout}; presentation: {content_id, name, page} (content_id null:"
                " closed); page: {content_id, page}; video: {action, position?, kind?,"
                " source?, name?}; files: {content_id, offered}; whiteboard: {action, page}"
            )
        ),
    ]


class SlideItem(Struct):
    """A page of a presentation on stage from ``at`` for ``seconds``."""

    at: str
    content_id: str
    name: str
    page: int
    seconds: Annotated[float | None, Meta(description="null: still on stage")]


class StageHistory(Struct):
    items: list[StageLogItem]
    slides: list[SlideItem]


# ----------------------------------------------------------------------------- branding


class BrandingUpdate(Struct, forbid_unknown_fields=True):
    accent_colour: Annotated[
        str | UnsetType | None,
        Meta(description='#rrggbb (or #rgb); null or "" clears it; left out: unchanged'),
    ] = UNSET
    organiser_name: Annotated[
        str | UnsetType | None,
        Meta(description='At most 120 characters; null or "" clears it; left out: unchanged'),
    ] = UNSET


class EffectiveBrand(Struct):
    logo_url: str | None
    background_url: str | None
    accent_colour: Annotated[str, Meta(description="The accent in use (ours when none is set)")]
    text_colour: Annotated[str, Meta(description="The text colour on the accent: #ffffff")]
    organiser_name: str | None


class BrandContrast(Struct):
    accent_colour: str
    text_colour: str
    ratio: Annotated[float, Meta(description="WCAG 2.x contrast ratio, 2 decimals")]
    required: Annotated[float, Meta(description="4.5 (WCAG AA, normal text)")]
    ok: bool
    warning: Annotated[str | None, Meta(description="For the organiser when ok is false")]


class Branding(Struct):
    accent_colour: Annotated[str | None, Meta(description="Set at this level; null: inherited")]
    organiser_name: str | None
    logo_url: str | None
    background_url: str | None
    updated_at: Time | None
    effective: Annotated[
        EffectiveBrand,
        Meta(description="What the pages and e-mails show (an event's over its owner's)"),
    ]
    contrast: BrandContrast
