"""Tests for edge.sigv4 against AWS's published test suite and botocore's own signer."""

from __future__ import annotations

import datetime

import pytest

from edge import sigv4

# From the AWS Signature Version 4 test suite (aws-sig-v4-test-suite), shared by all vectors.
SUITE_CREDENTIALS = sigv4.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_DATE = "20150830T123600Z"


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (
            "https://example.amazonaws.com/",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ],
    ids=["get-vanilla", "get-vanilla-query-order-key-case"],
)
def test_signature_matches_the_aws_test_suite(url: str, signature: str) -> None:
    """GIVEN an AWS test-suite request WHEN signing THEN the published Authorization results."""
    headers = sigv4.sign(
        method="GET",
        url=url,
        headers={},
        body=b"",
        region="us-east-1",
        service="service",
        credentials=SUITE_CREDENTIALS,
        amz_date=SUITE_DATE,
    )

    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )
    assert headers["X-Amz-Date"] == SUITE_DATE
    assert headers["Host"] == "example.amazonaws.com"


def test_dynamodb_query_signature_matches_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN a DynamoDB Query with a session token WHEN signing THEN botocore agrees exactly."""
    from botocore import auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    now = datetime.datetime(2026, 11, 22, 21, 56, 7)
    monkeypatch.setattr(auth, "get_current_datetime", lambda: now)
    url = "https://dynamodb.eu-west-1.amazonaws.com/"
    body = b'{"TableName": "edgeshift-routes"}'
    base = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.Query"}
    boto_request = AWSRequest(method="POST", url=url, data=body, headers=dict(base))
    auth.SigV4Auth(BotoCredentials("AKID", "SECRET", "TOKEN"), "dynamodb", "eu-west-1").add_auth(
        boto_request
    )

    ours = sigv4.sign(
        method="POST",
        url=url,
        headers=base,
        body=body,
        region="eu-west-1",
        service="dynamodb",
        credentials=sigv4.Credentials("AKID", "SECRET", "TOKEN"),
        amz_date=now.strftime("%Y%m%dT%H%M%SZ"),
    )

    assert ours["Authorization"] == boto_request.headers["Authorization"]
    assert ours["X-Amz-Security-Token"] == "TOKEN"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://dynamodb.us-east-1.amazonaws.com/", "dynamodb.us-east-1.amazonaws.com"),
        ("https://dynamodb.us-east-1.amazonaws.com:443/", "dynamodb.us-east-1.amazonaws.com"),
        ("http://127.0.0.1:80/", "127.0.0.1"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("http://[::1]:5000/", "[::1]:5000"),
    ],
)
def test_host_header_keeps_only_non_default_ports(url: str, host: str) -> None:
    """GIVEN an endpoint URL WHEN deriving Host THEN the port appears only if non-default."""
    assert sigv4.host_header(url) == host


def test_signing_key_is_the_documented_derivation() -> None:
    """GIVEN the IAM example secret WHEN deriving the key THEN the AWS docs' value results."""
    key = sigv4.signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam"
    )

    assert key.hex() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
