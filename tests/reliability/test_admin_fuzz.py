"""The admin API against its own OpenAPI document (schemathesis), side by side with the
real restate-server 1.7.12: every generated request goes to both, with the same TS test
services registered.

Checked on our answer to each request:

- no 5xx, except a registration whose discovery fails (500 META0003, what the real
  server answers to the same request);
- an error body in one of the real server's three shapes: JSON ``{"message",
  "restate_code"?}``, the framework's ``text/plain`` refusals (400 / 415 / 422), or an
  empty body (404 / 405 / 501);
- the same status and content type as the real server, except the differences listed in
  ``KNOWN_DIFFERENCES``;
- conformance to the document (status codes, content types, response schemas), except
  where the real server answers the same request the same way: those are the real
  server's own departures from its document, ``MIRRORED`` lists them.

Requests that would leave the machine are rewritten first: deployment URIs point at the
registered endpoint or at a closed loopback port (discovery then fails in 1.5 s, its
retries included), Lambda ARNs are made malformed and Google ID token auth is dropped
(the real server would call AWS and Google), Kafka bootstrap servers are loopback.

Quick mode: ``EXAMPLES`` per operation and generation mode; ``RESTATE_RELIABILITY_LONG=1``
runs ``LONG_EXAMPLES``. A second property test patches service settings with random
values on both servers (``test_service_patches_never_corrupt_a_service``).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.endpoints import TsEndpoint
from tests.support.http import call, request
from tests.support.ports import LOOPBACK, free_port
from tests.support.server import RealRestateServerProcess, RestateServerProcess

Server = RestateServerProcess | RealRestateServerProcess
LONG = os.environ.get("RESTATE_RELIABILITY_LONG") == "1"
EXAMPLES = 20
LONG_EXAMPLES = 200
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# listed in the document, not served by us (404, empty body): the rule store and the
# virtual queues of 1.7's experimental vqueues feature
NOT_SERVED = {
    "PUT /limits/rules",
    "POST /limits/rules/bulk-delete",
    "POST /vqueues/{vqueue_id}/pause",
    "POST /vqueues/{vqueue_id}/resume",
}
# operations that run discovery: a refused connection is 500 META0003 on both servers
DISCOVERING = {"POST /deployments", "PATCH /deployments/{deployment}"}
# (check failure, status, content type) that the real server shows on the same request:
# its framework's text/plain refusals and statuses its document does not list
MIRRORED = {
    ("UndefinedContentType", 400, "text/plain"),  # a bad path parameter or query string
    ("UndefinedStatusCode", 422, "text/plain"),  # JSON of the wrong shape
    ("UndefinedStatusCode", 400, "text/plain"),  # a body that is not JSON
    ("UndefinedStatusCode", 400, "application/json"),  # POST /query: a bad query
}


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str  # the essence, "" when there is none
    body: bytes

    @property
    def kind(self) -> tuple[int, str]:
        return self.status, self.content_type

    def message(self) -> str:
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return ""
        return parsed.get("message", "") if isinstance(parsed, dict) else ""


def _answer(response: schemathesis.Response) -> Answer:
    values = response.headers.get("content-type") or [""]
    return Answer(response.status_code, values[0].split(";")[0].strip(), response.content)


def _bad_scope(label: str, body: Any, ours: Answer, real: Answer) -> bool:
    # the real server answers 500 for a scope it cannot use; the request is at fault
    return (
        label == "POST /services/{service}/state"
        and real.status == 500
        and real.message().startswith("bad scope:")
        and ours.status == 400
        and ours.message() == real.message()
    )


def _kafka_unsupported(label: str, body: Any, ours: Answer, real: Answer) -> bool:
    # no Kafka here: what the real server accepts (a cluster, then subscriptions to it)
    # ours refuses, or does not find; a cluster it created earlier is a 409 there
    kafka = label.split(" ")[1].startswith(("/kafka-clusters", "/subscriptions"))
    accepted = real.status < 300 or "already exists" in real.message()
    return kafka and accepted and ours.status in (400, 404)


def _array_body(label: str, body: Any, ours: Answer, real: Answer) -> bool:
    # serde also reads a struct from a JSON array of its fields in order (the real server
    # then finds no service, or too many values); we read only objects there (422)
    return isinstance(body, list) and ours.kind == (422, "text/plain") and 0 < real.status < 500


def _trailing_garbage(label: str, body: Any, ours: Answer, real: Answer) -> bool:
    # a JSON value of the wrong type followed by garbage (``0vđ^=``): serde stops at the
    # type (422), we read the whole body first and stop at the garbage (400)
    return (
        ours.kind == (400, "text/plain")
        and b"trailing characters" in ours.body
        and real.kind == (422, "text/plain")
    )


def _real_drops(label: str, body: Any, ours: Answer, real: Answer) -> bool:
    # a duration just past its limit (175,307,616 hours) makes the real server's handler
    # panic: no answer at all; ours refuses it
    return real.status == 0 and ours.kind == (422, "text/plain")


KNOWN_DIFFERENCES: dict[str, Callable[[str, Any, Answer, Answer], bool]] = {
    "bad state scope: 400 here, 500 there": _bad_scope,
    "Kafka is not supported": _kafka_unsupported,
    "a request body as a JSON array": _array_body,
    "a wrong-typed JSON value before garbage": _trailing_garbage,
    "the real server drops the connection": _real_drops,
}
NO_ANSWER = Answer(0, "", b"")


def error_shape_problem(answer: Answer) -> str | None:
    """Why ``answer`` is not in one of the real admin API's error shapes, or None."""
    if answer.status < 400:
        return None
    if answer.content_type == "application/json":
        try:
            parsed = json.loads(answer.body)
        except ValueError:
            return "JSON error that is not JSON"
        if not isinstance(parsed, dict) or not isinstance(parsed.get("message"), str):
            return "JSON error without a message"
        if set(parsed) - {"message", "restate_code"}:
            return f"JSON error with other fields: {sorted(parsed)}"
        if not isinstance(parsed.get("restate_code"), str | None):
            return "restate_code is not a string"
        return None
    if answer.content_type == "text/plain":
        ok = answer.status in (400, 415, 422) and answer.body
        return None if ok else "text/plain error outside the framework's refusals"
    if answer.content_type == "":
        ok = answer.status in (404, 405, 501) and not answer.body
        return None if ok else "an empty-bodied error with a body or another status"
    return f"error content type {answer.content_type}"


