"""Conformance to the Rel-17 Nchf_ConvergedCharging OpenAPI files (copied into charging/openapi/).

Two angles: schemathesis generates requests from the spec against the running service (every
response must be documented, well-typed and never a server error), and a real create/update/
release flow whose every response is validated against the same spec.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import schemathesis
from chf_helpers import PREPAID, TOKEN, data_request, voice_request
from hypothesis import HealthCheck, settings

from charging.server import ChargingServer

SPEC = Path(__file__).resolve().parents[2] / "charging" / "openapi" / "TS32291_Nchf_ConvergedCharging.yaml"
schema = schemathesis.openapi.from_path(SPEC)
# The ChargingDataRequest schema is huge (every service's charging information): keep generation
# bounded so the test stays fast on 2 shared cores; fuzzing still varies every field we read.
schema.config.phases.update(phases=["examples", "fuzzing"])
schema.config.generation.update(max_examples=12, no_shrink=True, deterministic=True)
API = "/nchf-convergedcharging/v3"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_generated_requests_conform(case, server: ChargingServer) -> None:  # noqa: ANN001
    case.call_and_validate(base_url=f"{server.url}{API}", headers=AUTH)


def test_real_flow_responses_conform(server: ChargingServer) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH) as client:
        client.post("/tmf-api/prepayBalanceManagement/v4/topupBalance",
                    json={"id": "t1", "product": {"id": PREPAID}, "amount": {"amount": "0.50", "units": "EUR"}})
    create_op = schema.find_operation_by_path("POST", "/chargingdata")
    update_op = schema.find_operation_by_path("POST", "/chargingdata/{ChargingDataRef}/update")
    release_op = schema.find_operation_by_path("POST", "/chargingdata/{ChargingDataRef}/release")
    base = f"{server.url}{API}"
    for request in (data_request, voice_request):
        case = create_op.Case(body=request(1, requested=60 if request is voice_request else 2_000_000),
                              media_type="application/json")
        resp = case.call(base_url=base, headers=AUTH)
        assert resp.status_code == 201, resp.text
        case.validate_response(resp)
        location = resp.headers["location"]
        ref = (location[0] if isinstance(location, list) else location).rsplit("/", 1)[1]
        update = update_op.Case(path_parameters={"ChargingDataRef": ref}, media_type="application/json",
                                body=request(2, requested=60 if request is voice_request else 2_000_000, used=30))
        resp = update.call(base_url=base, headers=AUTH)
        assert resp.status_code == 200
        update.validate_response(resp)
        release = release_op.Case(path_parameters={"ChargingDataRef": ref}, body=request(3, used=10),
                                  media_type="application/json")
        resp = release.call(base_url=base, headers=AUTH)
        assert resp.status_code == 204
        release.validate_response(resp)
        missing = release_op.Case(path_parameters={"ChargingDataRef": ref}, body=request(4),
                                  media_type="application/json")
        resp = missing.call(base_url=base, headers=AUTH)
        assert resp.status_code == 404
        missing.validate_response(resp)
    unauthorised = create_op.Case(body=data_request(9, requested=1), media_type="application/json")
    resp = unauthorised.call(base_url=base)
    assert resp.status_code == 401
    unauthorised.validate_response(resp)
