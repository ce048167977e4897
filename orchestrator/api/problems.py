"""Errors as ``application/problem+json`` (RFC 9457), each naming the fields at fault."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the fields at fault in ``errors``."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


def documented(
    ok: type[BaseModel],
    *statuses: int,
    ok_status: int = 200,
    links: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
) -> dict[int, OpenAPIResponse]:
    """OpenAPI entries for a route: its success body (with ``links`` to what may follow)
    and the problems it can answer with (422 always). Powertools documents only 200 and
    422 unless told."""
    success: OpenAPIResponse = {
        "description": HTTPStatus(ok_status).phrase,
        "content": {"application/json": {"model": ok}},
    }
    if links:
        success["links"] = links
    if headers:
        success["headers"] = headers
    responses: dict[int, OpenAPIResponse] = {ok_status: success}
    for status in sorted({*statuses, 422}):
        responses[status] = {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"model": Problem}},
        }
    return responses


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
    """Powertools/pydantic locations, e.g. ('body', 'stages', 1, 'weight') -> stages.1.weight;
    a parameter is named as sent, e.g. ('header', 'Idempotency-Key') -> Idempotency-Key."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("query", "path", "header") and len(parts) > 1:
        return ".".join(parts[1:])
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"
