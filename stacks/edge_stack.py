"""The Lambda@Edge functions that pick a variant per viewer and switch the origin for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks import bundle
from stacks.assets import ARCHITECTURE, RUNTIME, edge_code
from stacks.config import AppConfig
from stacks.routing import RolloutRouting


class EdgeFunctions(Construct):
    """The edge triggers (viewer-request, origin-request, viewer-response) on one role and zip.

    Lambda@Edge rules shape every setting here: us-east-1 only, a published version (never
    $LATEST), x86_64, no environment variables, no layers, no X-Ray, and viewer triggers are
    capped at 128 MB and 5 s.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes_table_name: str,
        table_regions: Sequence[str],
        hosts: tuple[str, ...] | None = None,
        flag_routing: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            # CloudFront replicates the function and assumes the role as edgelambda.
            assumed_by=iam.CompositePrincipal(
                iam.ServicePrincipal("lambda.amazonaws.com"),
                iam.ServicePrincipal("edgelambda.amazonaws.com"),
            ),
        )
        code = edge_code(table=routes_table_name, regions=tuple(table_regions), hosts=hosts)
        self.functions: dict[str, lambda_.Function] = {}
        self.versions: dict[str, lambda_.IVersion] = {}
        for trigger, handler in bundle.triggers().items():
            fn = lambda_.Function(
                self,
                trigger,
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=handler,
                code=code,
                role=self.role,
                memory_size=128,
                timeout=Duration.seconds(5),
            )
            self.functions[trigger] = fn
            # CloudFront associations take a numbered version; a code change publishes a new one.
            self.versions[trigger] = fn.current_version
        # A second viewer-request function, from the bundle that adds LaunchDarkly's SDK
        # (657 KB zipped; ~0.12 s more cold start: `make bench`), only for the behaviours
        # whose rules route by flag; every other behaviour keeps the stdlib bundle.
        self.flag_viewer_request: lambda_.IVersion | None = None
        if flag_routing:
            flag_code = edge_code(
                table=routes_table_name, regions=tuple(table_regions), hosts=hosts, flags=True
            )
            fn = lambda_.Function(
                self,
                "FlagViewerRequest",
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=bundle.triggers()["ViewerRequest"],
                code=flag_code,
                role=self.role,
                memory_size=128,
                timeout=Duration.seconds(5),
            )
            self.functions["FlagViewerRequest"] = fn
            self.flag_viewer_request = fn.current_version
        self.logs_policy = self._write_own_logs()

    def _write_own_logs(self) -> iam.Policy:
        """Each function may create and write its own log group, in any region.

        Lambda@Edge logs to /aws/lambda/us-east-1.<function name> in the region of whichever
        edge location ran the function, creating the group there on first use, so the region
        is `*` and the name is exact. A policy of its own: the functions depend on the role's
        default policy, so a statement there naming them would be a dependency cycle.
        """
        stack = Stack.of(self)
        groups = [
            stack.format_arn(
                service="logs",
                region="*",
                resource="log-group",
                resource_name=f"/aws/lambda/{stack.region}.{fn.function_name}",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for fn in self.functions.values()
        ]
        return iam.Policy(
            self,
            "Logs",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    # The group itself (CreateLogGroup) and its streams.
                    resources=[arn for group in groups for arn in (group, f"{group}:*")],
                )
            ],
        )


class EdgeStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.edge = EdgeFunctions(
            self,
            "Functions",
            routes_table_name=config.routes_table_name,
            table_regions=config.table_regions,
            hosts=config.edge_hosts,
            flag_routing=bool(config.flag_routed_paths),
        )
        # The table lives in another stack (and region); build its ARNs from name and regions
        # rather than through a cross-region reference. Read-only: the edge never writes.
        tables = [
            self.format_arn(
                service="dynamodb",
                region=region,
                resource="table",
                resource_name=config.routes_table_name,
            )
            for region in config.table_regions
        ]
        self.edge.role.add_to_policy(
            iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:Query"], resources=tables)
        )
        self.routing = RolloutRouting(
            self,
            "Routing",
            versions=self.edge.versions,
            variant_header=bundle.variant_header(),
            forwarded_headers=bundle.forwarded_headers(),
            flag_viewer_request=self.edge.flag_viewer_request,
        )
        self.distribution: cloudfront.Distribution | None = None
        self.viewer_certificate_is_default = config.distribution.certificate_arn is None
        if config.distribution.is_demo:
            self.distribution = self._demo_distribution(config)
            CfnOutput(self, "DistributionDomainName", value=self.distribution.domain_name)
        else:
            # CloudFormation can only change a distribution it owns: for an existing one the
            # stack publishes what to attach, and the README shows the update-distribution call.
            CfnOutput(self, "DistributionId", value=str(config.distribution.existing_id))
        CfnOutput(self, "CachePolicyId", value=self.routing.cache_policy.cache_policy_id)
        for trigger, version in self.edge.versions.items():
            CfnOutput(self, f"{trigger}VersionArn", value=version.function_arn)
        if self.edge.flag_viewer_request is not None:
            CfnOutput(
                self,
                "FlagViewerRequestVersionArn",
                value=self.edge.flag_viewer_request.function_arn,
            )

    def _demo_distribution(self, config: AppConfig) -> cloudfront.Distribution:
        demo = config.distribution
        origin = origins.HttpOrigin(
            str(demo.demo_origin_domain),
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
        )
        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", demo.certificate_arn)
            if demo.certificate_arn
            else None
        )
        # Everything but the routed paths is served as usual, without paying for Lambda@Edge;
        # routing "*" means the default behaviour itself runs the rollout.
        default = (
            self.routing.behavior(origin, flags="*" in config.flag_routed_paths)
            if "*" in config.routed_paths or "*" in config.flag_routed_paths
            else cloudfront.BehaviorOptions(
                origin=origin,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            )
        )
        return cloudfront.Distribution(
            self,
            "Distribution",
            comment="edgeshift demo: routed paths run the rollout, the rest does not",
            default_behavior=default,
            additional_behaviors={
                **{
                    path: self.routing.behavior(origin)
                    for path in config.routed_paths
                    if path != "*"
                },
                **{
                    path: self.routing.behavior(origin, flags=True)
                    for path in config.flag_routed_paths
                    if path != "*"
                },
            },
            # The rules match on the viewer's host, so the hosts are the aliases when a
            # certificate covers them; otherwise routes use the *.cloudfront.net name.
            domain_names=list(config.hosts) if certificate else None,
            certificate=certificate,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
        )
