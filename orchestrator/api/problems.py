"""Errors as ``application/problem+json`` (RFC 9457), each naming the fields at fault."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, slug: str, detail: str, errors: list[dict[str, str]] | None = None
) -> Response[str]:
    body: dict[str, Any] = {
        "type": f"urn:edgeshift:problem:{slug}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return Response(status_code=status, content_type=PROBLEM_JSON, body=json.dumps(body))


def field_errors(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"field": field, "message": message} for field, message in pairs]


def location(loc: tuple[Any, ...] | list[Any]) -> str:
    """Powertools/pydantic locations, e.g. ('body', 'stages', 1, 'weight') -> stages.1.weight."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "(body)"
