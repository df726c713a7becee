"""Schemathesis against each service's own OpenAPI document, over HTTP, on the running pipeline.

Every operation of the five documents gets its documented examples, the coverage phase's
boundary values and a bounded number of generated requests, valid and invalid alike, from a
fixed seed so that a run repeats exactly. Each request carries real credentials (ingest's
signed over the exact bytes sent), so the fuzzer reaches the handlers rather than the 401;
once per secured operation the same valid request goes again without credentials and with
wrong ones, and must be refused with a documented 401. A run fails on any 5xx, a status,
content type, header or body the document does not declare, invalid data accepted, and an
error that is not an RFC 9457 problem document.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from _pytest.nodeid import coerce_node_id
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from fedelta_client import DevEnv
from shared.web.auth import SIGNATURE_HEADER, sign
from shared.web.problems import PROBLEM_JSON
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e

FuzzCase = Case[Any]


def _node_id(item: pytest.Item) -> str:
    return item.nodeid


def _rename_node(item: pytest.Item, node_id: str) -> None:
    item._id = coerce_node_id(node_id)


# Schemathesis 4.32's lazy loader names each operation's subtest by assigning the running
# item's `_nodeid`, which pytest 9.2 replaced with `_id`: without this bridge every lazily
# loaded test dies with AttributeError before sending a request. Inert once either side
# catches up (the attribute then exists and is left alone).
if not hasattr(pytest.Function, "_nodeid"):
    pytest.Function._nodeid = property(_node_id, _rename_node)  # type: ignore[attr-defined]

# Generated requests per operation, beside the examples and the coverage phase's boundary
# values: about 2,500 requests in all, some 30 s for the five services on two shared cores.
MAX_EXAMPLES = 100
SEED = 20261122
REQUEST_TIMEOUT_SECONDS = 20

FUZZ_CONFIG: dict[str, Any] = {
    "seed": SEED,
    "generation": {
        "mode": "all",
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        # Credentials are sent by `credentials_for`, never invented by the generator.
        "with-security-parameters": False,
    },
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
    },
}


def problem_details(ctx: CheckContext, response: Response, case: FuzzCase) -> bool | None:
    """Every 4xx and 5xx is `application/problem+json` with a title, the status and a
    detail: the error contract of every Fedelta API (README, "Bad input changes nothing")."""
    if response.status_code < 400:
        return None
    media_type = response.headers.get("content-type", [""])[0].partition(";")[0].strip()
    assert media_type == PROBLEM_JSON, (
        f"{response.status_code} answered as {media_type or 'no content type'}, not {PROBLEM_JSON}"
    )
    body = json.loads(response.content)
    assert isinstance(body, dict), "a problem document is a JSON object"
    assert isinstance(body.get("title"), str) and body["title"], "problem without a title"
    assert body.get("status") == response.status_code, (
        f"problem status {body.get('status')!r} differs from the HTTP status {response.status_code}"
    )
    assert isinstance(body.get("detail"), str) and body["detail"], "problem without a detail"
    return None


def credentials_accepted(ctx: CheckContext, response: Response, case: FuzzCase) -> bool | None:
    """Every call carries the credentials its operation asks for (see `credentials_for`),
    so a 401 or 403 means the signature or the token check refused a correct call."""
    assert response.status_code not in (401, 403), (
        f"valid credentials refused with {response.status_code}: {response.content[:300]!r}"
    )
    return None


CHECKS: list[Callable[[CheckContext, Response, FuzzCase], bool | None]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    problem_details,
    credentials_accepted,
]


class PartnerSignature(requests.auth.AuthBase):
    """The partner's API key and a signature over the request exactly as it goes out: the
    path and query of the request line and the body's bytes."""

    def __init__(self, api_key: str, secret: str) -> None:
        self.api_key = api_key
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body
        if body is None:
            raw = b""
        elif isinstance(body, str):
            # Sent as these bytes, whatever encoding http.client would have chosen.
            raw = body.encode()
            request.body = raw
            request.headers["Content-Length"] = str(len(raw))
        elif isinstance(body, bytes):
            raw = body
        else:
            raise TypeError("a streamed body cannot be signed before it is sent")
        assert request.method is not None
        request.headers["Authorization"] = f"Bearer {self.api_key}"
        request.headers[SIGNATURE_HEADER] = sign(
            self.secret, int(time.time()), request.method, request.path_url, raw
        )
        return request


