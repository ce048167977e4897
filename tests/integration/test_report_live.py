"""``rollout report`` of a real rollout on the local stack: two stages, a pause asked for
and resumed by a person, promoted; the figure is read back from its artists."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import report_figure
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.cli.report import figure_of
from orchestrator.cli.report_panels import CANARY_COLOUR
from orchestrator.cli.timeline import breaks, final_instant, holds, stage_spans
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.feeder import MetricsFeeder, constant
from orchestrator.local.stack import LocalStack
from orchestrator.models import AuditEvent, Rollout, RolloutPlan, RolloutStatus
from orchestrator.service import RolloutService

pytestmark = pytest.mark.integration

HOST = "report-live.cli.edgeshift.test"
PAUSE_WHY = "latency alarm in eu-west-1: checking before 50% goes on"
RESUME_WHY = "the alarm was the load test, not the canary"


def _plan() -> RolloutPlan:
    document = demo_plan(demo_route(HOST, 8001, 8002)).model_dump(mode="json")
    document["stages"] = [
        {"weight": weight, "bake": bake, "interval": 1} for weight, bake in ((10, 8), (50, 8))
    ] + [{"weight": 100, "bake": 3, "interval": 1}]
    return RolloutPlan.model_validate(document)


def _until(service: RolloutService, rollout_id: str, done: Callable[..., bool]) -> Rollout:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rollout = service.get(rollout_id)
        if done(rollout, service.events(rollout_id)):
            return rollout
        time.sleep(0.2)
    raise AssertionError(f"rollout {rollout_id} stuck at {service.get(rollout_id).status}")


@pytest.fixture(scope="module")
def steered() -> Iterator[tuple[LocalStack, Rollout, list[AuditEvent]]]:
    """A good canary paused by cli:ana two looks into stage 2, resumed, promoted."""
    with LocalStack() as stack:
        stack.store().put_route(demo_route(HOST, 8001, 8002), expected_revision=None)
        feeder = MetricsFeeder(
            stack.store(), stack.client("cloudwatch"), HOST, constant(0.006), max_seconds=120
        ).start()
        service = RolloutService(
            stack.store(), stack.client("stepfunctions"), stack.state_machine_arn
        )
        try:
            rollout_id = service.start(_plan(), "cli:ana").rollout_id
            _until(
                service,
                rollout_id,
                lambda r, events: (
                    r.stage_index == 1
                    and sum(e.kind == "analysis" and e.detail.get("stage") == 1 for e in events)
                    >= 2
                ),
            )
            service.pause(rollout_id, "cli:ana", PAUSE_WHY)
            _until(service, rollout_id, lambda r, _: r.status is RolloutStatus.PAUSED)
            time.sleep(3)
            service.resume(rollout_id, "cli:ana", RESUME_WHY)
            final = _until(service, rollout_id, lambda r, _: r.status.is_final)
        finally:
            feeder.stop()
        yield stack, final, service.events(rollout_id)


def test_the_command_writes_the_report_of_the_real_rollout(steered, tmp_path: Path):
    """GIVEN the finished rollout WHEN reported through the CLI THEN a PNG is written."""
    stack, rollout, _ = steered
    out = tmp_path / "live.png"
    result = CliRunner().invoke(
        cli, ["--endpoint-url", stack.endpoint_url, "report", rollout.rollout_id, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert rollout.status is RolloutStatus.PROMOTED
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000


def test_the_real_rollouts_figure_reads_as_it_should(steered):
    """GIVEN the rollout's own audit trail WHEN drawn THEN lines break at the stage change
    and the pause, the plan's limit is drawn, every verdict colour is named, both stages
    are numbered, the pause and its reasons are written out, and no labels overlap."""
    _, rollout, events = steered
    figure = figure_of(rollout, events)
    end = final_instant(rollout, events)
    held = holds(events, end)
    cuts = breaks(stage_spans(rollout, events, end), held)
    (errors,) = [a for a in figure.axes if a.get_ylabel() == "error-rate (critical)"]
    (share,) = [a for a in figure.axes if a.get_ylabel() == "canary share"]
    (notes,) = [a for a in figure.axes if not a.axison]

    assert [h.actor for h in held] == ["cli:ana"]
    lines = report_figure.data_lines(errors)
    assert any(line.get_color() == CANARY_COLOUR for line in lines)
    assert report_figure.crossings(lines, cuts) == []
    assert report_figure.reference_levels(errors) == [0.05]  # the demo plan's limit
    legend = report_figure.legend_texts(share)
    assert all(f"look: {name}" in legend for name in ("pass", "fail", "inconclusive", "error"))
    labels = [t.get_text() for t in share.texts if t.get_visible()]
    assert any(label.startswith("stage 1 · 10% · bake 8s, a look every 1s") for label in labels)
    assert any(label.startswith("stage 2 · 50%") for label in labels)
    written = "\n".join(t.get_text() for t in notes.texts)
    assert f"pause requested  by cli:ana: {PAUSE_WHY}" in written
    assert f"resumed  by cli:ana: {RESUME_WHY}" in written
    assert "PROMOTED  by workflow" in written
    assert report_figure.overlapping(figure) == []
