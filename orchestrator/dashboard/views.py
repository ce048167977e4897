"""What the rollout page shows, from what the API answers: ``GET /rollouts/{id}`` and its
``/events``. Pure, no I/O.

The audit trail is read with the same ``evidence.looks`` the watch screen and the report
use, so the page, the terminal and the PNG can never disagree about a look.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from orchestrator.cli.evidence import Look, looks, metric_names
from orchestrator.models import AuditEvent, RolloutStatus

HISTORY_LOOKS = 40  # the verdict history and the split's trend show this many latest looks
# The audit trail shows this many latest events: a long rollout has thousands (a look a
# minute for a day), and the page is polled every second. `rollout history` has them all.
AUDIT_ROWS = 200
_S = RolloutStatus
# What a person can ask for in each status (the API decides; this only picks the buttons
# the page offers first).
_OFFERED: dict[RolloutStatus, tuple[str, ...]] = {
    _S.PENDING: ("pause", "abort", "promote"),
    _S.RUNNING: ("pause", "abort", "promote"),
    _S.PAUSED: ("resume", "abort", "promote"),
    _S.AWAITING_APPROVAL: ("resume", "abort", "promote"),
}


def rollout_page(
    rollout: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: datetime
) -> dict[str, Any]:
    """The page's whole model; ``rollout`` is a RolloutView, ``events`` its audit items."""
    trail = [AuditEvent.model_validate(event) for event in events]
    all_looks = looks(trail)
    status = RolloutStatus(rollout["status"])
    offered = _OFFERED.get(status, ())
    control = rollout.get("control")
    if status is _S.RUNNING and control and control.get("action") == "pause":
        offered = ("resume", "abort")  # resume withdraws the pause not yet honoured
    return {
        "rollout": dict(rollout),
        "now": now.isoformat(),
        "ladder": ladder(rollout),
        "bake": bake(rollout, trail, now),
        "metrics": metrics(all_looks),
        "verdicts": [_verdict(look) for look in all_looks[-HISTORY_LOOKS:]],
        "split": split(trail)[-HISTORY_LOOKS:],
        "audit": [_audit(event) for event in reversed(trail[-AUDIT_ROWS:])],
        "audit_total": len(trail),
        "offered": list(offered),
    }


def ladder(rollout: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each stage with its state: passed, baking, paused, next, rolled back, ...."""
    status = RolloutStatus(rollout["status"])
    current = int(rollout["stage"]) - 1
    stages = rollout["plan"]["stages"]
    rows = []
    for index, stage in enumerate(stages):
        rows.append(
            {
                "number": index + 1,
                "weight": stage["weight"],
                "bake": stage.get("bake"),
                "interval": stage.get("interval"),
                "approval": bool(stage.get("approval")),
                "state": _stage_state(
                    index, current, len(stages) - 1, status, str(rollout.get("reason", ""))
                ),
            }
        )
    return rows


def _stage_state(
    index: int, current: int, last: int, status: RolloutStatus, reason: str = ""
) -> str:
    if status is _S.PROMOTED:
        if index == last:
            return "promoted"
        if index > current:
            return "skipped"  # a promote by hand jumped over it: it never ran
        # A promote by hand ("promoted by ACTOR: ...", from the service and from decide)
        # cut this stage's bake short: it did not pass.
        by_hand = index == current and reason.startswith("promoted by ")
        return "promoted from here" if by_hand else "passed"
    if index < current or (status is _S.PROMOTING and index == current):
        return "passed"
    if index == current:
        return {
            _S.RUNNING: "baking",
            _S.PAUSED: "paused",
            _S.AWAITING_APPROVAL: "awaiting approval",
            _S.ROLLING_BACK: "rolling back",
            _S.ROLLED_BACK: "rolled back",
            _S.FAILED: "failed",
        }.get(status, status.value.lower())
    if index == current + 1 and status is _S.PROMOTING:
        return "promoting"
    return "next" if index == current + 1 and not status.is_final else ""


def bake(
    rollout: Mapping[str, Any], trail: Sequence[AuditEvent], now: datetime
) -> dict[str, Any] | None:
    """The current stage's bake: when it started (its ``stage_applied`` event), how long."""
    status = RolloutStatus(rollout["status"])
    index = int(rollout["stage"]) - 1
    stages = rollout["plan"]["stages"]
    if status.is_final or not 0 <= index < len(stages) or stages[index]["weight"] >= 100:
        return None
    applied = [e for e in trail if e.kind == "stage_applied" and e.detail.get("stage") == index]
    if not applied:
        return None
    started = applied[-1].at
    return {
        "stage": index + 1,
        "started_at": started.isoformat(),
        "elapsed": max(0.0, (now - started).total_seconds()),
        "bake": float(stages[index]["bake"]),
        "paused": status is _S.PAUSED,
        "awaiting_approval": status is _S.AWAITING_APPROVAL,
    }


def metrics(all_looks: Sequence[Look]) -> list[dict[str, Any]]:
    """Each metric at the latest look, with its history of outcomes across the looks."""
    if not all_looks:
        return []
    recent = all_looks[-HISTORY_LOOKS:]
    latest = {metric.metric: metric for metric in all_looks[-1].metrics}
    rows = []
    for name in metric_names(all_looks):
        history = [
            {
                "seq": look.seq,
                "stage": look.stage,
                "outcome": next((m.outcome for m in look.metrics if m.metric == name), None),
            }
            for look in recent
        ]
        metric = latest.get(name)
        evidence = dataclasses.asdict(metric) if metric is not None else None
        rows.append({"metric": name, "latest": evidence, "history": history})
    return rows


def _verdict(look: Look) -> dict[str, Any]:
    return {
        "seq": look.seq,
        "at": look.at.isoformat(),
        "stage": look.stage,
        "weight": look.weight,
        "outcome": look.outcome,
        "action": look.action,
        "reason": look.decision_reason,
    }


def split(trail: Sequence[AuditEvent]) -> list[dict[str, Any]]:
    """The served split each look measured: the canary's share of requests (or viewers) against the
    band its weight allows (``verdict.split`` of the analysis events), oldest first."""
    checks = []
    for event in trail:
        if event.kind != "analysis":
            continue
        verdict = event.detail.get("verdict")
        found = verdict.get("split") if isinstance(verdict, Mapping) else None
        if not isinstance(found, Mapping) or not _numbers(found, "weight", "low", "high"):
            continue
        share = found.get("share")
        checks.append(
            {
                "seq": event.seq,
                "at": event.at.isoformat(),
                "stage": event.detail.get("stage"),
                "share": share if _is_number(share) else None,
                "weight": found["weight"],
                "low": found["low"],
                "high": found["high"],
                "outcome": str(found.get("outcome") or "unknown"),
                "reason": str(found.get("reason") or ""),
                "requests": found.get("requests") if _is_number(found.get("requests")) else None,
                # What was counted: requests, or viewers for a plan with split.viewers.
                "unit": "viewers" if found.get("unit") == "viewers" else "requests",
            }
        )
    return checks


def _audit(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "kind": event.kind,
        "reason": event.reason,
    }


def _numbers(mapping: Mapping[str, Any], *keys: str) -> bool:
    return all(_is_number(mapping.get(key)) for key in keys)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
