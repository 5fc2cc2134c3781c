"""Secrets are scrubbed from text and payloads, including their base64 form."""

import base64
import logging

import pytest

from gateway.redact import MASK, Redactor, RedactingFilter


def test_known_secret_values_are_scrubbed_from_text() -> None:
    redactor = Redactor(["s3cr3t-value"])
    assert redactor.scrub("auth failed for s3cr3t-value") == f"auth failed for {MASK}"


def test_base64_of_a_secret_is_scrubbed_too() -> None:
    redactor = Redactor(["acme+pub:priv-key-123"])
    encoded = base64.b64encode(b"acme+pub:priv-key-123").decode()
    assert encoded.rstrip("=") not in redactor.scrub(f"Authorization: Basic {encoded}")


def test_secret_looking_keys_are_masked_in_payloads() -> None:
    payload = {"client_secret": "x", "nested": [{"password": "y", "text": "hello"}], "ApiKey": "z"}
    clean = Redactor().payload(payload)
    assert clean == {"client_secret": MASK, "nested": [{"password": MASK, "text": "hello"}], "ApiKey": MASK}


def test_payload_strings_lose_known_secrets_and_their_excess_length() -> None:
    redactor = Redactor(["s3cr3t-value"])
    clean = redactor.payload({"note": "key s3cr3t-value", "lines": ["s3cr3t-value", 7], "n": 3}, limit=20)
    assert clean == {"note": f"key {MASK}", "lines": [MASK, 7], "n": 3}
    assert redactor.payload("x" * 30, limit=20) == "x" * 20 + "…[30 chars]"


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    handler_filter = RedactingFilter(Redactor(["hunter2-secret"]))
    logger.addFilter(handler_filter)
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info("token is %s", "hunter2-secret")
    logger.removeFilter(handler_filter)
    assert "hunter2-secret" not in caplog.text and MASK in caplog.text
