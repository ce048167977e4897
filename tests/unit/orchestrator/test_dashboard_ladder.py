"""The dashboard's stage ladder says what happened to each stage, a promote by hand included."""

from __future__ import annotations

from typing import Any

from orchestrator.dashboard.views import ladder

STAGES = [
    {"weight": 10, "bake": 20, "interval": 5},
    {"weight": 50, "bake": 20, "interval": 5},
    {"weight": 100, "bake": 5, "interval": 5},
]


def _rollout(status: str, stage: int, reason: str) -> dict[str, Any]:
    return {"status": status, "stage": stage, "reason": reason, "plan": {"stages": STAGES}}


def test_a_promotion_by_the_judge_passed_every_baked_stage():
    """GIVEN stage 2 passed and promoted WHEN drawn THEN stages 1 and 2 passed, 3 promoted."""
    page = ladder(_rollout("PROMOTED", 2, "stage 2 passed; promoting"))
    assert [s["state"] for s in page] == ["passed", "passed", "promoted"]


def test_a_promote_by_hand_in_stage_1_skips_stage_2_and_passes_nothing():
    """GIVEN a promote from the dashboard during stage 1's bake WHEN drawn THEN stage 1 is
    where it was promoted from, stage 2 skipped (it never ran), not 'passed'."""
    reason = "promoted by arn:aws:iam::000000000000:user/local-operator: verified by hand"
    page = ladder(_rollout("PROMOTED", 1, reason))
    assert [s["state"] for s in page] == ["promoted from here", "skipped", "promoted"]


def test_stages_before_a_promote_by_hand_still_passed():
    """GIVEN stage 1 passed and a promote by hand in stage 2 WHEN drawn THEN stage 1 passed."""
    page = ladder(_rollout("PROMOTED", 2, "promoted by cli:root: hotfix"))
    assert [s["state"] for s in page] == ["passed", "promoted from here", "promoted"]
