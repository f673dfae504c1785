"""Webhook signatures against the providers' own published example vectors (Twilio, SendGrid),
and round trips plus tampering where a provider publishes none (Meta, Google RBM)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from tasks.deliver.signatures import (
    meta_signature,
    rbm_signature,
    sendgrid_keypair,
    sendgrid_sign,
    twilio_signature,
    verify_meta,
    verify_rbm,
    verify_sendgrid,
    verify_twilio,
)

# --- Twilio -------------------------------------------------------------------------------------
# Vectors copied from twilio/twilio-python, tests/unit/test_request_validator.py (ValidationTest);
# the same URL, token, parameters and signature are in TwilioDevEd/api-snippets,
# security/signature_validation/signature_validation.2.x.js.
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
TWILIO_EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
TWILIO_DUPLICATE_EXPECTED = "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_twilio_published_vector() -> None:
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS) == TWILIO_EXPECTED
    assert verify_twilio(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED)


def test_twilio_published_vector_with_a_repeated_parameter() -> None:
    # twilio-python's test_compute_signature_duplicate_multi_dict.
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, params) == TWILIO_DUPLICATE_EXPECTED


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        # test_validation_removes_port_on_https: signed without the port, called with it.
        ("https://mycompany.com:1234/myapp.php?foo=1&bar=2", TWILIO_EXPECTED),
        # test_validation_removes_port_on_http: "hash of http uri with port 1234".
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        # test_validation_adds_port_on_https: "hash of uri with port 443".
        (TWILIO_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        # test_validation_adds_port_on_http: "hash of uri with port 80".
        ("http://mycompany.com/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
    ],
)
def test_twilio_published_port_variants(url: str, signature: str) -> None:
    assert verify_twilio(TWILIO_TOKEN, url, TWILIO_PARAMS, signature)


@pytest.mark.parametrize(
    "change",
    ["token", "url", "param", "extra_param", "header_missing", "header_empty", "header_garbage"],
)
def test_twilio_rejects_tampering(change: str) -> None:
    token, url, params = TWILIO_TOKEN, TWILIO_URL, dict(TWILIO_PARAMS)
    header: str | None = TWILIO_EXPECTED
    if change == "token":
        token = "54321"
    elif change == "url":
        url = url.replace("foo=1", "foo=2")
    elif change == "param":
        params["Digits"] = "9999"
    elif change == "extra_param":
        params["Extra"] = "x"
    elif change == "header_missing":
        header = None
    elif change == "header_empty":
        header = ""
    else:
        header = "ñot base64 at all \x00"
    assert not verify_twilio(token, url, params, header)


def test_twilio_garbled_url_is_false_not_an_error() -> None:
    assert not verify_twilio(TWILIO_TOKEN, "https://host:notaport/x", {}, TWILIO_EXPECTED)


# --- SendGrid -----------------------------------------------------------------------------------
# Vector copied from sendgrid/sendgrid-python, test/unit/test_eventwebhook.py (UnitTests).
SG_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw"
    "+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SG_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtE"
    "ZtM="
)
SG_TIMESTAMP = "1600112502"
SG_PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",  # noqa: E501
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"  # "Be sure to include the trailing carriage return and newline!"
).encode()
SG_OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7a"
    "NDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)
SG_BAD_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j"
    "/0="
)

# The earlier vector, in sendgrid/sendgrid-python test/test_eventwebhook.py and
# sendgrid/sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js.
SG_OLD_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhH"
    "PTnlvFYPAZFceEu/1FwCM/QmGUhA=="
)
SG_OLD_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j"
    "/0="
)
SG_OLD_TIMESTAMP = "1588788367"
SG_OLD_PAYLOAD = json.dumps(
    {"event": "test_event", "category": "example_payload", "message_id": "message_id"},
    sort_keys=True,
    separators=(",", ":"),
).encode()


def test_sendgrid_published_vectors() -> None:
    assert verify_sendgrid(SG_PUBLIC_KEY, SG_TIMESTAMP, SG_PAYLOAD, SG_SIGNATURE)
    assert verify_sendgrid(SG_OLD_PUBLIC_KEY, SG_OLD_TIMESTAMP, SG_OLD_PAYLOAD, SG_OLD_SIGNATURE)


def test_sendgrid_published_negative_cases() -> None:
    assert not verify_sendgrid(SG_OTHER_KEY, SG_TIMESTAMP, SG_PAYLOAD, SG_SIGNATURE)
    assert not verify_sendgrid(SG_PUBLIC_KEY, SG_TIMESTAMP, b"payload", SG_SIGNATURE)
    assert not verify_sendgrid(SG_PUBLIC_KEY, SG_TIMESTAMP, SG_PAYLOAD, SG_BAD_SIGNATURE)
    assert not verify_sendgrid(SG_PUBLIC_KEY, "timestamp", SG_PAYLOAD, SG_SIGNATURE)
    assert not verify_sendgrid(
        SG_OLD_PUBLIC_KEY, SG_OLD_TIMESTAMP, SG_OLD_PAYLOAD, SG_BAD_SIGNATURE
    )


def test_sendgrid_accepts_a_pem_key() -> None:
    lines = [SG_PUBLIC_KEY[i : i + 64] for i in range(0, len(SG_PUBLIC_KEY), 64)]
    pem = "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"
    assert verify_sendgrid(pem, SG_TIMESTAMP, SG_PAYLOAD, SG_SIGNATURE)


def test_sendgrid_round_trip_and_tampering() -> None:
    private_key, public_key = sendgrid_keypair()
    body = b'[{"event":"delivered","email":"ada@example.com"}]'
    signature = sendgrid_sign(private_key, "1700000000", body)
    assert verify_sendgrid(public_key, "1700000000", body, signature)
    assert not verify_sendgrid(public_key, "1700000001", body, signature)
    assert not verify_sendgrid(public_key, "1700000000", body + b" ", signature)
    _, other_public = sendgrid_keypair()
    assert not verify_sendgrid(other_public, "1700000000", body, signature)


@pytest.mark.parametrize(
    ("key", "timestamp", "signature"),
    [
        (SG_PUBLIC_KEY, None, SG_SIGNATURE),
        (SG_PUBLIC_KEY, SG_TIMESTAMP, None),
        (SG_PUBLIC_KEY, SG_TIMESTAMP, ""),
        (SG_PUBLIC_KEY, SG_TIMESTAMP, "%%% not base64 %%%"),
        (SG_PUBLIC_KEY, SG_TIMESTAMP, base64.b64encode(b"not DER").decode()),
        ("not a key", SG_TIMESTAMP, SG_SIGNATURE),
        ("", SG_TIMESTAMP, SG_SIGNATURE),
        (base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), SG_TIMESTAMP, SG_SIGNATURE),
    ],
)
def test_sendgrid_garbled_input_is_false_not_an_error(
    key: str, timestamp: str | None, signature: str | None
) -> None:
    assert not verify_sendgrid(key, timestamp, SG_PAYLOAD, signature)


# --- Meta ---------------------------------------------------------------------------------------
# Meta publishes no example vector; the expected value is computed independently with hmac.


def test_meta_round_trip_and_independent_value() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    header = meta_signature("app-secret", body)
    assert header == "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert verify_meta("app-secret", body, header)
    assert verify_meta("app-secret", body, header.upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256=", "sha1=abc", "garbage", "sha256=zz\u00e9", "sha256=" + "0" * 64],
)
def test_meta_rejects_missing_or_garbled_headers(header: str | None) -> None:
    assert not verify_meta("app-secret", b"{}", header)


def test_meta_rejects_tampered_body_and_wrong_secret() -> None:
    header = meta_signature("app-secret", b'{"a":1}')
    assert not verify_meta("app-secret", b'{"a":2}', header)
    assert not verify_meta("other-secret", b'{"a":1}', header)


# --- Google RBM ---------------------------------------------------------------------------------
# Google publishes no example vector; the expected value is computed independently with hmac.


def test_rbm_round_trip_over_decoded_data() -> None:
    event = b'{"eventType":"DELIVERED","messageId":"m-1"}'
    envelope_data = base64.b64encode(event)  # what arrives in message.data
    header = rbm_signature("client-token", event)
    expected = hmac.new(b"client-token", event, hashlib.sha512).digest()
    assert header == base64.b64encode(expected).decode()
    assert verify_rbm("client-token", base64.b64decode(envelope_data), header)
    assert not verify_rbm("client-token", envelope_data, header)  # signed over decoded data


@pytest.mark.parametrize("header", [None, "", "garbage", "\u00e9\u00e9", "c2lnbmF0dXJl"])
def test_rbm_rejects_missing_or_garbled_headers(header: str | None) -> None:
    assert not verify_rbm("client-token", b"{}", header)


def test_rbm_rejects_tampered_data_and_wrong_token() -> None:
    header = rbm_signature("client-token", b'{"a":1}')
    assert not verify_rbm("client-token", b'{"a":2}', header)
    assert not verify_rbm("other-token", b'{"a":1}', header)
