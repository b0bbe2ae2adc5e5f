"""Verifying PagerDuty v3 webhooks: ``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]``."""

from __future__ import annotations

import hashlib
import hmac


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """True when any ``v1=`` signature (several during secret rotation) matches the raw body."""
    if not secret or not header:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == "v1" and hmac.compare_digest(value.strip().lower(), expected):
            return True
    return False
