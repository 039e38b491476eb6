"""Request bodies and client rules of our CLI, as the real CLI 1.7.12 sends them."""

from __future__ import annotations

import json

from restate_cli.client import HttpResponse, _choose_api_version, error_message
from restate_cli.commands.deployment_register import normalize_uri, register_body
from restate_cli.commands.service_config import patch_body
from restate_cli.errors import ApiError


def test_register_body_matches_the_captured_one() -> None:
    body = register_body(
        "http://127.0.0.1:39080/",
        headers=None,
        metadata=None,
        use_http_11=False,
        breaking=False,
        force=False,
        dry_run=True,
    )
    assert json.dumps(body, separators=(",", ":")) == (
        '{"uri":"http://127.0.0.1:39080/","additional_headers":null,"use_http_11":false,'
        '"breaking":false,"force":false,"dry_run":true}'
    )
    flags = register_body(
        "http://127.0.0.1:44099/",
        headers={"x-a": "b", "x-c": "d"},
        metadata={"k": "v"},
        use_http_11=True,
        breaking=True,
        force=True,
        dry_run=True,
    )
    assert json.dumps(flags, separators=(",", ":")) == (
        '{"uri":"http://127.0.0.1:44099/","additional_headers":{"x-a":"b","x-c":"d"},'
        '"metadata":{"k":"v"},"use_http_11":true,"breaking":true,"force":true,"dry_run":true}'
    )
    lam = register_body(
        "arn:aws:lambda:eu:1:function:f",
        headers=None,
        metadata=None,
        use_http_11=False,
        breaking=False,
        force=False,
        dry_run=False,
        assume_role_arn="arn:aws:iam::1:role/r",
    )
    assert lam["arn"] == "arn:aws:lambda:eu:1:function:f" and "uri" not in lam


def test_uri_normalisation() -> None:
    assert normalize_uri("http://127.0.0.1:39080") == "http://127.0.0.1:39080/"
    assert normalize_uri("http://127.0.0.1:39080/") == "http://127.0.0.1:39080/"
    assert normalize_uri("http://h:1/base") == "http://h:1/base"
    assert normalize_uri("arn:aws:lambda:x") == "arn:aws:lambda:x"


def test_service_patch_body_has_all_six_keys() -> None:
    body = patch_body({"idempotency_retention": "2h", "inactivity_timeout": "1m 30s"})
    assert json.dumps(body, separators=(",", ":")) == (
        '{"public":null,"idempotency_retention":"2h","workflow_completion_retention":null,'
        '"journal_retention":null,"inactivity_timeout":"1m 30s","abort_timeout":null}'
    )


def test_api_version_choice() -> None:
    assert _choose_api_version(2, 4) == 4
    assert _choose_api_version(2, 9) == 4
    assert _choose_api_version(1, 3) == 3
    assert _choose_api_version(5, 9) is None
    assert _choose_api_version(None, None) is None


def _response(status: int, body: bytes, content_type: str) -> HttpResponse:
    return HttpResponse(status, "Not Found", {"content-type": content_type}, body, "http://x/v4/a")


def test_error_messages_come_from_the_server() -> None:
    json_error = _response(
        404,
        b'{"message":"The requested service \'Nope\' does not exist","restate_code":null}',
        "application/json",
    )
    assert error_message(json_error) == "The requested service 'Nope' does not exist"
    text_error = _response(
        415, b"Expected request with `Content-Type: application/json`", "text/plain"
    )
    assert error_message(text_error).startswith("Expected request")
    assert error_message(_response(501, b"", "")) == ""
    err = ApiError(404, "Not Found", "The requested service 'Nope' does not exist", "http://x/v4/a")
    assert err.message == (
        "The requested service 'Nope' does not exist (HTTP 404 Not Found at http://x/v4/a)"
    )
    assert "\n" not in err.message
