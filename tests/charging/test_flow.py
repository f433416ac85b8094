"""Create/update/release over the real HTTP service: data and voice, exhaustion with FUI, replay, expiry,
security, and the balance API."""

from __future__ import annotations

from decimal import Decimal

import httpx
from chf_helpers import (
    POSTPAID,
    PREPAID,
    SECOND,
    TOKEN,
    data_request,
    voice_request,
)

from charging.server import ChargingServer
from charging.store import Store

NCHF = "/nchf-convergedcharging/v3/chargingdata"
TMF = "/tmf-api/prepayBalanceManagement/v4"
MB = 1_000_000


def topup(client: httpx.Client, msisdn: str, amount: str, topup_id: str) -> httpx.Response:
    return client.post(f"{TMF}/topupBalance", json={"id": topup_id, "product": {"id": msisdn},
                                                    "amount": {"amount": amount, "units": "EUR"}})


def money_bucket(client: httpx.Client, msisdn: str) -> dict:
    buckets = client.get(f"{TMF}/bucket", params={"product.id": msisdn}).json()
    return next(b for b in buckets if b["usageType"] == "money")


def create(client: httpx.Client, body: dict) -> tuple[str, dict]:
    resp = client.post(NCHF, json=body)
    assert resp.status_code == 201, resp.text
    ref = resp.headers["location"].rsplit("/", 1)[1]
    return ref, resp.json()


def test_data_session_reserves_debits_and_releases(client: httpx.Client, store: Store) -> None:
    assert topup(client, PREPAID, "1.00", "t1").status_code == 201
    ref, body = create(client, data_request(1, requested=20 * MB))
    [mui] = body["multipleUnitInformation"]
    assert mui["resultCode"] == "SUCCESS" and mui["grantedUnit"] == {"totalVolume": 20 * MB}
    assert mui["validityTime"] == 60 and "finalUnitIndication" not in mui
    bucket = money_bucket(client, PREPAID)
    assert Decimal(bucket["reservedValue"]["amount"]) == Decimal("0.20")  # 20 started MB at 0.01
    # report 12.5 MB used (13 started MB), ask for 20 MB more
    resp = client.post(f"{NCHF}/{ref}/update", json=data_request(2, requested=20 * MB, used=12_500_000))
    assert resp.status_code == 200, resp.text
    bucket = money_bucket(client, PREPAID)
    assert Decimal(bucket["balance"]["amount"]) == Decimal("0.87")
    # release with 7.5 MB more: cumulative 20 MB -> 0.20 total; increments applied over the whole session
    resp = client.post(f"{NCHF}/{ref}/release", json=data_request(3, used=7_500_000))
    assert resp.status_code == 204
    bucket = money_bucket(client, PREPAID)
    assert Decimal(bucket["balance"]["amount"]) == Decimal("0.80")
    assert Decimal(bucket["reservedValue"]["amount"]) == 0
    assert store.audit() == []
    # the session is closed: further updates are 404 ProblemDetails
    resp = client.post(f"{NCHF}/{ref}/update", json=data_request(4, requested=MB))
    assert resp.status_code == 404 and resp.json()["cause"] == "CHARGING_DATA_REF_NOT_FOUND"
    assert resp.headers["content-type"].startswith("application/problem+json")


def test_voice_session_uses_unit_bucket_before_money(client: httpx.Client, store: Store) -> None:
    topup(client, PREPAID, "1.00", "t1")
    resp = client.post(f"{TMF}/bucket/create", json={"product": {"id": PREPAID}, "usageType": "voice",
                                                   "remainingValue": {"amount": 120, "units": "s"}, "priority": 1})
    assert resp.status_code == 201, resp.text
    ref, body = create(client, voice_request(1, requested=180))
    [mui] = body["multipleUnitInformation"]
    assert mui["grantedUnit"] == {"time": 180}  # 120 s from minutes + 60 s bought with money
    resp = client.post(f"{NCHF}/{ref}/release", json=voice_request(2, used=150))
    assert resp.status_code == 204
    buckets = {b["usageType"]: b for b in client.get(f"{TMF}/bucket", params={"product.id": PREPAID}).json()}
    assert buckets["voice"]["balance"]["amount"] == "0"
    assert Decimal(buckets["money"]["balance"]["amount"]) == Decimal("0.91")  # 30 s -> one started minute
    assert store.audit() == []


