"""Verifying Amazon SNS HTTP(S) messages (signature versions 1 and 2).

The certificate is taken only from an ``https://sns.<region>.amazonaws.com/…pem`` URL (or the
same file name in ``OMNI_SNS_CERT_DIR`` for air-gapped installs) and cached; the signature is
checked over the canonical string of the signed fields; messages older than
``OMNI_SNS_MAX_AGE_S`` are refused.  Any failure raises :class:`SnsRejected` with the reason.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

logger = logging.getLogger(__name__)

CERT_URL = re.compile(r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[A-Za-z0-9._-]+\.pem$")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


class SnsRejected(Exception):
    """The message is not a genuine, fresh SNS message; ``reason`` is the metric's label."""

    def __init__(self, message: str, reason: str = "signature") -> None:
        super().__init__(message)
        self.reason = reason


def _field(message: dict[str, Any], name: str) -> Any:
    # Lambda events spell these SigningCertUrl / UnsubscribeUrl / SubscribeUrl
    return message.get(name, message.get(name.replace("URL", "Url")))


def canonical(message: dict[str, Any]) -> bytes:
    kind = message.get("Type")
    if kind not in _FIELDS:
        raise SnsRejected(f"unknown message Type {kind!r}", "malformed")
    parts = []
    for name in _FIELDS[kind]:
        value = _field(message, name)
        if value is None:
            if name == "Subject":
                continue
            raise SnsRejected(f"missing signed field {name}", "malformed")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


class CertificateStore:
    def __init__(self, cert_dir: Path | None = None, fetch: Any = None) -> None:
        self.cert_dir = cert_dir
        self._fetch = fetch or _https_get
        self._cache: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> x509.Certificate:
        if not CERT_URL.match(url or ""):
            raise SnsRejected(
                f"certificate URL not on sns.<region>.amazonaws.com: {url!r}", "cert_url"
            )
        with self._lock:
            cert = self._cache.get(url)
        if cert is not None:
            return cert
        name = urlparse(url).path.rsplit("/", 1)[-1]
        local = self.cert_dir / name if self.cert_dir else None
        pem = local.read_bytes() if local and local.is_file() else self._fetch(url)
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise SnsRejected(f"certificate at {url} is not a PEM certificate") from exc
        with self._lock:
            self._cache[url] = cert
        return cert


def _https_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: bytes = response.read(64 * 1024)
        return data


def verify(
    message: dict[str, Any],
    store: CertificateStore,
    *,
    max_age_s: int = 3600,
    check_cert_dates: bool = True,
    now: datetime | None = None,
) -> None:
    """Raise :class:`SnsRejected` unless ``message`` is signed by SNS and fresh enough."""
    version = str(message.get("SignatureVersion", ""))
    if version not in ("1", "2"):
        raise SnsRejected(f"unknown SignatureVersion {version!r}", "signature_version")
    cert = store.get(str(_field(message, "SigningCertURL") or ""))
    now = now or datetime.now(UTC)
    if check_cert_dates and not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise SnsRejected("signing certificate is not valid now")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except ValueError as exc:
        raise SnsRejected("signature is not base64") from exc
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsRejected("signing certificate does not hold an RSA key")
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    try:
        key.verify(signature, canonical(message), padding.PKCS1v15(), digest)
    except InvalidSignature as exc:
        raise SnsRejected("signature does not match the message") from exc
    if max_age_s:
        try:
            sent = datetime.fromisoformat(str(message.get("Timestamp", "")).replace("Z", "+00:00"))
        except ValueError as exc:
            raise SnsRejected("unreadable Timestamp") from exc
        age = (now - sent).total_seconds()
        if age > max_age_s:
            raise SnsRejected(f"message is {age:.0f}s old (limit {max_age_s}s)", "stale")


def subscribe_url_ok(url: str) -> bool:
    parsed = urlparse(url or "")
    host = parsed.hostname or ""
    return parsed.scheme == "https" and (
        host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")
    )
