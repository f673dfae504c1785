"""Webhook signatures of the providers we send through, as pure functions.

The provider sandbox signs its status callbacks with these and our webhook receiver verifies
with them, so one implementation serves both sides and is pinned to the providers' published
example vectors (tests/deliver/test_signatures.py). Every `verify_*` answers False, never
raises, on a missing or garbled header: a forged request must not turn into a 500 that the
sender then retries. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)

# Twilio's POST parameters: a plain mapping, or (name, value) pairs when a name repeats.
TwilioParams = Mapping[str, str] | Iterable[tuple[str, str]]


def _same(expected: str, given: str) -> bool:
    """Constant-time equality on bytes (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


# --- Meta (WhatsApp Cloud API) -----------------------------------------------------------------


def meta_signature(app_secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256`: HMAC-SHA256 of the raw body keyed with the App Secret."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_meta(app_secret: str, body: bytes, header: str | None) -> bool:
    if not header or not isinstance(header, str):
        return False
    scheme, _, digest = header.strip().partition("=")
    if scheme.lower() != "sha256" or not digest:
        return False
    return _same(meta_signature(app_secret, body), f"sha256={digest.lower()}")


# --- Twilio ------------------------------------------------------------------------------------


def _pairs(params: TwilioParams) -> list[tuple[str, str]]:
    """Names sorted, and a repeated name's distinct values sorted, as twilio-python does."""
    items = params.items() if isinstance(params, Mapping) else params
    grouped: dict[str, set[str]] = {}
    for name, value in items:
        grouped.setdefault(name, set()).add(value)
    return [(name, value) for name in sorted(grouped) for value in sorted(grouped[name])]


def twilio_signature(auth_token: str, url: str, params: TwilioParams) -> str:
    """`X-Twilio-Signature`: the URL as called (query included), then every POST parameter
    sorted by name as name+value, HMAC-SHA1 keyed with the Auth Token, base64."""
    payload = url + "".join(name + value for name, value in _pairs(params))
    mac = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def _with_netloc(parts: SplitResult, netloc: str) -> str:
    return parts._replace(netloc=netloc).geturl()


def _url_variants(url: str) -> list[str]:
    """The URL with and without its port: Twilio may sign either form (a proxy or load balancer
    adds or strips the default port), so twilio-python accepts both; so do we."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [url]
    host = parts.netloc.rsplit(":", 1)[0] if port else parts.netloc
    if port:
        return [url, _with_netloc(parts, host)]
    default = 443 if parts.scheme == "https" else 80
    return [url, _with_netloc(parts, f"{host}:{default}")]


def verify_twilio(auth_token: str, url: str, params: TwilioParams, header: str | None) -> bool:
    if not header or not isinstance(header, str):
        return False
    try:
        pairs = _pairs(params)
    except (TypeError, ValueError):
        return False
    given = header.strip()
    # Every variant is compared (no early exit) so timing does not tell which one matched.
    results = [_same(twilio_signature(auth_token, u, pairs), given) for u in _url_variants(url)]
    return any(results)


# --- SendGrid signed event webhook -------------------------------------------------------------


def sendgrid_keypair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A fresh P-256 key pair; the public half as SendGrid shows it (base64 DER)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    der = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return private_key, base64.b64encode(der).decode()


def sendgrid_sign(private_key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    """`X-Twilio-Email-Event-Webhook-Signature`: base64 DER ECDSA P-256/SHA-256 over
    timestamp + raw body (the timestamp header's exact text)."""
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


@lru_cache(maxsize=16)
def _sendgrid_public_key(public_key: str) -> ec.EllipticCurvePublicKey:
    """Parsing a key costs more than verifying with it; receivers reuse one key."""
    text = public_key.strip()
    if "BEGIN PUBLIC KEY" in text:
        key = load_pem_public_key(text.encode())
    else:
        key = load_der_public_key(base64.b64decode(text, validate=True))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve public key")
    return key


def verify_sendgrid(
    public_key_b64: str, timestamp: str | None, body: bytes, signature_b64: str | None
) -> bool:
    if not timestamp or not signature_b64 or not public_key_b64:
        return False
    try:
        key = _sendgrid_public_key(public_key_b64)
        signature = base64.b64decode(signature_b64.strip(), validate=True)
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, binascii.Error):
        return False
    return True


# --- Google RCS Business Messaging -------------------------------------------------------------


def rbm_signature(client_token: str, data: bytes) -> str:
    """`X-Goog-Signature`: base64 HMAC-SHA512 of the *decoded* Pub/Sub `message.data`, keyed
    with the webhook's client token."""
    mac = hmac.new(client_token.encode(), data, hashlib.sha512).digest()
    return base64.b64encode(mac).decode()


def verify_rbm(client_token: str, data: bytes, header: str | None) -> bool:
    if not header or not isinstance(header, str):
        return False
    return _same(rbm_signature(client_token, data), header.strip())