def test_quota_exhaustion_gives_final_unit_indication(client: httpx.Client) -> None:
    topup(client, PREPAID, "0.05", "t1")  # buys 5 MB
    ref, body = create(client, data_request(1, requested=20 * MB))
    [mui] = body["multipleUnitInformation"]
    assert mui["grantedUnit"] == {"totalVolume": 5 * MB}
    assert mui["finalUnitIndication"] == {"finalUnitAction": "TERMINATE"}
    resp = client.post(f"{NCHF}/{ref}/update", json=data_request(2, requested=20 * MB, used=5 * MB))
    [mui] = resp.json()["multipleUnitInformation"]
    assert mui["resultCode"] == "QUOTA_LIMIT_REACHED" and "grantedUnit" not in mui
    assert client.post(f"{NCHF}/{ref}/release", json=data_request(3)).status_code == 204
    assert Decimal(money_bucket(client, PREPAID)["balance"]["amount"]) == 0


def test_create_without_credit_is_denied(client: httpx.Client) -> None:
    resp = client.post(NCHF, json=data_request(1, requested=MB))
    assert resp.status_code == 403
    assert resp.json()["cause"] == "QUOTA_LIMIT_REACHED"


def test_zero_rated_rating_group_needs_no_credit(client: httpx.Client) -> None:
    ref, body = create(client, data_request(1, requested=50 * MB, rating_group=30))
    assert body["multipleUnitInformation"][0]["grantedUnit"] == {"totalVolume": 50 * MB}


def test_unknown_and_postpaid_subscribers(client: httpx.Client) -> None:
    for msisdn in ("491519999999", POSTPAID):
        resp = client.post(NCHF, json=data_request(1, msisdn=msisdn, requested=MB))
        assert resp.status_code == 404 and resp.json()["cause"] == "USER_UNKNOWN"


def test_replayed_requests_apply_once(client: httpx.Client, store: Store) -> None:
    topup(client, PREPAID, "1.00", "t1")
    assert topup(client, PREPAID, "1.00", "t1").status_code == 200  # same top-up id: not applied again
    first = client.post(NCHF, json=data_request(1, requested=10 * MB))
    again = client.post(NCHF, json=data_request(1, requested=10 * MB))
    assert first.json() == again.json() and first.headers["location"] == again.headers["location"]
    ref = first.headers["location"].rsplit("/", 1)[1]
    update = data_request(2, requested=10 * MB, used=10 * MB)
    replies = [client.post(f"{NCHF}/{ref}/update", json=update).json() for _ in range(3)]
    assert replies[0] == replies[1] == replies[2]
    assert Decimal(money_bucket(client, PREPAID)["balance"]["amount"]) == Decimal("0.90")
    assert client.post(f"{NCHF}/{ref}/release", json=data_request(3, used=MB)).status_code == 204
    assert client.post(f"{NCHF}/{ref}/release", json=data_request(3, used=MB)).status_code == 204
    assert Decimal(money_bucket(client, PREPAID)["balance"]["amount"]) == Decimal("0.89")
    assert store.ledger_totals(f"{PREPAID}-money")["topup"] == 10**9


def test_reservations_expire_and_return(client: httpx.Client, server: ChargingServer) -> None:
    topup(client, PREPAID, "0.10", "t1")
    create(client, data_request(1, requested=10 * MB))  # holds all 0.10
    assert Decimal(money_bucket(client, PREPAID)["remainingValue"]["amount"]) == 0
    denied = client.post(NCHF, json=data_request(1, requested=MB, rating_group=20))
    assert denied.status_code == 403
    server.engine.clock.advance(61)  # validityTime is 60 s in the fixture
    bucket = money_bucket(client, PREPAID)
    assert Decimal(bucket["remainingValue"]["amount"]) == Decimal("0.10") and Decimal(bucket["reservedValue"]["amount"]) == 0
    ref2, body = create(client, data_request(2, requested=MB, rating_group=20))
    assert body["multipleUnitInformation"][0]["grantedUnit"] == {"totalVolume": MB}


