"""Every message of the system, one frozen dataclass each.

TCP messages travel in frames between monitor and central or monitor and
engine; Kafka messages are the values of Kafka records. ``CHANNELS`` says which
types each TCP peer and each topic accepts.
"""

from __future__ import annotations

import enum

from evproto.schema import Message, MsgType, ident, message, number, text
from evproto.states import CpState, Health
from evproto.topics import Topic
from evproto.vocabulary import MAX_PRICE_EUR_PER_KWH, Channel

__all__ = [
    "CHANNELS",
    "MAX_STATUS_INTERVAL",
    "MIN_STATUS_INTERVAL",
    "AuthResult",
    "Authenticate",
    "CentralRestored",
    "CentralUnreachable",
    "Challenge",
    "ChallengeResponse",
    "CpStateUpdate",
    "DeadLetter",
    "Directive",
    "DirectiveAction",
    "DriverUpdate",
    "EngineInfo",
    "EnrollRequest",
    "EnrollResponse",
    "ErrorReply",
    "HealthAnswer",
    "HealthRequest",
    "InfoRequest",
    "Origin",
    "Outcome",
    "PriceUpdate",
    "RecordKey",
    "Register",
    "Sealed",
    "SessionPhase",
    "Status",
    "SupplyRequest",
    "SupplyResponse",
    "SupplyStarted",
    "SupplyStop",
    "Telemetry",
    "Ticket",
]

_PRICE_MAX = MAX_PRICE_EUR_PER_KWH
# the heartbeat interval a central may ask of its monitors (AuthResult.status_interval)
MIN_STATUS_INTERVAL = 0.05
MAX_STATUS_INTERVAL = 3600.0
# 1,000 MWh is a 1 MW charger running for six weeks: no session comes near, and
# sums of many stay exact enough for money.
_KWH_MAX = 1e6
_EUR_MAX = 1e8


def proof_field() -> str:
    """The HMAC proof of who sent a Kafka record (``evproto.proofs``); empty = none."""
    return text(default="", max_len=64)  # type: ignore[no-any-return]


class Origin(enum.StrEnum):
    DRIVER = "driver"  # requested from the driver app
    MANUAL = "manual"  # requested at the charging point itself (M12)
    STATION = "station"  # an idToken presented at an OCPP station, for the driver it belongs to


class DirectiveAction(enum.StrEnum):
    START = "start"  # begin a supply: session id, driver id, price, limits
    END_SUPPLY = "end_supply"  # end the running supply (driver asked, start timed out)
    STOP = "stop"  # out of order: end any supply, refuse new ones
    RESUME = "resume"  # back in service


class Outcome(enum.StrEnum):
    COMPLETED = "completed"  # unplugged, driver stop or limit reached
    ABORTED = "aborted"  # fault or operator stop during the supply
    CANCELLED = "cancelled"  # authorized but never started


class SessionPhase(enum.StrEnum):
    AUTHORIZED = "authorized"
    SUPPLYING = "supplying"
    ERROR = "error"


# --- TCP: monitor <-> central ---------------------------------------------------


@message(MsgType.AUTHENTICATE)
class Authenticate(Message):
    """Monitor -> central: opens authentication (or registration) of a CP."""

    cp_id: str = ident()


@message(MsgType.CHALLENGE)
class Challenge(Message):
    """Central -> monitor: prove you hold the CP secret (or the registration token)."""

    nonce: str = text(max_len=128)
    registered: bool


@message(MsgType.CHALLENGE_RESPONSE)
class ChallengeResponse(Message):
    """Monitor -> central: SCRAM-style proof over the nonce; the secret never travels."""

    cp_id: str = ident()
    proof: str = text(max_len=128)


@message(MsgType.REGISTER)
class Register(Message):
    """Monitor -> central: register (or re-key) a CP, proving the registration token."""

    cp_id: str = ident()
    location: str = text(max_len=120)
    proof: str = text(max_len=128)
    price: float | None = number(default=None, maximum=_PRICE_MAX)


@message(MsgType.AUTH_RESULT)
class AuthResult(Message):
    """Central -> monitor: accepted with the price (and a sealed new secret), or why not.

    ``status_interval``: the seconds between the monitor's heartbeat ``Status``
    reports the central asks for (None: the monitor keeps its own setting)."""

    cp_id: str = ident()
    accepted: bool
    price: float | None = number(default=None, maximum=_PRICE_MAX)
    sealed_secret: str = text(default="", max_len=128)
    reason: str = text(default="")
    status_interval: float | None = number(
        default=None, minimum=MIN_STATUS_INTERVAL, maximum=MAX_STATUS_INTERVAL
    )


@message(MsgType.STATUS)
class Status(Message):
    """Monitor -> central, at once on a change and every status interval: the CP's health."""

    cp_id: str = ident()
    health: Health
    reason: str = text(default="")


@message(MsgType.PRICE_UPDATE)
class PriceUpdate(Message):
    """Central -> monitor -> engine: the CP's price in €/kWh."""

    cp_id: str = ident()
    price: float = number(maximum=_PRICE_MAX)


