"""HTTP face of the sidecar: Nchf_ConvergedCharging v3 (TS 32.291 Rel-17) and a TMF654-shaped balance API.

Security: every request needs ``Authorization: Bearer <token>`` (compared in constant time; 401
otherwise); bodies over ``max_body`` bytes get 413 before they are read in full; bodies are
validated field by field (400 ProblemDetails naming the field in ``invalidParams``); unexpected
failures answer 500 ``SYSTEM_FAILURE`` with no internals (the traceback goes to the server log only).
JSON numbers with a fraction are parsed as Decimal, so money never passes through a float.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from charging.engine import (
    HOME_PLMN,
    PLMN_TADIG,
    ChargingEngine,
    ChargingError,
    ChargingRequest,
    Outcome,
    UnitUsage,
)
from charging.store import BUCKET_SERVICES, UNIT_OF, BucketView, ChargingStoreError
from pipelines.common.money import MoneyError
from pipelines.common.partitions import digest

log = logging.getLogger("charging.api")
NCHF = "/nchf-convergedcharging/v3"
TMF = "/tmf-api/prepayBalanceManagement/v4"
UINT32 = 2**32 - 1
UINT_SAFE = 2**62
"""Largest unit count accepted (the spec's Uint64 beyond this is not a real usage figure)."""
PROBLEM = "application/problem+json"


# -- validation helpers ---------------------------------------------------------------------------
def _bad(param: str, reason: str) -> ChargingError:
    return ChargingError(400, "INVALID_MSG_FORMAT", f"invalid field {param}: {reason}",
                         [{"param": param, "reason": reason}])


def _obj(value: Any, param: str, required: bool = False) -> dict:
    if value is None:
        if required:
            raise ChargingError(400, "MANDATORY_IE_MISSING", f"missing field {param}",
                                [{"param": param, "reason": "missing"}])
        return {}
    if not isinstance(value, dict):
        raise _bad(param, "must be an object")
    return value


def _list(value: Any, param: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(param, "must be an array")
    return value


def _str(value: Any, param: str, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ChargingError(400, "MANDATORY_IE_MISSING", f"missing field {param}",
                                [{"param": param, "reason": "missing"}])
        return None
    if not isinstance(value, str):
        raise _bad(param, "must be a string")
    return value


def _uint(value: Any, param: str, maximum: int = UINT_SAFE, required: bool = False) -> int | None:
    if value is None:
        if required:
            raise ChargingError(400, "MANDATORY_IE_MISSING", f"missing field {param}",
                                [{"param": param, "reason": "missing"}])
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(param, "must be an unsigned integer")
    if value < 0 or value > maximum:
        raise _bad(param, f"must be within 0..{maximum}")
    return value


def _instant(value: Any, param: str) -> datetime:
    text = _str(value, param, required=True)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _bad(param, "must be an RFC 3339 date-time") from exc
    if instant.tzinfo is None:
        raise _bad(param, "must carry a time zone offset")
    return instant


def _digits(address: str | None) -> str | None:
    """E.164 digits of tel:/sip:/msisdn- addresses (``tel:+4930123`` -> ``4930123``)."""
    if not address:
        return None
    text = address.split("@", 1)[0]
    for prefix in ("tel:", "sip:", "msisdn-", "+"):
        text = text.removeprefix(prefix)
    text = text.removeprefix("+")
    return text if text.isdigit() else None


def _units(unit: dict, service: str, param: str) -> tuple[int, int, int]:
    """(quantity, uplink, downlink) of a requested/used unit object in the service's base unit."""
    time = _uint(unit.get("time"), f"{param}.time", UINT32)
    total = _uint(unit.get("totalVolume"), f"{param}.totalVolume")
    up = _uint(unit.get("uplinkVolume"), f"{param}.uplinkVolume") or 0
    down = _uint(unit.get("downlinkVolume"), f"{param}.downlinkVolume") or 0
    ssu = _uint(unit.get("serviceSpecificUnits"), f"{param}.serviceSpecificUnits")
    if service == "voice":
        return time or 0, 0, 0
    if service == "data":
        return (total if total is not None else up + down), up, down
    return ssu or 0, 0, 0


def _service_of(body: dict, node: str) -> str:
    if node == "IMS_Node" or body.get("iMSChargingInformation") is not None \
            or body.get("mMTelChargingInformation") is not None:
        return "voice"
    if node in ("SMSF", "SMS") or body.get("sMSChargingInformation") is not None:
        return "sms"
    return "data"


def _context(body: dict, service: str) -> tuple[dict, str | None]:
    """What pricing and the charging record need, plus the served GPSI when the body carries one."""
    ctx: dict = {"direction": "MO"}
    gpsi = None
    if service == "data":
        pdu = _obj(body.get("pDUSessionChargingInformation"), "pDUSessionChargingInformation")
        user = _obj(pdu.get("userInformation"), "pDUSessionChargingInformation.userInformation")
        gpsi = _str(user.get("servedGPSI"), "userInformation.servedGPSI")
        info = _obj(pdu.get("pduSessionInformation"), "pduSessionInformation")
        ctx["apn"] = _str(info.get("dnnId"), "pduSessionInformation.dnnId")
        slicing = _obj(info.get("networkSlicingInfo"), "pduSessionInformation.networkSlicingInfo")
        snssai = _obj(slicing.get("sNSSAI"), "networkSlicingInfo.sNSSAI")
        if snssai:
            sst = _uint(snssai.get("sst"), "sNSSAI.sst", 255)
            sd = _str(snssai.get("sd"), "sNSSAI.sd")
            ctx["snssai"] = f"{sst}-{sd}" if sd else f"{sst}"
        qos = _obj(info.get("authorizedQoSInformation"), "pduSessionInformation.authorizedQoSInformation")
        five_qi = qos.get("5qi")
        ctx["qos_class"] = _uint(five_qi, "authorizedQoSInformation.5qi", 255) if five_qi is not None else None
        plmn = _obj(info.get("servingCNPlmnId"), "pduSessionInformation.servingCNPlmnId")
        if plmn:
            key = f"{_str(plmn.get('mcc'), 'servingCNPlmnId.mcc')}-{_str(plmn.get('mnc'), 'servingCNPlmnId.mnc')}"
            ctx["visited_network"] = None if key == HOME_PLMN else PLMN_TADIG.get(key, key)
    elif service == "voice":
        ims = _obj(body.get("iMSChargingInformation"), "iMSChargingInformation")
        user = _obj(ims.get("userInformation"), "iMSChargingInformation.userInformation")
        gpsi = _str(user.get("servedGPSI"), "userInformation.servedGPSI")
        ctx["other_party"] = _digits(_str(ims.get("calledPartyAddress"), "iMSChargingInformation.calledPartyAddress"))
        role = ims.get("roleOfNode")
        ctx["direction"] = "MT" if role == "TERMINATING" else "MO"
    else:
        sms = _obj(body.get("sMSChargingInformation"), "sMSChargingInformation")
        recipients = _list(sms.get("recipientInfo"), "sMSChargingInformation.recipientInfo")
        first = _obj(recipients[0], "recipientInfo[0]") if recipients else {}
        ctx["other_party"] = _digits(_str(first.get("recipientGPSI"), "recipientInfo.recipientGPSI"))
        originator = _obj(sms.get("originatorInfo"), "sMSChargingInformation.originatorInfo")
        gpsi = _str(originator.get("originatorGPSI"), "originatorInfo.originatorGPSI")
    return ctx, gpsi


def parse_request(body: Any, create: bool = True) -> ChargingRequest:
    """A validated :class:`ChargingRequest` from a ChargingDataRequest body (400 on anything malformed).

    ``create``: also compute the body fingerprint that names the new resource (creates only).
    """
    body = _obj(body, "body", required=True)
    nf = _obj(body.get("nfConsumerIdentification"), "nfConsumerIdentification", required=True)
    node = _str(nf.get("nodeFunctionality"), "nfConsumerIdentification.nodeFunctionality", required=True)
    nf_name = _str(nf.get("nFName"), "nfConsumerIdentification.nFName")
    invoked = _instant(body.get("invocationTimeStamp"), "invocationTimeStamp")
    seq = _uint(body.get("invocationSequenceNumber"), "invocationSequenceNumber", UINT32, required=True)
    subscriber = _str(body.get("subscriberIdentifier"), "subscriberIdentifier")
    charging_id = body.get("chargingId")
    if charging_id is not None:
        charging_id = str(_uint(charging_id, "chargingId", UINT32))
    one_time = body.get("oneTimeEvent")
    if one_time is not None and not isinstance(one_time, bool):
        raise _bad("oneTimeEvent", "must be a boolean")
    service = _service_of(body, node)
    context, gpsi = _context(body, service)
    usages = []
    seen: set[int] = set()
    for i, item in enumerate(_list(body.get("multipleUnitUsage"), "multipleUnitUsage")):
        muu = _obj(item, f"multipleUnitUsage[{i}]")
        rg = _uint(muu.get("ratingGroup"), f"multipleUnitUsage[{i}].ratingGroup", UINT32, required=True)
        if rg in seen:
            raise _bad(f"multipleUnitUsage[{i}].ratingGroup", "appears twice")
        seen.add(rg)
        requested = None
        if muu.get("requestedUnit") is not None:
            requested = _units(_obj(muu["requestedUnit"], "requestedUnit"), service,
                               f"multipleUnitUsage[{i}].requestedUnit")[0]
        used = up = down = 0
        for j, container in enumerate(_list(muu.get("usedUnitContainer"), f"multipleUnitUsage[{i}].usedUnitContainer")):
            uuc = _obj(container, f"usedUnitContainer[{j}]")
            if isinstance(uuc.get("localSequenceNumber"), bool) or not isinstance(uuc.get("localSequenceNumber"), int):
                raise _bad(f"multipleUnitUsage[{i}].usedUnitContainer[{j}].localSequenceNumber",
                           "required integer")
            q, u, d = _units(uuc, service, f"multipleUnitUsage[{i}].usedUnitContainer[{j}]")
            used, up, down = used + q, up + u, down + d
        if used > UINT_SAFE:
            raise _bad(f"multipleUnitUsage[{i}].usedUnitContainer", "too many units")
        usages.append(UnitUsage(rg, requested, used, up, down))
    return ChargingRequest(seq=seq, invoked_at=invoked, subscriber=subscriber, gpsi=gpsi, node=node,
                           nf_name=nf_name, charging_id=charging_id, service=service,
                           one_time_event=bool(one_time), usages=tuple(usages), context=context,
                           fingerprint=_fingerprint(body) if create else None)


def _fingerprint(body: dict) -> str:
    """Same request body (apart from the retransmission flag) -> same ChargingDataRef."""
    stable = {k: v for k, v in body.items() if k != "retransmissionIndicator"}
    return digest(json.dumps(stable, sort_keys=True, default=str, separators=(",", ":")), length=32)


# -- responses ------------------------------------------------------------------------------------
def _json(status: int, body: Any, media_type: str = "application/json", headers: dict | None = None) -> Response:
    return Response(json.dumps(body, default=str, separators=(",", ":")).encode(), status, headers=headers,
                    media_type=media_type)


def _problem(err: ChargingError, headers: dict | None = None) -> Response:
    return _json(err.status, err.problem(), PROBLEM, headers)


UNAUTHORISED = ChargingError(401, "UNAUTHORIZED", "a valid bearer token is required")


class BalanceApp:
    """Builds the Starlette app around one engine; handlers are thin (parse, call, render)."""

    def __init__(self, engine: ChargingEngine, token: str, max_body: int = 65536) -> None:
        if not token:
            raise ValueError("a bearer token is required to start the charging service")
        self.engine = engine
        self.expected = f"Bearer {token}".encode()
        self.max_body = max_body

    # -- plumbing -----------------------------------------------------------------------------
    def _authorised(self, request: Request) -> bool:
        got = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(got, self.expected)

    async def _body(self, request: Request) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            raise ChargingError(413, "PAYLOAD_TOO_LARGE", f"bodies are limited to {self.max_body} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise ChargingError(413, "PAYLOAD_TOO_LARGE", f"bodies are limited to {self.max_body} bytes")
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ChargingError(400, "INVALID_MSG_FORMAT", "the body is not valid JSON") from exc

    def _guard(self, handler: Callable) -> Callable:
        async def wrapped(request: Request) -> Response:
            if not self._authorised(request):
                return _problem(UNAUTHORISED, {"WWW-Authenticate": "Bearer"})
            try:
                return await handler(request)
            except ChargingError as err:
                return _problem(err)
            except ChargingStoreError as err:
                status = 404 if err.code in ("USER_UNKNOWN", "BUCKET_UNKNOWN") else 400
                return _problem(ChargingError(status, err.code, err.message))
            except MoneyError as err:
                return _problem(ChargingError(400, "INVALID_AMOUNT", str(err)))
            except Exception:  # noqa: BLE001 - the client learns nothing internal; the log has it all
                log.exception("charging request failed")
                return _problem(ChargingError(500, "SYSTEM_FAILURE", "the request could not be processed"))

        return wrapped

    # -- Nchf_ConvergedCharging ---------------------------------------------------------------
    def _render(self, outcome: Outcome, request: Request) -> Response:
        if outcome.status == 204:
            return Response(status_code=204)
        if outcome.status >= 400:
            return _json(outcome.status, outcome.body, PROBLEM)
        headers = None
        if outcome.status == 201:
            headers = {"Location": f"{request.base_url}{NCHF.lstrip('/')}/chargingdata/{outcome.ref}"}
        return _json(outcome.status, outcome.body, headers=headers)

    async def create(self, request: Request) -> Response:
        return self._render(self.engine.create(parse_request(await self._body(request))), request)

    async def update(self, request: Request) -> Response:
        req = parse_request(await self._body(request), create=False)
        return self._render(self.engine.update(request.path_params["ref"], req), request)

    async def release(self, request: Request) -> Response:
        req = parse_request(await self._body(request), create=False)
        return self._render(self.engine.release(request.path_params["ref"], req), request)

    # -- TMF654-shaped balance management ------------------------------------------------------
    async def list_buckets(self, request: Request) -> Response:
        msisdn = _product_id(request)
        return _json(200, [_bucket_json(b) for b in self.engine.store.buckets(msisdn, self.engine.clock())])

    async def accumulated(self, request: Request) -> Response:
        msisdn = _product_id(request)
        totals: dict[str, Any] = {}
        for b in self.engine.store.buckets(msisdn, self.engine.clock()):
            if b.valid_to is not None and b.valid_to <= self.engine.clock():
                continue
            totals[b.service] = totals.get(b.service, 0) + b.available
        return _json(200, {"product": {"id": msisdn}, "totalBalance": [
            {"usageType": s, "amount": str(v), "units": UNIT_OF[s]} for s, v in sorted(totals.items())]})

    async def create_bucket(self, request: Request) -> Response:
        body = _obj(await self._body(request), "body", required=True)
        msisdn = _str(_obj(body.get("product"), "product", True).get("id"), "product.id", True)
        usage = _str(body.get("usageType"), "usageType", True)
        if usage not in BUCKET_SERVICES:
            raise _bad("usageType", f"one of {BUCKET_SERVICES}")
        value = _obj(body.get("remainingValue"), "remainingValue", True)
        valid = _obj(body.get("validFor"), "validFor")
        start = _instant(valid["startDateTime"], "validFor.startDateTime") if valid.get("startDateTime") else None
        end = _instant(valid["endDateTime"], "validFor.endDateTime") if valid.get("endDateTime") else None
        limit = _obj(body.get("creditLimit"), "creditLimit").get("amount", 0)
        bucket_id = self.engine.store.add_bucket(
            msisdn, usage, _amount(value.get("amount")), at=self.engine.clock(), bucket_id=_str(body.get("id"), "id"),
            priority=_uint(body.get("priority"), "priority", UINT32) or 100,
            rating_group=_uint(body.get("ratingGroup"), "ratingGroup", UINT32),
            valid_from=start, valid_to=end, credit_limit=_amount(limit))
        view = next(b for b in self.engine.store.buckets(msisdn, self.engine.clock()) if b.bucket_id == bucket_id)
        return _json(201, _bucket_json(view))

    async def topup(self, request: Request) -> Response:
        body = _obj(await self._body(request), "body", required=True)
        msisdn = _str(_obj(body.get("product"), "product", True).get("id"), "product.id", True)
        bucket_id = _str(_obj(body.get("bucket"), "bucket").get("id"), "bucket.id") or f"{msisdn}-money"
        amount = _amount(_obj(body.get("amount"), "amount", True).get("amount"))
        now = self.engine.clock()
        if self.engine.store.find_subscriber(msisdn=msisdn) is None:
            raise ChargingError(404, "USER_UNKNOWN", "no prepaid subscriber with this product id")
        self.engine.store.add_bucket(msisdn, "money", 0, at=now, bucket_id=bucket_id, priority=1000)
        applied, _ = self.engine.store.credit(bucket_id, amount, "topup", _str(body.get("id"), "id"), at=now,
                                              note="tmf654 topupBalance")
        return _json(201 if applied else 200, {"id": body.get("id"), "status": "completed" if applied else "duplicate",
                                               "product": {"id": msisdn}, "bucket": {"id": bucket_id},
                                               "amount": {"amount": str(amount), "units": "EUR"}})

    async def adjust(self, request: Request) -> Response:
        body = _obj(await self._body(request), "body", required=True)
        bucket_id = _str(_obj(body.get("bucket"), "bucket", True).get("id"), "bucket.id", True)
        amount = _amount(_obj(body.get("amount"), "amount", True).get("amount"))
        applied, _ = self.engine.store.credit(bucket_id, amount, "adjustment", _str(body.get("id"), "id"),
                                              at=self.engine.clock(), note=_str(body.get("reason"), "reason"))
        return _json(201 if applied else 200, {"id": body.get("id"), "status": "completed" if applied else "duplicate",
                                               "bucket": {"id": bucket_id}, "amount": {"amount": str(amount)}})

    def app(self) -> Callable:
        """The ASGI app: Nchf operations on a lean dispatcher (the hot path), the rest on Starlette."""
        g = self._guard
        routes = [
            Route(f"{NCHF}/chargingdata", g(self.create), methods=["POST"]),
            Route(f"{NCHF}/chargingdata/{{ref}}/update", g(self.update), methods=["POST"]),
            Route(f"{NCHF}/chargingdata/{{ref}}/release", g(self.release), methods=["POST"]),
            Route(f"{TMF}/bucket", g(self.list_buckets), methods=["GET"]),
            Route(f"{TMF}/bucket/create", g(self.create_bucket), methods=["POST"]),
            Route(f"{TMF}/accumulatedBalance", g(self.accumulated), methods=["GET"]),
            Route(f"{TMF}/topupBalance", g(self.topup), methods=["POST"]),
            Route(f"{TMF}/adjustBalance", g(self.adjust), methods=["POST"]),
        ]

        async def not_found(request: Request, exc: Exception) -> Response:
            status = getattr(exc, "status_code", 404)
            cause = "RESOURCE_NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED" if status == 405 else "ERROR"
            return _problem(ChargingError(status, cause, "no such resource or method"), getattr(exc, "headers", None))

        general = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
        return FastNchf(self, general)


class FastNchf:
    """Plain ASGI for ``POST .../chargingdata[/{ref}/update|release]``: same checks, no framework layers.

    Anything else (other methods, the balance API, unknown paths) goes to the Starlette app, which
    answers 404/405 as ProblemDetails.
    """

    PREFIX = f"{NCHF}/chargingdata"

    def __init__(self, api: BalanceApp, general: Callable, group_commit: bool = True) -> None:
        self.api = api
        self.general = general
        self.group_commit = group_commit
        self._queue: list[tuple[str, str | None, ChargingRequest, asyncio.Future]] = []
        self._scheduled = False

    def _apply(self, op: str, ref: str | None, req: ChargingRequest) -> Outcome:
        engine = self.api.engine
        if op == "create":
            return engine.create(req)
        return engine.update(ref, req) if op == "update" else engine.release(ref, req)

    async def _submit(self, op: str, ref: str | None, req: ChargingRequest) -> Outcome:
        """Group commit: requests parsed in the same event-loop turn share one transaction.

        Each runs in its own SAVEPOINT (an error undoes only that request) and every answer waits for
        the shared COMMIT, so nothing is acknowledged before it is durable; one COMMIT per batch
        instead of one per request is what makes the store keep up under load.
        """
        if not self.group_commit:
            return self._apply(op, ref, req)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((op, ref, req, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run_batch)
        return await future

    def _run_batch(self) -> None:
        self._scheduled = False
        batch, self._queue = self._queue, []
        results: list[tuple[asyncio.Future, Outcome | None, BaseException | None]] = []
        try:
            with self.api.engine.store.transaction():
                for op, ref, req, future in batch:
                    try:
                        results.append((future, self._apply(op, ref, req), None))
                    except Exception as exc:  # noqa: BLE001 - handed to that request's handler
                        results.append((future, None, exc))
        except Exception as exc:  # noqa: BLE001 - the COMMIT failed: no request of the batch took effect
            for _, _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, outcome, error in results:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(outcome)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.PREFIX):
            return await self.general(scope, receive, send)
        path = scope["path"]
        op, ref = "create", None
        if path != self.PREFIX:
            parts = path[len(self.PREFIX) + 1:].split("/")
            if len(parts) != 2 or not parts[0] or parts[1] not in ("update", "release"):
                return await self.general(scope, receive, send)
            ref, op = parts
        headers = dict(scope["headers"])
        try:
            if not hmac.compare_digest(headers.get(b"authorization", b""), self.api.expected):
                raise ChargingError(401, "UNAUTHORIZED", "a valid bearer token is required")
            body = await self._body(headers, receive)
            req = parse_request(body, create=op == "create")
            outcome = await self._submit(op, ref, req)
        except ChargingError as err:
            extra = [(b"www-authenticate", b"Bearer")] if err.status == 401 else []
            return await _send(send, err.status, _dumps(err.problem()), PROBLEM, extra)
        except Exception:  # noqa: BLE001 - the client learns nothing internal; the log has it all
            log.exception("charging request failed")
            err = ChargingError(500, "SYSTEM_FAILURE", "the request could not be processed")
            return await _send(send, 500, _dumps(err.problem()), PROBLEM)
        if outcome.status == 204:
            return await _send(send, 204, b"", None)
        if outcome.status >= 400:
            return await _send(send, outcome.status, _dumps(outcome.body), PROBLEM)
        extra = []
        if outcome.status == 201:
            host = headers.get(b"host", b"localhost").decode("latin-1")
            extra.append((b"location", f"{scope.get('scheme', 'http')}://{host}{self.PREFIX}/{outcome.ref}".encode()))
        return await _send(send, outcome.status, _dumps(outcome.body), "application/json", extra)

    async def _body(self, headers: dict, receive: Callable) -> Any:
        limit = self.api.max_body
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise ChargingError(413, "PAYLOAD_TOO_LARGE", f"bodies are limited to {limit} bytes")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ChargingError(400, "INVALID_MSG_FORMAT", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ChargingError(413, "PAYLOAD_TOO_LARGE", f"bodies are limited to {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        data = b"".join(chunks)
        try:  # what json.loads does, with a decoder built once instead of per request
            return _DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ChargingError(400, "INVALID_MSG_FORMAT", "the body is not valid JSON") from exc


_DECODER = json.JSONDecoder(parse_float=Decimal)
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


def _dumps(body: Any) -> bytes:
    return _ENCODER.encode(body).encode()


async def _send(send: Callable, status: int, payload: bytes, media_type: str | None,
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-length", str(len(payload)).encode())]
    if media_type:
        headers.append((b"content-type", media_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": payload})


def _product_id(request: Request) -> str:
    msisdn = request.query_params.get("product.id")
    if not msisdn:
        raise ChargingError(400, "MANDATORY_IE_MISSING", "query parameter product.id (the MSISDN) is required")
    return msisdn


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise _bad("amount", "must be a decimal string or number")
    try:
        return Decimal(str(value))
    except ArithmeticError as exc:
        raise _bad("amount", "not a decimal amount") from exc


def _bucket_json(b: BucketView) -> dict:
    return {
        "id": b.bucket_id, "usageType": b.service, "product": {"id": b.msisdn}, "priority": b.priority,
        "ratingGroup": b.rating_group,
        "remainingValue": {"amount": str(b.available), "units": b.unit},
        "reservedValue": {"amount": str(b.reserved), "units": b.unit},
        "balance": {"amount": str(b.balance), "units": b.unit},
        "creditLimit": {"amount": str(b.credit_limit), "units": b.unit},
        "validFor": {"startDateTime": b.valid_from.isoformat().replace("+00:00", "Z"),
                     "endDateTime": b.valid_to.isoformat().replace("+00:00", "Z") if b.valid_to else None},
    }
