"""Shared constants and request builders of the charging tests (imported by conftest and the tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from charging.api import parse_request
from charging.engine import ChargingEngine
from charging.pricing import TableRate

TOKEN = "test-token-0123456789"
START = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
PREPAID = "491510000001"
PREPAID_IMSI = "262010000000001"
SECOND = "491510000002"
POSTPAID = "491510000009"

SUBSCRIPTIONS_CSV = f"""subscription_id,account_id,msisdn,imsi,plan_id,payment_type,valid_from,valid_to
S1,A1,{PREPAID},{PREPAID_IMSI},PRE_PAYG,prepaid,2026-01-01T00:00:00Z,
S2,A2,{SECOND},262010000000002,PRE_BUNDLE,prepaid,2026-01-01T00:00:00Z,
S9,A9,{POSTPAID},262010000000009,P_BASIC,postpaid,2026-01-01T00:00:00Z,
"""

# Fixed test rates (not the catalogue): voice 0.09 EUR per started minute, data 0.01 EUR per started MB,
# SMS 0.05 EUR, music (rating group 30) zero-rated.
RATES = {
    ("voice", None): TableRate(Decimal("0.09"), 60),
    ("data", None): TableRate(Decimal("0.01"), 1_000_000),
    ("data", 30): TableRate(Decimal("0"), 1),
    ("sms", None): TableRate(Decimal("0.05"), 1),
}


def iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def data_request(seq: int, *, msisdn: str = PREPAID, at: datetime = START, requested: int | None = None,
                 used: int | None = None, rating_group: int = 10, snssai: tuple[int, str] = (1, "000001")) -> dict:
    """A ChargingDataRequest from an SMF for one data rating group."""
    muu: dict = {"ratingGroup": rating_group}
    if requested is not None:
        muu["requestedUnit"] = {"totalVolume": requested}
    if used is not None:
        muu["usedUnitContainer"] = [{"localSequenceNumber": seq, "totalVolume": used,
                                     "uplinkVolume": used // 4, "downlinkVolume": used - used // 4}]
    return strip_none({
        "subscriberIdentifier": f"imsi-{PREPAID_IMSI}" if msisdn == PREPAID else None,
        "nfConsumerIdentification": {"nodeFunctionality": "SMF", "nFName": "0f2a4c5e-0000-4000-8000-000000000001"},
        "invocationTimeStamp": iso(at),
        "invocationSequenceNumber": seq,
        "multipleUnitUsage": [muu],
        "pDUSessionChargingInformation": {
            "chargingId": 7001,
            "userInformation": {"servedGPSI": f"msisdn-{msisdn}"},
            "pduSessionInformation": {
                "pduSessionID": 5, "dnnId": "internet",
                "networkSlicingInfo": {"sNSSAI": {"sst": snssai[0], "sd": snssai[1]}},
                "authorizedQoSInformation": {"5qi": 9},
            },
        },
    })


def voice_request(seq: int, *, msisdn: str = PREPAID, at: datetime = START, requested: int | None = None,
                  used: int | None = None, called: str = "tel:+4930123456") -> dict:
    """A ChargingDataRequest from an IMS node for an originating call."""
    muu: dict = {"ratingGroup": 100}
    if requested is not None:
        muu["requestedUnit"] = {"time": requested}
    if used is not None:
        muu["usedUnitContainer"] = [{"localSequenceNumber": seq, "time": used}]
    return {
        "nfConsumerIdentification": {"nodeFunctionality": "IMS_Node", "nFName": "0f2a4c5e-0000-4000-8000-000000000002"},
        "invocationTimeStamp": iso(at),
        "invocationSequenceNumber": seq,
        "multipleUnitUsage": [muu],
        "iMSChargingInformation": {"roleOfNode": "ORIGINATING", "calledPartyAddress": called,
                                   "userInformation": {"servedGPSI": f"msisdn-{msisdn}"}},
    }


def strip_none(body: dict) -> dict:
    return {k: v for k, v in body.items() if v is not None}


def run_sessions(engine: ChargingEngine, sessions: int = 5) -> None:
    """A few closed data and voice sessions of the prepaid subscriber (top-up first)."""
    engine.store.add_bucket(PREPAID, "money", Decimal("5.00"), at=START)
    for n in range(sessions):
        at = START + timedelta(minutes=n)
        out = engine.create(parse_request(data_request(1, at=at, requested=2_000_000)))
        engine.update(out.ref, parse_request(data_request(2, at=at, requested=2_000_000, used=1_500_000 + n)))
        engine.release(out.ref, parse_request(data_request(3, at=at, used=700_000)))
        out = engine.create(parse_request(voice_request(1, at=at, requested=120)))
        engine.release(out.ref, parse_request(voice_request(2, at=at, used=61 + n)))
