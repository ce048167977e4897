"""The report's decision lines say who and why once, with room left for the why."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.cli.timeline import Mark, short_actor, who_and_why

AT = datetime(2026, 12, 2, 15, 39, tzinfo=UTC)
ARN = "arn:aws:iam::000000000000:user/local-operator"


def test_a_reason_that_repeats_its_actor_is_said_once():
    """GIVEN 'promote by ARN' whose reason is 'promoted by ARN: why' WHEN written THEN the
    actor comes once, by its IAM name, and the why follows."""
    mark = Mark(AT, "promote", "#000", ARN, f"promoted by {ARN}: verified by hand")
    assert who_and_why(mark) == "by user/local-operator: verified by hand"


def test_a_pause_without_a_reason_is_just_who():
    """GIVEN 'pause requested' with the audit's 'pause requested by cli:root: ' THEN only
    'by cli:root', not the request said twice."""
    mark = Mark(AT, "pause requested", "#000", "cli:root", "pause requested by cli:root: ")
    assert who_and_why(mark) == "by cli:root"


def test_the_workflow_carrying_out_a_request_names_who_asked():
    """GIVEN the workflow's pause for a request by an IAM user THEN the user is named, short."""
    mark = Mark(AT, "→ pause", "#000", "workflow", f"paused by {ARN}: p99 spike")
    assert who_and_why(mark) == "by workflow: paused by user/local-operator: p99 spike"


def test_a_plain_reason_is_kept():
    mark = Mark(AT, "→ rollback", "#000", "workflow", "error-rate fails: canary 9% vs 0.5%")
    assert who_and_why(mark) == "by workflow: error-rate fails: canary 9% vs 0.5%"


def test_a_hold_label_names_an_iam_caller_by_its_name():
    """The pause band's label has room for 'paused by user/local-operator · 14s', not the ARN."""
    assert short_actor(ARN) == "user/local-operator"
    assert short_actor("arn:aws:sts::123456789012:assumed-role/Ops/ana") == "assumed-role/Ops/ana"
    assert short_actor("cli:root") == "cli:root"