# --- TCP: monitor <-> engine ------------------------------------------------------


@message(MsgType.HEALTH_REQUEST)
class HealthRequest(Message):
    seq: int = number()


@message(MsgType.HEALTH_ANSWER)
class HealthAnswer(Message):
    cp_id: str = ident()
    seq: int = number()
    health: Health
    reason: str = text(default="")


@message(MsgType.INFO_REQUEST)
class InfoRequest(Message):
    pass


@message(MsgType.ENGINE_INFO)
class EngineInfo(Message):
    cp_id: str = ident()
    location: str = text(max_len=120)
    price: float | None = number(default=None, maximum=_PRICE_MAX)
    power_kw: float = number(maximum=1000)


@message(MsgType.RECORD_KEY)
class RecordKey(Message):
    """Monitor -> engine: the CP's record key (hex), derived from the CP secret, with
    which the engine proves its reports and checks the central's directives."""

    cp_id: str = ident()
    key: str = text(max_len=64)


@message(MsgType.CENTRAL_UNREACHABLE)
class CentralUnreachable(Message):
    cp_id: str = ident()


@message(MsgType.CENTRAL_RESTORED)
class CentralRestored(Message):
    cp_id: str = ident()


@message(MsgType.ERROR)
class ErrorReply(Message):
    """Either direction: the last message was refused, with the error code and why."""

    code: str = text(max_len=64)
    message: str = text(max_len=512)


# --- Kafka ---------------------------------------------------------------------


@message(MsgType.SUPPLY_REQUEST)
class SupplyRequest(Message):
    """Driver or engine -> central. ``cp_id`` None asks for the next available CP.

    ``id_token`` (origin ``station``): the RFID/idToken presented at an OCPP
    station; the central authorizes it as the driver it is attached to.
    """

    request_id: str = ident()
    requester_id: str = ident()
    origin: Origin
    cp_id: str | None = ident(default=None)
    max_kwh: float | None = number(default=None, maximum=_KWH_MAX)
    max_eur: float | None = number(default=None, maximum=_EUR_MAX)
    max_minutes: float | None = number(default=None)
    sent_at: float = number()
    ttl_s: float = number(default=30.0, maximum=3600)
    id_token: str | None = text(default=None, max_len=36)
    proof: str = proof_field()


@message(MsgType.SUPPLY_STOP)
class SupplyStop(Message):
    """Driver -> central: end my running supply."""

    request_id: str = ident()
    requester_id: str = ident()
    session_id: str | None = ident(default=None)
    cp_id: str | None = ident(default=None)
    sent_at: float = number()
    proof: str = proof_field()


@message(MsgType.SUPPLY_RESPONSE)
class SupplyResponse(Message):
    """Central -> requester, keyed by requester id."""

    request_id: str = ident()
    requester_id: str = ident()
    origin: Origin
    authorized: bool
    cp_id: str | None = ident(default=None)
    session_id: str | None = ident(default=None)
    price: float | None = number(default=None, maximum=_PRICE_MAX)
    reason: str = text(default="")
    sent_at: float = number()
    proof: str = proof_field()


@message(MsgType.DIRECTIVE)
class Directive(Message):
    """Central -> engine, keyed by CP id."""

    directive_id: str = ident()
    cp_id: str = ident()
    action: DirectiveAction
    session_id: str | None = ident(default=None)
    driver_id: str | None = ident(default=None)
    price: float | None = number(default=None, maximum=_PRICE_MAX)
    max_kwh: float | None = number(default=None, maximum=_KWH_MAX)
    max_eur: float | None = number(default=None, maximum=_EUR_MAX)
    max_minutes: float | None = number(default=None)
    reason: str = text(default="")
    sent_at: float = number()
    proof: str = proof_field()


@message(MsgType.SUPPLY_STARTED)
class SupplyStarted(Message):
    """Engine -> central: the vehicle is plugged in and energy flows."""

    session_id: str = ident()
    cp_id: str = ident()
    driver_id: str = ident()
    sent_at: float = number()
    proof: str = proof_field()


@message(MsgType.TELEMETRY)
class Telemetry(Message):
    """Engine -> central every second while supplying; ``seq`` starts at 1."""

    session_id: str = ident()
    cp_id: str = ident()
    driver_id: str = ident()
    seq: int = number()
    kwh: float = number(maximum=_KWH_MAX)
    eur: float = number(maximum=_EUR_MAX)
    power_kw: float = number(maximum=1000)
    elapsed_s: float = number()
    sent_at: float = number()
    proof: str = proof_field()


@message(MsgType.TICKET)
class Ticket(Message):
    """Engine -> central -> driver: the end of a session, completed or not."""

    session_id: str = ident()
    cp_id: str = ident()
    driver_id: str = ident()
    last_seq: int = number()
    kwh: float = number(maximum=_KWH_MAX)
    eur: float = number(maximum=_EUR_MAX)
    price: float = number(maximum=_PRICE_MAX)
    started_at: float = number()
    ended_at: float = number()
    outcome: Outcome
    reason: str = text(default="")
    proof: str = proof_field()