class ServiceToken(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def credentials_for(case: FuzzCase, service: str, env: DevEnv) -> requests.auth.AuthBase | None:
    """What the operation's `security` asks for: the service's admin token reaches every
    internal operation, so the fuzzer tests the handlers rather than the scope check."""
    schemes = security_schemes(case)
    if "partnerSignature" in schemes:
        return PartnerSignature(env.partner_key, env.partner_secret)
    if "serviceToken" in schemes:
        return ServiceToken(env.token(service, "admin"))
    return None


def wrong_credentials_for(case: FuzzCase, service: str, env: DevEnv) -> requests.auth.AuthBase:
    """Credentials of the right form that must be refused: the partner's key with a
    signature made with another secret, or the admin token of another service (a
    credential of one service is worthless at another)."""
    if "partnerSignature" in security_schemes(case):
        return PartnerSignature(env.partner_key, f"not-{env.partner_secret}")
    other = "points" if service != "points" else "tiers"
    return ServiceToken(env.token(other, "admin"))


def security_schemes(case: FuzzCase) -> set[str]:
    requirements: list[dict[str, list[str]]] = case.operation.definition.raw.get("security", [])
    return {name for requirement in requirements for name in requirement}


# What the calls carrying credentials answered in this session, by service and status.
SECURED_ANSWERS: dict[str, Counter[int]] = defaultdict(Counter)


def exercise(case: FuzzCase, service: str, env: DevEnv) -> None:
    credentials = credentials_for(case, service, env)
    response = case.call_and_validate(
        base_url=base_url_of(service, env),
        checks=CHECKS,
        auth=credentials,
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
    if credentials is not None:
        SECURED_ANSWERS[service][response.status_code] += 1
        probe_refusals(case, service, env)


# The operations whose refusal of missing and wrong credentials has been probed.
PROBED: set[tuple[str, str]] = set()


def probe_refusals(case: FuzzCase, service: str, env: DevEnv) -> None:
    """Once per secured operation, with its first valid request: the same request without
    credentials, then with wrong ones, is a documented 401 problem. (Invalid data could be
    refused before the credentials are looked at, so the probe waits for valid data.)"""
    key = (service, case.operation.label)
    if key in PROBED or case.meta is None or case.meta.generation.mode.is_negative:
        return
    PROBED.add(key)
    for credentials in (None, wrong_credentials_for(case, service, env)):
        response = case.call(
            base_url=base_url_of(service, env), auth=credentials, timeout=REQUEST_TIMEOUT_SECONDS
        )
        assert response.status_code == 401, (
            f"{case.operation.label} with {'wrong' if credentials else 'no'} credentials "
            f"answered {response.status_code}, not 401"
        )
        case.validate_response(
            response, checks=[c for c in CHECKS if c is not credentials_accepted]
        )


def base_url_of(service: str, env: DevEnv) -> str:
    url: str = getattr(env, f"{service}_url")
    return url


def load_schema(service: str, env: DevEnv) -> BaseSchema:
    return schemathesis.openapi.from_url(
        f"{base_url_of(service, env)}/openapi.json",
        config=SchemathesisConfig.from_dict(FUZZ_CONFIG),
    )


@pytest.fixture(scope="module")
def ingest_api(pipeline: Pipeline) -> BaseSchema:
    return load_schema("ingest", pipeline.env)


@pytest.fixture(scope="module")
def points_api(pipeline: Pipeline) -> Iterator[BaseSchema]:
    yield load_schema("points", pipeline.env)
    remove_campaigns(pipeline.env)


def remove_campaigns(env: DevEnv) -> None:
    """The campaigns the fuzzer made would boost every later purchase of the session."""
    auth = ServiceToken(env.token("points", "admin"))
    listed = requests.get(f"{env.points_url}/v1/campaigns", auth=auth, timeout=30)
    listed.raise_for_status()
    for campaign in listed.json()["items"]:
        removed = requests.delete(
            f"{env.points_url}/v1/campaigns/{campaign['id']}", auth=auth, timeout=30
        )
        assert removed.status_code in (204, 404), removed.text


@pytest.fixture(scope="module")
def tiers_api(pipeline: Pipeline) -> BaseSchema:
    return load_schema("tiers", pipeline.env)


@pytest.fixture(scope="module")
def notifications_api(pipeline: Pipeline) -> BaseSchema:
    return load_schema("notifications", pipeline.env)


@pytest.fixture(scope="module")
def engagement_api(pipeline: Pipeline) -> Iterator[BaseSchema]:
    yield load_schema("engagement", pipeline.env)
    end_engagement_rules(pipeline.env)


def end_engagement_rules(env: DevEnv) -> None:
    """The rules the fuzzer made would reward later purchases of the session (a surprise
    of chance 1 would add points to every balance the other tests expect): each ended,
    nothing read from then on counts for it, and the birthday and feedback rewards stopped."""
    auth = ServiceToken(env.token("engagement", "admin"))
    for kind in ("stamp-cards", "challenges", "surprises"):
        listed = requests.get(f"{env.engagement_url}/v1/{kind}", auth=auth, timeout=30)
        listed.raise_for_status()
        for rule in listed.json()["items"]:
            ended = requests.delete(
                f"{env.engagement_url}/v1/{kind}/{rule['id']}", auth=auth, timeout=30
            )
            assert ended.status_code in (204, 404), ended.text
    for reward in ("birthday-reward", "feedback-reward"):
        stopped = requests.delete(f"{env.engagement_url}/v1/{reward}", auth=auth, timeout=30)
        assert stopped.status_code in (204, 404), stopped.text
    for kind in ("stamp-cards", "challenges", "surprises"):
        listed = requests.get(f"{env.engagement_url}/v1/{kind}", auth=auth, timeout=30)
        assert all(rule["ends_at"] is not None for rule in listed.json()["items"]), kind


# Every operation of every document: none is excluded.
ingest = schemathesis.pytest.from_fixture("ingest_api")
points = schemathesis.pytest.from_fixture("points_api")
tiers = schemathesis.pytest.from_fixture("tiers_api")
notifications = schemathesis.pytest.from_fixture("notifications_api")
engagement = schemathesis.pytest.from_fixture("engagement_api")


@ingest.parametrize()
def test_ingest_answers_as_documented(case: FuzzCase, pipeline: Pipeline) -> None:
    exercise(case, "ingest", pipeline.env)


@points.parametrize()
def test_points_answers_as_documented(case: FuzzCase, pipeline: Pipeline) -> None:
    exercise(case, "points", pipeline.env)


@tiers.parametrize()
def test_tiers_answers_as_documented(case: FuzzCase, pipeline: Pipeline) -> None:
    exercise(case, "tiers", pipeline.env)


@notifications.parametrize()
def test_notifications_answers_as_documented(case: FuzzCase, pipeline: Pipeline) -> None:
    exercise(case, "notifications", pipeline.env)


@engagement.parametrize()
def test_engagement_answers_as_documented(case: FuzzCase, pipeline: Pipeline) -> None:
    exercise(case, "engagement", pipeline.env)


def test_the_fuzzed_services_accepted_its_credentials_and_data() -> None:
    """Runs after the five above: a fuzzer whose every call is refused (a signer that went
    wrong, generated data the handlers never accept) would pass them all and test nothing."""
    print(dict(SECURED_ANSWERS))
    assert SECURED_ANSWERS, "no call with credentials was sent: run this module whole"
    assert {service for service, _ in PROBED} == set(SECURED_ANSWERS)
    for service, statuses in sorted(SECURED_ANSWERS.items()):
        successes = sum(count for status, count in statuses.items() if 200 <= status < 300)
        assert successes > 0, f"{service}: no call with credentials succeeded: {dict(statuses)}"
