"""Lambda entry point of the REST API (API Gateway REST, proxy integration, IAM auth)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from .app import MAX_BODY_BYTES, app
from .problems import problem

logger = Logger(service="edgeshift-api")


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = event.get("body") or ""
    if len(body.encode() if isinstance(body, str) else body) > MAX_BODY_BYTES:
        response = problem(413, "too-large", f"the body is over {MAX_BODY_BYTES} bytes")
        return {
            "statusCode": 413,
            "headers": {"Content-Type": response.content_type},
            "body": response.body,
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)