@message(MsgType.DRIVER_UPDATE)
class DriverUpdate(Message):
    """Central -> driver, keyed by driver id: progress of the driver's session, or an error."""

    driver_id: str = ident()
    session_id: str = ident()
    cp_id: str = ident()
    phase: SessionPhase
    seq: int = number(default=0)
    kwh: float = number(default=0.0, maximum=_KWH_MAX)
    eur: float = number(default=0.0, maximum=_EUR_MAX)
    elapsed_s: float = number(default=0.0)
    reason: str = text(default="")
    sent_at: float = number()


@message(MsgType.CP_STATE)
class CpStateUpdate(Message):
    """Central -> anyone, keyed by CP id: the latest state of a CP."""

    cp_id: str = ident()
    state: CpState
    location: str = text(default="", max_len=120)
    price: float | None = number(default=None, maximum=_PRICE_MAX)
    driver_id: str | None = ident(default=None)
    session_id: str | None = ident(default=None)
    kwh: float = number(default=0.0, maximum=_KWH_MAX)
    eur: float = number(default=0.0, maximum=_EUR_MAX)
    sent_at: float = number()


@message(MsgType.DEAD_LETTER)
class DeadLetter(Message):
    """A poison record moved aside with the reason, so nothing is silently lost."""

    topic: str = text(max_len=249)
    partition: int = number(minimum=-1)
    offset: int = number(minimum=-1001)
    key: str = text(default="", max_len=256)
    reason: str = text(max_len=1024)
    payload: str = text(max_len=65536, one_line=False)
    consumer: str = text(default="", max_len=128)
    sent_at: float = number()


@message(MsgType.SEALED)
class Sealed(Message):
    """A record for one recipient only: the message inside is AES-256-GCM encrypted
    with a key only that recipient and the central hold (``evproto.proofs.seal``)."""

    recipient: str = ident()
    nonce: str = text(max_len=24)
    box: str = text(max_len=8192)


@message(MsgType.ENROLL_REQUEST)
class EnrollRequest(Message):
    """Driver -> central: enroll me (self-enrollment), proven with the enrollment token.

    ``public_key`` is a one-time X25519 key: the secret comes back sealed to it."""

    request_id: str = ident()
    driver_id: str = ident()
    public_key: str = text(max_len=64)
    sent_at: float = number()
    proof: str = proof_field()


@message(MsgType.ENROLL_RESPONSE)
class EnrollResponse(Message):
    """Central -> driver, keyed by driver id: the new secret sealed to the driver's
    one-time key (with the central's one-time ``public_key``), or why not."""

    request_id: str = ident()
    driver_id: str = ident()
    accepted: bool
    public_key: str = text(default="", max_len=64)
    secret_nonce: str = text(default="", max_len=24)
    secret_box: str = text(default="", max_len=256)
    reason: str = text(default="")
    sent_at: float = number()


_T = MsgType
CHANNELS: dict[Channel | Topic, frozenset[MsgType]] = {
    # what each TCP peer accepts
    Channel.CENTRAL_FROM_MONITOR: frozenset(
        {_T.AUTHENTICATE, _T.CHALLENGE_RESPONSE, _T.REGISTER, _T.STATUS, _T.ERROR}
    ),
    Channel.MONITOR_FROM_CENTRAL: frozenset(
        {_T.CHALLENGE, _T.AUTH_RESULT, _T.PRICE_UPDATE, _T.ERROR}
    ),
    Channel.ENGINE_FROM_MONITOR: frozenset(
        {
            _T.HEALTH_REQUEST,
            _T.INFO_REQUEST,
            _T.PRICE_UPDATE,
            _T.CENTRAL_UNREACHABLE,
            _T.CENTRAL_RESTORED,
            _T.RECORD_KEY,
            _T.ERROR,
        }
    ),
    Channel.MONITOR_FROM_ENGINE: frozenset({_T.HEALTH_ANSWER, _T.ENGINE_INFO, _T.ERROR}),
    # what a driver accepts inside a record sealed for it
    Channel.DRIVER_SEALED: frozenset({_T.DRIVER_UPDATE, _T.TICKET, _T.SUPPLY_RESPONSE}),
    # what each topic carries
    Topic.SUPPLY_REQUESTS: frozenset({_T.SUPPLY_REQUEST, _T.SUPPLY_STOP, _T.ENROLL_REQUEST}),
    # drivers get their answers sealed; an engine's (manual) answers are proven
    Topic.SUPPLY_RESPONSES: frozenset({_T.SUPPLY_RESPONSE, _T.SEALED, _T.ENROLL_RESPONSE}),
    Topic.DIRECTIVES: frozenset({_T.DIRECTIVE}),
    Topic.TELEMETRY: frozenset({_T.SUPPLY_STARTED, _T.TELEMETRY, _T.TICKET}),
    Topic.DRIVER_UPDATES: frozenset({_T.SEALED, _T.DRIVER_UPDATE, _T.TICKET}),
    Topic.CP_STATE: frozenset({_T.CP_STATE}),
    Topic.DEAD_LETTER: frozenset({_T.DEAD_LETTER}),
}
