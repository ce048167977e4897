"""The Lambda@Edge events from AWS's documentation, as published, for the shape tests.

Source: Amazon CloudFront Developer Guide, "Lambda@Edge event structure"
(docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-event-structure.html):
the "Example viewer request", "Example origin request", "Example origin response" and
"Example viewer response" objects, and the S3 ``origin`` object of the same page's request
event listing (``authMethod``, ``region``, ``customHeaders``). Each function returns a fresh
copy, since handlers edit events in place.
"""

from __future__ import annotations

import copy
from typing import Any

DISTRIBUTION_HOST = "d111111abcdef8.cloudfront.net"
REQUEST_ID = "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ=="


def _config(event_type: str) -> dict[str, str]:
    return {
        "distributionDomainName": DISTRIBUTION_HOST,
        "distributionId": "EDFDVBD6EXAMPLE",
        "eventType": event_type,
        "requestId": REQUEST_ID,
    }


_VIEWER_REQUEST: dict[str, Any] = {
    "clientIp": "203.0.113.178",
    "headers": {
        "host": [{"key": "Host", "value": DISTRIBUTION_HOST}],
        "user-agent": [{"key": "User-Agent", "value": "curl/7.66.0"}],
        "accept": [{"key": "accept", "value": "*/*"}],
    },
    "method": "GET",
    "querystring": "",
    "uri": "/",
}

_ORIGIN_REQUEST: dict[str, Any] = {
    "clientIp": "203.0.113.178",
    "headers": {
        "x-forwarded-for": [{"key": "X-Forwarded-For", "value": "203.0.113.178"}],
        "user-agent": [{"key": "User-Agent", "value": "Amazon CloudFront"}],
        "via": [
            {
                "key": "Via",
                "value": "2.0 2afae0d44e2540f472c0635ab62c232b.cloudfront.net (CloudFront)",
            }
        ],
        "host": [{"key": "Host", "value": "example.org"}],
        "cache-control": [{"key": "Cache-Control", "value": "no-cache, cf-no-cache"}],
    },
    "method": "GET",
    "origin": {
        "custom": {
            "customHeaders": {},
            "domainName": "example.org",
            "keepaliveTimeout": 5,
            "path": "",
            "port": 443,
            "protocol": "https",
            "readTimeout": 30,
            "sslProtocols": ["TLSv1", "TLSv1.1", "TLSv1.2"],
        }
    },
    "querystring": "",
    "uri": "/",
}

S3_ORIGIN: dict[str, Any] = {
    "s3": {
        "authMethod": "origin-access-identity",
        "customHeaders": {
            "my-origin-custom-header": [{"key": "My-Origin-Custom-Header", "value": "Test"}]
        },
        "domainName": "my-bucket.s3.amazonaws.com",
        "path": "/s3_path",
        "region": "us-east-1",
    }
}


def _response(with_age: bool, date: str) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "access-control-allow-credentials": [
            {"key": "Access-Control-Allow-Credentials", "value": "true"}
        ],
        "access-control-allow-origin": [{"key": "Access-Control-Allow-Origin", "value": "*"}],
        "date": [{"key": "Date", "value": date}],
        "referrer-policy": [{"key": "Referrer-Policy", "value": "no-referrer-when-downgrade"}],
        "server": [{"key": "Server", "value": "ExampleCustomOriginServer"}],
        "x-content-type-options": [{"key": "X-Content-Type-Options", "value": "nosniff"}],
        "x-frame-options": [{"key": "X-Frame-Options", "value": "DENY"}],
        "x-xss-protection": [{"key": "X-XSS-Protection", "value": "1; mode=block"}],
    }
    if with_age:
        headers["age"] = [{"key": "Age", "value": "2402"}]
    headers["content-type"] = [{"key": "Content-Type", "value": "text/html; charset=utf-8"}]
    headers["content-length"] = [{"key": "Content-Length", "value": "9593"}]
    return {"headers": headers, "status": "200", "statusDescription": "OK"}


def _event(cf: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [{"cf": copy.deepcopy(cf)}]}


def viewer_request() -> dict[str, Any]:
    return _event({"config": _config("viewer-request"), "request": _VIEWER_REQUEST})


def origin_request_custom() -> dict[str, Any]:
    return _event({"config": _config("origin-request"), "request": _ORIGIN_REQUEST})


def origin_request_s3() -> dict[str, Any]:
    event = origin_request_custom()
    request = event["Records"][0]["cf"]["request"]
    request["origin"] = copy.deepcopy(S3_ORIGIN)
    request["headers"]["host"] = [{"key": "Host", "value": "my-bucket.s3.amazonaws.com"}]
    return event


def origin_response() -> dict[str, Any]:
    return _event(
        {
            "config": _config("origin-response"),
            "request": _ORIGIN_REQUEST,
            "response": _response(False, "Mon, 13 Jan 2020 20:12:38 GMT"),
        }
    )


def viewer_response() -> dict[str, Any]:
    return _event(
        {
            "config": _config("viewer-response"),
            "request": _VIEWER_REQUEST,
            "response": _response(True, "Mon, 13 Jan 2020 20:14:56 GMT"),
        }
    )


ALL = {
    "viewer-request": viewer_request,
    "origin-request-custom": origin_request_custom,
    "origin-request-s3": origin_request_s3,
    "origin-response": origin_response,
    "viewer-response": viewer_response,
}
