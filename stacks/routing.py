"""Attach the edge functions to the cache behaviours that serve a rollout, and only those.

The seed's lesson: every request through a behaviour with Lambda@Edge pays for an invocation
and its latency. Entry points and versioned bundles need routing; images and fonts do not, so
they stay on a plain behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

_EVENT_TYPES = {
    "ViewerRequest": cloudfront.LambdaEdgeEventType.VIEWER_REQUEST,
    "OriginRequest": cloudfront.LambdaEdgeEventType.ORIGIN_REQUEST,
    "ViewerResponse": cloudfront.LambdaEdgeEventType.VIEWER_RESPONSE,
}


class RolloutRouting(Construct):
    """A cache policy keyed on the variant, and behaviours that run the edge functions.

    `behavior(origin)` gives the options for one routed path pattern; `attach()` adds such a
    behaviour to a distribution this app (or the user's own CDK code) owns.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        versions: Mapping[str, lambda_.IVersion],
        variant_header: str,
        forwarded_headers: Sequence[str] = (),
        flag_viewer_request: lambda_.IVersion | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        unknown = versions.keys() - _EVENT_TYPES.keys()
        if unknown or not {"ViewerRequest", "OriginRequest"} <= versions.keys():
            raise ValueError(f"edge triggers must include viewer and origin request: {versions}")
        self.edge_lambdas = [
            cloudfront.EdgeLambda(event_type=_EVENT_TYPES[trigger], function_version=version)
            for trigger, version in versions.items()
        ]
        # Behaviours whose rules route by flag run the viewer-request version that carries
        # LaunchDarkly's SDK; origin-request and viewer-response are the same functions.
        self.flag_edge_lambdas = (
            [
                cloudfront.EdgeLambda(
                    event_type=_EVENT_TYPES[trigger],
                    function_version=flag_viewer_request if trigger == "ViewerRequest" else v,
                )
                for trigger, v in versions.items()
            ]
            if flag_viewer_request is not None
            else None
        )
        self.cache_policy = cloudfront.CachePolicy(
            self,
            "CachePolicy",
            comment="edgeshift: one cache entry per host and variant",
            # The variant header gives each variant its own cache entries, so a canary object is
            # never served to a stable viewer. Host is in the key because it is then forwarded:
            # origin-request finds the rules by the viewer's host, and without it would see the
            # origin's domain instead.
            header_behavior=cloudfront.CacheHeaderBehavior.allow_list(variant_header, "host"),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.none(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
            default_ttl=Duration.days(1),
            min_ttl=Duration.seconds(0),
            max_ttl=Duration.days(365),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )
        # The rule viewer-request chose (and the viewer's host) must reach origin-request,
        # which switches the origin by that rule. Forwarded, not keyed: the key stays per
        # host and variant, so a new revision does not empty the cache.
        self.origin_request_policy = (
            cloudfront.OriginRequestPolicy(
                self,
                "OriginRequestPolicy",
                comment="edgeshift: the rule viewer-request chose, for origin-request",
                header_behavior=cloudfront.OriginRequestHeaderBehavior.allow_list(
                    *forwarded_headers
                ),
                query_string_behavior=cloudfront.OriginRequestQueryStringBehavior.none(),
                cookie_behavior=cloudfront.OriginRequestCookieBehavior.none(),
            )
            if forwarded_headers
            else None
        )

    def behavior(
        self, origin: cloudfront.IOrigin, *, flags: bool = False
    ) -> cloudfront.BehaviorOptions:
        """Options for a routed behaviour: the variant-keyed policy and the edge functions
        (with ``flags``, the viewer-request function that evaluates LaunchDarkly flags)."""
        if flags and self.flag_edge_lambdas is None:
            raise ValueError("flag-routed behaviours need the flag viewer-request version")
        return cloudfront.BehaviorOptions(
            origin=origin,
            cache_policy=self.cache_policy,
            origin_request_policy=self.origin_request_policy,
            edge_lambdas=self.flag_edge_lambdas if flags else self.edge_lambdas,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
            compress=True,
        )

    def attach(
        self, distribution: cloudfront.Distribution, path_pattern: str, origin: cloudfront.IOrigin
    ) -> None:
        """Route one path pattern of a distribution through the rollout."""
        behavior = self.behavior(origin)
        distribution.add_behavior(
            path_pattern,
            origin,
            cache_policy=behavior.cache_policy,
            origin_request_policy=behavior.origin_request_policy,
            edge_lambdas=behavior.edge_lambdas,
            viewer_protocol_policy=behavior.viewer_protocol_policy,
            allowed_methods=behavior.allowed_methods,
            compress=behavior.compress,
        )
