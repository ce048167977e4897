"""The live view's stage ladder after a promote by hand: skipped stages are not 'passed'."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from orchestrator.cli.watch import render
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus

T0 = datetime(2026, 12, 2, 15, 38, tzinfo=UTC)


def _screen(plan_doc: dict[str, Any], stage_index: int, reason: str) -> str:
    plan_doc["stages"] = [
        {"weight": 10, "bake": "3m", "interval": "5s"},
        {"weight": 50, "bake": "3m", "interval": "5s"},
        {"weight": 100, "bake": "5s", "interval": "5s"},
    ]
    rollout = Rollout.start(RolloutPlan.model_validate(plan_doc), "tests", now=T0)
    rollout = rollout.model_copy(
        update={
            "status": RolloutStatus.PROMOTED,
            "stage_index": stage_index,
            "stage_started_at": T0 + timedelta(seconds=5),
            "reason": reason,
        }
    )
    console = Console(file=io.StringIO(), width=140, record=True, color_system=None)
    console.print(render(rollout, [], T0 + timedelta(minutes=2)))
    return console.export_text()


def test_a_promote_by_hand_in_stage_1_does_not_pass_stage_2(plan_doc):
    """GIVEN a promote from the dashboard during stage 1's bake WHEN drawn THEN stage 1 is
    where it was promoted from and stage 2 skipped."""
    screen = _screen(plan_doc, 0, "promoted by cli:ana: hotfix verified by hand")
    assert re.search(r"1/3\s+10%.*promoted from here", screen)
    assert re.search(r"2/3\s+50%.*skipped", screen)
    assert not re.search(r"2/3\s+50%.*passed", screen)
    assert re.search(r"✓\s+3/3\s+100%.*promoted", screen)


def test_a_promotion_by_the_judge_passed_its_stages(plan_doc):
    """GIVEN stage 2 passed and promoted WHEN drawn THEN stages 1 and 2 passed."""
    screen = _screen(plan_doc, 1, "stage 2 passed; promoting")
    assert re.search(r"✓\s+1/3\s+10%.*passed", screen)
    assert re.search(r"✓\s+2/3\s+50%.*passed", screen)
