"""AWS Signature Version 4 for a single request, with hashlib and hmac only.

botocore's signer costs ~110 ms of imports, which a viewer-request cold start cannot afford;
the edge signs the few requests it makes itself.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Credentials:
    """An access key pair and, for temporary credentials, the session token."""

    __slots__ = ("access_key", "secret_key", "token")

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token


def sign(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    region: str,
    service: str,
    credentials: Credentials,
    amz_date: str,
) -> dict[str, str]:
    """Return ``headers`` plus Host, X-Amz-Date, the session token and Authorization.

    ``amz_date`` is the request time as ``YYYYMMDDTHHMMSSZ``; it is a parameter so that
    known test vectors can be reproduced.
    """
    signed = dict(headers)
    signed["Host"] = host_header(url)
    signed["X-Amz-Date"] = amz_date
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token
    canonical_request, signed_names = _canonical_request(method, url, signed, body)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    key = signing_key(credentials.secret_key, amz_date[:8], region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return signed


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """Derive the per-day, per-region, per-service key from the secret access key."""
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def host_header(url: str) -> str:
    """The Host value for ``url``: the port is kept only when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        return f"{host}:{parts.port}"
    return host


def _canonical_request(
    method: str, url: str, headers: dict[str, str], body: bytes
) -> tuple[str, str]:
    parts = urlsplit(url)
    canonical_headers, signed_names = _canonical_headers(headers)
    request = "\n".join(
        (
            method.upper(),
            quote(parts.path or "/", safe="/~"),
            _canonical_query(parts.query),
            canonical_headers,
            signed_names,
            hashlib.sha256(body).hexdigest(),
        )
    )
    return request, signed_names


def _canonical_headers(headers: dict[str, str]) -> tuple[str, str]:
    normalized = {name.lower().strip(): " ".join(value.split()) for name, value in headers.items()}
    names = sorted(normalized)
    lines = "".join(f"{name}:{normalized[name]}\n" for name in names)
    return lines, ";".join(names)


def _canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)
