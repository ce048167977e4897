"""Each function's IAM policy as a synthesized template grants it, with concrete resources.

The local stack checks every AWS call a function makes against these statements (see
``orchestrator.local.iam``), so a permission the stack forgets fails a local test instead of
a deployed rollout. This module reads template JSON only; it never imports aws-cdk.

CloudFormation tokens are resolved the way the local stack names things: pseudo parameters
become the local account and region, a table's ``Arn`` is built from its ``TableName``, and a
resource whose physical name CloudFormation generates (a state machine, a function) becomes
an ARN of its type with ``*`` for the name, so it matches only calls on that service and
resource type. Anything else is refused with the path to it, never widened to ``*``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Statement = dict[str, Any]

# Resource type -> ARN pattern for a generated physical name ({r}: region, {a}: account).
_GENERATED_ARNS = {
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{r}:{a}:stateMachine:*",
    "AWS::Lambda::Function": "arn:aws:lambda:{r}:{a}:function:*",
    "AWS::SQS::Queue": "arn:aws:sqs:{r}:{a}:*",
    "AWS::SNS::Topic": "arn:aws:sns:{r}:{a}:*",
    "AWS::Logs::LogGroup": "arn:aws:logs:{r}:{a}:log-group:*",
}
_TABLE_TYPES = ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table")


class UnresolvableToken(ValueError):
    """A policy resource uses a CloudFormation expression this module cannot make concrete."""


def function_policies(
    template: Mapping[str, Any], *, account: str, region: str
) -> dict[str, list[Statement]]:
    """Handler (``orchestrator.workflow.tasks.begin``) -> its role's inline statements,
    Action and Resource as lists of plain strings (``?`` and ``*`` are IAM wildcards)."""
    resolver = _Resolver(template["Resources"], account=account, region=region)
    by_role: dict[str, list[Statement]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        document = resource["Properties"]["PolicyDocument"]
        for role in resource["Properties"].get("Roles", []):
            statements = by_role.setdefault(role["Ref"], [])
            for index, statement in enumerate(_as_list(document["Statement"])):
                where = f"{logical_id}.Statement[{index}]"
                statements.append(resolver.statement(statement, where))
    out: dict[str, list[Statement]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        role_id = props["Role"]["Fn::GetAtt"][0]
        out[props["Handler"]] = by_role.get(role_id, [])
    return out


def function_timeouts(template: Mapping[str, Any]) -> dict[str, int]:
    """Handler -> the function's timeout in seconds (Lambda's default is 3)."""
    return {
        r["Properties"]["Handler"]: int(r["Properties"].get("Timeout", 3))
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }


class _Resolver:
    def __init__(self, resources: Mapping[str, Any], *, account: str, region: str) -> None:
        self.resources, self.account, self.region = resources, account, region

    def statement(self, statement: Mapping[str, Any], where: str) -> Statement:
        out: Statement = {"Effect": statement["Effect"]}
        for key in ("Action", "NotAction"):
            if key in statement:
                out[key] = [str(a) for a in _as_list(statement[key])]
        for key in ("Resource", "NotResource"):
            if key in statement:
                out[key] = [self.value(r, f"{where}.{key}") for r in _as_list(statement[key])]
        if "Condition" in statement:
            out["Condition"] = statement["Condition"]
        return out

    def value(self, token: Any, where: str) -> str:
        if isinstance(token, str):
            return token
        if isinstance(token, dict) and len(token) == 1:
            ((function, argument),) = token.items()
            if function == "Ref":
                return self._ref(argument, where)
            if function == "Fn::GetAtt":
                return self._get_att(argument[0], argument[1], where)
            if function == "Fn::Join":
                separator, parts = argument
                return str(separator).join(self.value(p, where) for p in parts)
            if function == "Fn::Select":
                # Only ever a piece of a generated name (e.g. a state machine's): any name.
                return "*"
        raise UnresolvableToken(f"{where}: cannot resolve {token!r}")

    def _ref(self, name: str, where: str) -> str:
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        return self._arn_of(name, where)

    def _get_att(self, logical_id: str, attribute: str, where: str) -> str:
        if attribute != "Arn":
            raise UnresolvableToken(f"{where}: cannot resolve {logical_id}.{attribute}")
        return self._arn_of(logical_id, where)

    def _arn_of(self, logical_id: str, where: str) -> str:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise UnresolvableToken(f"{where}: {logical_id} is not in the template")
        kind = resource["Type"]
        if kind in _TABLE_TYPES:
            name = resource["Properties"]["TableName"]
            return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"
        if kind in _GENERATED_ARNS:
            return _GENERATED_ARNS[kind].format(r=self.region, a=self.account)
        raise UnresolvableToken(f"{where}: no local ARN for {logical_id} ({kind})")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