def test_sms_immediate_event_charging(client: httpx.Client) -> None:
    topup(client, SECOND, "0.10", "t2")
    body = {"nfConsumerIdentification": {"nodeFunctionality": "SMSF"}, "invocationTimeStamp": "2026-10-05T10:00:00Z",
            "invocationSequenceNumber": 0, "oneTimeEvent": True, "oneTimeEventType": "IEC",
            "multipleUnitUsage": [{"ratingGroup": 1, "requestedUnit": {"serviceSpecificUnits": 1}}],
            "sMSChargingInformation": {"originatorInfo": {"originatorGPSI": f"msisdn-{SECOND}"},
                                       "recipientInfo": [{"recipientGPSI": "msisdn-4917012345678"}]}}
    resp = client.post(NCHF, json=body)
    assert resp.status_code == 201, resp.text
    assert Decimal(money_bucket(client, SECOND)["balance"]["amount"]) == Decimal("0.05")


def test_security_token_body_limit_and_validation(client: httpx.Client, server: ChargingServer) -> None:
    no_auth = httpx.post(f"{server.url}{NCHF}", json=data_request(1, requested=MB))
    assert no_auth.status_code == 401 and no_auth.json()["cause"] == "UNAUTHORIZED"
    wrong = httpx.post(f"{server.url}{NCHF}", json=data_request(1), headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401
    big = client.post(NCHF, content=b"{" + b" " * 70_000 + b"}", headers={"content-type": "application/json"})
    assert big.status_code == 413
    bad = client.post(NCHF, json={**data_request(1), "invocationSequenceNumber": -1})
    assert bad.status_code == 400 and bad.json()["invalidParams"][0]["param"] == "invocationSequenceNumber"
    missing = client.post(NCHF, json={"invocationTimeStamp": "2026-10-05T10:00:00Z", "invocationSequenceNumber": 1})
    assert missing.status_code == 400 and missing.json()["cause"] == "MANDATORY_IE_MISSING"
    garbage = client.post(NCHF, content=b"not json", headers={"content-type": "application/json"})
    assert garbage.status_code == 400 and "Traceback" not in garbage.text


def test_adjustment_cannot_overdraw(client: httpx.Client) -> None:
    topup(client, PREPAID, "1.00", "t1")
    ok = client.post(f"{TMF}/adjustBalance", json={"id": "a1", "bucket": {"id": f"{PREPAID}-money"},
                                                   "amount": {"amount": "-0.40"}, "reason": "goodwill reversal"})
    assert ok.status_code == 201
    too_much = client.post(f"{TMF}/adjustBalance", json={"id": "a2", "bucket": {"id": f"{PREPAID}-money"},
                                                         "amount": {"amount": "-0.61"}})
    assert too_much.status_code == 400 and too_much.json()["cause"] == "INSUFFICIENT_BALANCE"
    total = client.get(f"{TMF}/accumulatedBalance", params={"product.id": PREPAID}).json()
    assert total["totalBalance"] == [{"usageType": "money", "amount": "0.600000000", "units": "EUR"}]


def test_several_rating_groups_in_one_session(client: httpx.Client, store: Store) -> None:
    topup(client, PREPAID, "0.10", "t1")
    body = data_request(1, requested=4 * MB)
    body["multipleUnitUsage"] = [{"ratingGroup": 10, "requestedUnit": {"totalVolume": 4 * MB}},
                                 {"ratingGroup": 30, "requestedUnit": {"totalVolume": 50 * MB}}]
    ref, created = create(client, body)
    granted = {m["ratingGroup"]: m["grantedUnit"]["totalVolume"] for m in created["multipleUnitInformation"]}
    assert granted == {10: 4 * MB, 30: 50 * MB}  # music (30) is zero-rated: no money held for it
    assert Decimal(money_bucket(client, PREPAID)["reservedValue"]["amount"]) == Decimal("0.04")
    release = data_request(2)
    release["multipleUnitUsage"] = [
        {"ratingGroup": 10, "usedUnitContainer": [{"localSequenceNumber": 1, "totalVolume": 3 * MB}]},
        {"ratingGroup": 30, "usedUnitContainer": [{"localSequenceNumber": 1, "totalVolume": 40 * MB}]}]
    assert client.post(f"{NCHF}/{ref}/release", json=release).status_code == 204
    bucket = money_bucket(client, PREPAID)
    assert Decimal(bucket["balance"]["amount"]) == Decimal("0.07") and Decimal(bucket["reservedValue"]["amount"]) == 0
    assert store.audit() == []