@dataclass
class Tally:
    """What one operation's examples got, for the figures and the report."""

    examples: int = 0
    seconds: float = 0.0
    ours: collections.Counter[int] = field(default_factory=collections.Counter)
    same: int = 0
    known: collections.Counter[str] = field(default_factory=collections.Counter)
    mirrored: collections.Counter[tuple[str, int, str]] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)


@dataclass
class Pair:
    ours: RestateServerProcess
    real: RealRestateServerProcess
    endpoint: TsEndpoint

    @property
    def servers(self) -> dict[str, Server]:
        return {"ours": self.ours, "real": self.real}


@pytest.fixture
def pair(
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> Iterator[Pair]:
    endpoint = ts_endpoint()
    both = Pair(server(), real_server(), endpoint)
    for srv in both.servers.values():
        assert srv.register(endpoint.url).status in (200, 201)
    yield both
    # whatever was sent, our server is still up, serving and describing valid services
    assert request("GET", both.ours.admin_url + "/health").status == 200
    assert call(both.ours.ingress_url, "/Greeter/greet", "still").json() == "Hello, still!"


def _safe_body(body: Any, uri: str) -> Any:
    """``body`` with nothing in it that would make a server call outside the machine."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if "uri" in body:
        body["uri"] = uri
    if "arn" in body:
        body["arn"] = "not-an-arn"  # a well-formed ARN would have the real server call AWS
    if isinstance(body.get("auth"), dict):
        del body["auth"]  # GoogleIdToken auth would have it fetch a token from Google
    if isinstance(body.get("properties"), dict):
        body["properties"] = {"bootstrap.servers": f"{LOOPBACK}:9"}
    return body


def _load_schema(pair: Pair) -> schemathesis.BaseSchema:
    served = request("GET", pair.ours.admin_url + "/openapi")
    assert served.status == 200 and served.headers["content-type"] == "application/json"
    document = json.loads(served.body)
    # both variants of the update request have only optional fields, so every object
    # matches both and ``oneOf`` (exactly one) rejects nearly all generated bodies: the
    # real server reads it as an untagged enum, i.e. ``anyOf``
    update = document["components"]["schemas"]["UpdateDeploymentRequest"]
    update["anyOf"] = update.pop("oneOf")
    schema = schemathesis.openapi.from_dict(document)
    uris = [pair.endpoint.url, f"http://{LOOPBACK}:{free_port()}/"]

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
        return st.sampled_from(uris).map(lambda uri: _safe_body(body, uri))

    return schema


def _probe(pair: Pair, label: str, case: Any, tally: Tally) -> None:
    answers: dict[str, Answer] = {}
    responses: dict[str, schemathesis.Response] = {}
    for which, srv in pair.servers.items():
        if which == "real" and label in NOT_SERVED:
            continue
        try:
            responses[which] = case.call(base_url=srv.admin_url, timeout=30)
        except requests.ConnectionError:
            if which == "ours":
                raise
            answers[which] = NO_ANSWER
            continue
        answers[which] = _answer(responses[which])
    ours = answers["ours"]
    tally.examples += 1
    tally.ours[ours.status] += 1
    curl = case.as_curl_command()[:600]
    shape = error_shape_problem(ours)
    if shape is not None:
        tally.problems.append(f"{shape}: {ours.status} {ours.body[:200]!r} for {curl}")
    if label in NOT_SERVED:
        if ours.kind != (404, ""):
            tally.problems.append(f"not served, yet {ours.kind} for {curl}")
        return
    real = answers["real"]
    if ours.status >= 500:
        discovery = label in DISCOVERING and "META0003" in ours.message()
        if not (discovery and real.status >= 500):
            tally.problems.append(f"5xx {ours.body[:200]!r} (real: {real.kind}) for {curl}")
    known = [
        name for name, is_it in KNOWN_DIFFERENCES.items() if is_it(label, case.body, ours, real)
    ]
    if ours.kind == real.kind:
        tally.same += 1
    else:
        if known:
            tally.known[known[0]] += 1
        else:
            tally.problems.append(
                f"ours {ours.kind} {ours.body[:160]!r}, real {real.kind} {real.body[:160]!r} "
                f"for {curl}"
            )
    try:
        case.validate_response(responses["ours"], checks=CHECKS)
    except FailureGroup as group:
        for failure in group.exceptions:
            if type(failure).__name__ == "ServerError":
                continue  # 5xx are judged above
            key = (type(failure).__name__, ours.status, ours.content_type)
            # the real server's own departure (or one it shows on other requests, for a
            # known difference)
            if key in MIRRORED and (ours.kind == real.kind or known):
                tally.mirrored[key] += 1
            else:
                tally.problems.append(f"{key} {failure.title} for {curl}")


def _run_operation(pair: Pair, operation: Any, mode: GenerationMode, examples: int) -> Tally:
    tally = Tally()

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same requests on every run: a finding reproduces
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        _probe(pair, operation.label, case, tally)

    started = time.monotonic()
    # Unsatisfiable: nothing to make negative (no parameters, no body); positive mode has it
    with contextlib.suppress(Unsatisfiable):
        run()
    tally.seconds = time.monotonic() - started
    return tally


def _report(mode: GenerationMode, tallies: dict[str, Tally], seconds: float) -> str:
    lines = [f"schemathesis {mode.value}: {seconds:.0f} s"]
    for label, tally in tallies.items():
        statuses = ", ".join(f"{s}x{n}" for s, n in sorted(tally.ours.items()))
        known = sum(tally.known.values())
        mirrored = sum(tally.mirrored.values())
        lines.append(
            f"  {label}: {tally.examples} examples in {tally.seconds:.1f} s, ours {statuses}; "
            f"same as real {tally.same}, "
            f"known differences {known}, mirrored departures {mirrored}"
        )
    known_total: collections.Counter[str] = collections.Counter()
    mirrored_total: collections.Counter[tuple[str, int, str]] = collections.Counter()
    for tally in tallies.values():
        known_total.update(tally.known)
        mirrored_total.update(tally.mirrored)
    lines.append(f"  known differences: {dict(known_total)}")
    lines.append(f"  mirrored departures: {dict(mirrored_total)}")
    return "\n".join(lines)


def _negative_possible(document: dict[str, Any], label: str) -> bool:
    """Whether a request can break the document's rules: it has a body or a query (any
    string is a valid path parameter); hypothesis spends seconds proving it otherwise."""
    method, path = label.split(" ", 1)
    spec = document["paths"][path][method.lower()]
    return "requestBody" in spec or any(p["in"] == "query" for p in spec.get("parameters", []))


@pytest.mark.timeout(3000 if LONG else 600)
def test_every_operation_against_the_document_and_the_real_server(pair: Pair) -> None:
    schema = _load_schema(pair)
    examples = LONG_EXAMPLES if LONG else EXAMPLES
    problems: list[str] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        started = time.monotonic()
        tallies: dict[str, Tally] = {}
        for result in schema.get_all_operations():
            operation = result.ok()
            if mode is GenerationMode.NEGATIVE and not _negative_possible(
                schema.raw_schema, operation.label
            ):
                continue
            tallies[operation.label] = _run_operation(pair, operation, mode, examples)
        print(_report(mode, tallies, time.monotonic() - started))
        problems += [f"{label}: {p}" for label, t in tallies.items() for p in t.problems]
        if mode is GenerationMode.POSITIVE:
            assert len(tallies) == 37  # every operation of the document
            # the examples reached past the first refusals, to discovery
            assert tallies["POST /deployments"].ours.keys() & {200, 201, 500}
    assert not problems, "\n".join(problems[:40])


# ---- service settings patched with random values --------------------------------------

VALID_DURATIONS = ["1h", "30m", "PT2H", "P1D", "2h 30m", "1 day", "10s", "0s", "0", "5 hours"]
VALID_DURATIONS += ["1w", "175307616h"]  # 175,307,616 hours: the longest the real one takes
BAD_DURATIONS = ["", "abc", "1", "-1h", "1h garbage", "PT", "99999999999h"]
DURATIONS = st.sampled_from(VALID_DURATIONS + BAD_DURATIONS)
SETTING = st.one_of(st.none(), DURATIONS, st.text(max_size=8), st.integers(), st.booleans())
FIELDS = (
    "idempotency_retention",
    "workflow_completion_retention",
    "journal_retention",
    "inactivity_timeout",
    "abort_timeout",
)
# half the patches hold only valid values (some still refused: a workflow retention on a
# service that is no workflow), half anything
VALID_PATCH = st.fixed_dictionaries(
    {},
    optional={
        "public": st.booleans(),
        **{name: st.one_of(st.none(), st.sampled_from(VALID_DURATIONS)) for name in FIELDS},
    },
)
ANY_PATCH = st.fixed_dictionaries(
    {},
    optional={
        "public": st.one_of(st.booleans(), st.none(), st.integers(0, 1), st.just("true")),
        **dict.fromkeys(FIELDS, SETTING),
    },
)
PATCH = st.one_of(VALID_PATCH, ANY_PATCH)
PATCH_SETTINGS = settings(
    max_examples=400 if LONG else 150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@functools.cache
def _document(admin_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(json.loads(request("GET", admin_url + "/openapi").body))


def _service(srv: Server, name: str) -> requests.Response:
    return requests.get(f"{srv.admin_url}/services/{name}", timeout=10)


def _comparable(service: dict[str, Any]) -> dict[str, Any]:
    # the real server lists handlers in no fixed order (a hash map)
    return {**service, "handlers": sorted(service["handlers"], key=lambda h: h["name"])}


@PATCH_SETTINGS
@given(name=st.sampled_from(["Greeter", "Counter", "Payment"]), patch=PATCH)
def test_service_patches_never_corrupt_a_service(
    pair: Pair, name: str, patch: dict[str, Any]
) -> None:
    """A patch is applied whole or refused whole with a 4xx; the service is then still a
    valid document; both servers answer the same status and show the same settings."""
    get_op = _document(pair.ours.admin_url)["/services/{service}"]["GET"]
    shown: dict[str, Any] = {}
    statuses: dict[str, int] = {}
    try:
        for which, srv in pair.servers.items():
            before = _service(srv, name)
            assert before.status_code == 200, (which, before.status_code, before.text)
            patched = requests.patch(f"{srv.admin_url}/services/{name}", json=patch, timeout=10)
            after = _service(srv, name)
            assert after.status_code == 200, (which, after.status_code, after.text)
            get_op.validate_response(after)
            statuses[which] = patched.status_code
            if patched.status_code == 200:
                assert _comparable(patched.json()) == _comparable(after.json()), which
                if isinstance(patch.get("public"), bool):
                    assert after.json()["public"] is patch["public"], which
            else:
                assert patched.status_code in (400, 422), (which, patched.status_code, patched.text)
                assert _comparable(after.json()) == _comparable(before.json()), (
                    which,
                    "a refused patch changed the service",
                )
            shown[which] = {key: after.json().get(key) for key in patch}
    finally:
        # keep the services callable for the next examples and the fixture's last greet
        for srv in pair.servers.values():
            requests.patch(f"{srv.admin_url}/services/{name}", json={"public": True}, timeout=10)
    # shown by --hypothesis-show-statistics
    event(f"ours {statuses['ours']}, real {statuses['real']}")
    assert statuses["ours"] == statuses["real"], (patch, statuses)
    assert shown["ours"] == shown["real"], (patch, shown)
