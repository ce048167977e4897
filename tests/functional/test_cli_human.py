"""The ``rollout`` command speaks to people by default and to scripts with ``--json``:
steering commands print a sentence, ``--json`` keeps the summary's shape, ``--version``
exists, every failure reads ``Error: ...``, and time options take durations."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from local_aws import seed_v1_route, stand_in_state_machine
from moto import mock_aws

from orchestrator.cli import main as cli_main
from orchestrator.cli.local import up
from orchestrator.cli.main import cli
from orchestrator.cli.options import Duration
from orchestrator.models import RolloutStatus
from orchestrator.store import Store, TableNames, create_tables

HOST = "shop.example.com"
SUMMARY_KEYS = {"rollout_id", "status", "stage", "stages", "canary_weight", "reason", "control"}


@pytest.fixture
def store() -> Iterator[Store]:
    """moto in-process: both tables, the route on v1, a (never executed) state machine."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, TableNames())
        stand_in_state_machine()
        store = Store(dynamodb, TableNames())
        seed_v1_route(store, HOST)
        yield store


def _running(store: Store, tmp_path: Path, plan_doc: dict[str, Any]) -> str:
    """A rollout started by the CLI and marked RUNNING, as the workflow's Begin leaves it."""
    from orchestrator.workflow import transitions

    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan_doc))
    started = CliRunner().invoke(cli, ["start", str(path), "--actor", "tester"])
    assert started.exit_code == 0, started.output
    rollout_id = started.stdout.strip()
    transitions.commit(
        store,
        store.get_rollout(rollout_id),
        "started",
        "execution began",
        actor="test",
        status=RolloutStatus.RUNNING,
    )
    return rollout_id


@pytest.mark.parametrize(
    ("verb", "said"),
    [
        ("pause", "pause requested"),
        ("abort", "abort requested"),
        ("promote", "promotion requested"),
    ],
)
def test_steering_prints_a_sentence_for_people(
    store: Store, tmp_path: Path, plan_doc: dict[str, Any], verb: str, said: str
) -> None:
    """GIVEN a running rollout WHEN paused, aborted or promoted without --json THEN one
    sentence says what was asked, by whom and why, and where the rollout stands (no JSON)."""
    rollout_id = _running(store, tmp_path, plan_doc)

    result = CliRunner().invoke(
        cli, [verb, rollout_id, "--reason", "p99 looks odd", "--actor", "ana"]
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{said}: {rollout_id}: RUNNING, before stage 1/2, canary 0%")
    assert lines[1] == (
        f"pending: {verb} by ana: p99 looks odd (carried out at the next decision point)"
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


def test_resume_withdraws_a_pending_pause_and_says_so(
    store: Store, tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a pause not yet honoured WHEN resumed THEN the sentence shows nothing pending."""
    rollout_id = _running(store, tmp_path, plan_doc)
    CliRunner().invoke(cli, ["pause", rollout_id, "--reason", "look"])

    result = CliRunner().invoke(cli, ["resume", rollout_id, "--reason", "false alarm"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"resumed: {rollout_id}: RUNNING")
    assert "pending" not in result.stdout


@pytest.mark.parametrize("verb", ["pause", "abort", "promote"])
def test_steering_json_keeps_the_summary_shape(
    store: Store, tmp_path: Path, plan_doc: dict[str, Any], verb: str
) -> None:
    """GIVEN a running rollout WHEN steered with --json THEN the summary as before: the same
    keys as `status --json`, the request in `control`."""
    rollout_id = _running(store, tmp_path, plan_doc)

    result = CliRunner().invoke(cli, [verb, rollout_id, "--reason", "why", "--json"])
    status = CliRunner().invoke(cli, ["status", rollout_id, "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert summary == json.loads(status.stdout)
    assert summary["control"]["action"] == verb
    assert summary["control"]["reason"] == "why"


STEERING_VERBS = ("pause", "resume", "abort", "promote", "recover")


def _items(store: Store) -> list[Any]:
    """Every item of both tables, in a stable order: what a refused command must not change."""
    items = []
    for table in (store.tables.rollouts, store.tables.routes):
        items += store.client.scan(TableName=table)["Items"]
    return sorted(items, key=json.dumps)


@pytest.mark.parametrize("verb", STEERING_VERBS)
@pytest.mark.parametrize(
    "given",
    [[], ["--reason", ""], ["--reason", "   "], ["--reason", "\t\n"], ["--reason", "\u3000"]],
    ids=["missing", "empty", "spaces", "tab-newline", "ideographic-space"],
)
def test_steering_without_a_reason_is_refused_and_nothing_is_sent(
    store: Store,
    tmp_path: Path,
    plan_doc: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    verb: str,
    given: list[str],
) -> None:
    """GIVEN a running rollout WHEN any steering command comes without a reason, or with
    one that is only whitespace THEN exit 2 with one `Error:` line naming --reason and the
    rule, the service is never asked, and the store is exactly as it was."""
    from orchestrator.service import RolloutService

    rollout_id = _running(store, tmp_path, plan_doc)
    asked: list[str] = []
    monkeypatch.setattr(RolloutService, verb, lambda *args, **kwargs: asked.append(verb))
    before = _items(store)

    result = CliRunner().invoke(cli, [verb, rollout_id, *given, "--actor", "ana"])

    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"Error: --reason: required to {verb} a rollout (not empty, not only spaces): "
        "the audit trail records who asked and why\n"
    )
    assert result.stdout == ""
    assert asked == []
    assert _items(store) == before


def test_a_reason_longer_than_the_api_takes_is_refused_naming_the_limit(
    store: Store, tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a reason of 1001 characters (the API takes at most 1000) WHEN pausing THEN
    exit 2 naming --reason and the limit, and nothing is written."""
    rollout_id = _running(store, tmp_path, plan_doc)
    before = _items(store)

    result = CliRunner().invoke(cli, ["pause", rollout_id, "--reason", "x" * 1001])

    assert result.exit_code == 2, result.output
    assert "Error: --reason: at most 1000 characters, got 1001" in result.stderr
    assert _items(store) == before


def test_a_second_promote_while_one_is_pending_says_so(
    store: Store, tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a promote asked for and not yet carried out WHEN the same promote is asked
    again THEN exit 3 (a conflict) with a sentence naming the pending promote, who asked
    it and when, not a bare conflict; the first request stands and nothing is written."""
    rollout_id = _running(store, tmp_path, plan_doc)
    first = CliRunner().invoke(cli, ["promote", rollout_id, "--reason", "ship", "--actor", "ana"])
    assert first.exit_code == 0, first.output
    pending = store.get_rollout(rollout_id).control
    assert pending is not None
    before = _items(store)

    again = CliRunner().invoke(cli, ["promote", rollout_id, "--reason", "ship", "--actor", "ana"])

    assert again.exit_code == 3, again.output
    assert again.stderr == (
        f"Error: a promote is already pending for {rollout_id} (asked by ana at "
        f"{pending.at:%Y-%m-%d %H:%M:%S} UTC: ship); the workflow carries it out at its "
        "next decision point\n"
    )
    assert _items(store) == before


def test_an_abort_takes_the_place_of_a_pending_pause(
    store: Store, tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a pause asked for and not yet carried out WHEN an abort is asked THEN exit 0:
    the abort is what is pending now, and the audit names the pause it replaced."""
    rollout_id = _running(store, tmp_path, plan_doc)
    CliRunner().invoke(cli, ["pause", rollout_id, "--reason", "look", "--actor", "ana"])

    result = CliRunner().invoke(cli, ["abort", rollout_id, "--reason", "errors up"])

    assert result.exit_code == 0, result.output
    pending = store.get_rollout(rollout_id).control
    assert pending is not None and pending.action == "abort"
    assert pending.reason == "errors up"
    requested = [e for e in store.events(rollout_id) if e.kind == "control_requested"]
    assert requested[-1].detail["superseded"]["action"] == "pause"
    assert "in place of the pause ana asked for" in requested[-1].reason


def test_start_json_prints_the_summary(
    store: Store, tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a valid plan WHEN started with --json THEN the summary, as `status --json`."""
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan_doc))

    result = CliRunner().invoke(cli, ["start", str(path), "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert summary["status"] == "PENDING"


def test_version_is_the_installed_package_version() -> None:
    """GIVEN the installed edgeshift WHEN `rollout --version` THEN its version, exit 0."""
    result = CliRunner().invoke(cli, ["--version"])

    assert result.exit_code == 0
    assert result.output == f"rollout, version {version('edgeshift')}\n"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def _error_cases(
    tmp_path: Path, plan_doc: dict[str, Any], busy: int
) -> list[tuple[list[str], int]]:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(plan_doc))
    counts = tmp_path / "counts.csv"
    counts.write_text("window_start,metric,variant,numerator\n")
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"host: {HOST}\nrules:\n  - variants: [{{name: canary, colour: red}}]\n")
    flags = tmp_path / "flags.json"
    flags.write_text('{"flags": 3}')
    return [
        (["status", "r-nope"], 4),
        (["pause", "r-nope", "--reason", "look"], 4),
        (["pause", "r-nope"], 2),
        (["abort", "r-nope", "--reason", " "], 2),
        (["history", "r-nope"], 4),
        (["start", str(tmp_path / "missing.yaml")], 2),
        (["status", "r-nope", "--interval", "2m"], 2),
        (["forecast", str(plan), "--requests-per-minute", "100", "--rate", "nope=0.01"], 2),
        (["backtest", str(plan), "--counts", str(counts)], 2),
        (["routes", "put", str(routes)], 2),
        (["local", "up", "--cdn-port", str(busy)], 2),
        (["demo", "--aws-port", str(busy)], 2),
        (["flags", "sync", "--from-file", str(flags)], 2),
        (["dashboard", "--api-url", "ftp://api.example.com"], 2),
        (["dashboard", "--port", str(busy)], 2),
    ]


def test_every_failure_reads_error_colon_in_clicks_style(
    store: Store, tmp_path: Path, plan_doc: dict[str, Any], busy_port: int
) -> None:
    """GIVEN failures from each command family (not found, bad input, usage, a busy port)
    WHEN run THEN stderr's last line starts with `Error: `, nothing says `error:`, and the
    documented exit status."""
    for args, code in _error_cases(tmp_path, plan_doc, busy_port):
        result = CliRunner().invoke(cli, args)

        assert result.exit_code == code, (args, result.output)
        assert "Error: " in result.stderr, (args, result.stderr)
        assert "error:" not in result.stderr, (args, result.stderr)
        assert result.stdout == "", (args, result.stdout)


def test_an_aws_failure_reads_error_colon_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN an endpoint nobody listens on WHEN the entry point runs THEN `Error: ...`
    naming the endpoint, exit 1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(
        sys, "argv", ["rollout", "--endpoint-url", f"http://127.0.0.1:{closed}", "status", "r-x"]
    )

    with pytest.raises(SystemExit) as exited:
        cli_main.main()

    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and f"127.0.0.1:{closed}" in err


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("0.5", 0.5), ("90", 90.0), ("90s", 90.0), ("1m", 60.0), ("1h30m", 5400.0)],
)
def test_time_options_take_durations(written: str, seconds: float) -> None:
    """GIVEN a duration as plans write it, or plain seconds WHEN parsed THEN seconds."""
    assert Duration().convert(written, None, None) == seconds


def test_local_up_seconds_takes_an_hour_and_a_half() -> None:
    """GIVEN `local up --seconds 1h30m` WHEN click parses it THEN 5400 seconds."""
    context = up.make_context("up", ["--seconds", "1h30m"])

    assert context.params["seconds"] == 5400.0


@pytest.mark.parametrize("written", ["soon", "-1", "nan", "1x"])
def test_a_bad_duration_is_refused_naming_the_option(store: Store, written: str) -> None:
    """GIVEN a time that is no duration WHEN given to --interval THEN exit 2 naming it."""
    result = CliRunner().invoke(cli, ["status", "r-x", "--interval", written])

    assert result.exit_code == 2
    assert "Invalid value for '--interval'" in result.stderr


def test_an_interval_of_a_minute_is_accepted(store: Store) -> None:
    """GIVEN `--interval 1m` WHEN status runs THEN the option is accepted (the unknown
    rollout is what stops it: exit 4)."""
    result = CliRunner().invoke(cli, ["status", "r-nope", "--watch", "--interval", "1m"])

    assert result.exit_code == 4, result.output


def test_ctrl_c_during_start_wait_says_the_rollout_goes_on(
    store: Store, tmp_path: Path, plan_doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN `start --wait` WHEN Ctrl-C stops the following THEN stderr says the rollout
    goes on and how to follow or abort it; exit 1; the rollout is not aborted."""

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "follow_rollout", interrupted)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan_doc))

    result = CliRunner().invoke(cli, ["start", str(path), "--wait"])

    assert result.exit_code == 1
    rollout_id = result.stdout.strip()
    assert f"stopped following {rollout_id}; the rollout goes on" in result.stderr
    assert f"rollout status {rollout_id} --watch" in result.stderr
    assert store.get_rollout(rollout_id).control is None


def test_a_duration_out_of_range_names_the_rule(store: Store) -> None:
    """GIVEN `--interval 2m` (the most is a minute) WHEN run THEN exit 2 with the bounds."""
    result = CliRunner().invoke(cli, ["status", "r-x", "--interval", "2m"])

    assert result.exit_code == 2
    assert "'2m' is 120 seconds; it must be between 0.2 and 60 seconds" in result.stderr


@pytest.mark.parametrize(
    ("status", "ended_ago", "exit_code", "waits"),
    [
        (RolloutStatus.PROMOTED, 1.0, 0, 3.0),
        (RolloutStatus.ROLLED_BACK, 1.0, 1, 3.0),
        # The CLI's clock 30 s ahead, or 2 s behind: following saw the end within an
        # interval (1 s) of it, so at most that much of the settle is taken as passed.
        (RolloutStatus.PROMOTED, 30.0, 0, 3.0),
        (RolloutStatus.PROMOTED, -2.0, 0, 4.0),
        (RolloutStatus.PROMOTED, 600.0, 0, None),
        (RolloutStatus.FAILED, 1.0, 1, None),
    ],
)
def test_start_wait_exits_once_every_edge_serves_the_final_route(
    store: Store,
    tmp_path: Path,
    plan_doc: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    status: RolloutStatus,
    ended_ago: float,
    exit_code: int,
    waits: float | None,
) -> None:
    """GIVEN `start --wait` on a plan whose edge settles in 4 s WHEN the rollout ends
    PROMOTED or ROLLED_BACK THEN the exit waits out the rest of the settle (the settle
    less at most one interval, whatever the clocks say) and says why; ended long ago
    (ten settles), or FAILED (its route is not what the status says), it exits at once."""
    from datetime import timedelta

    from orchestrator.models.rollout import utcnow

    def ended(target: Any, rollout_id: str, **kwargs: Any) -> Any:
        rollout = store.get_rollout(rollout_id)
        return rollout.model_copy(
            update={"status": status, "updated_at": utcnow() - timedelta(seconds=ended_ago)}
        )

    slept: list[float] = []
    monkeypatch.setattr(cli_main, "follow_rollout", ended)
    monkeypatch.setattr(cli_main.time, "sleep", slept.append)
    doc = {**plan_doc, "analysis": {**plan_doc["analysis"], "edge_settle": 4}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))

    result = CliRunner().invoke(cli, ["start", str(path), "--wait"])

    assert result.exit_code == exit_code, result.output
    if waits is not None:
        assert slept == [pytest.approx(waits, abs=0.05)], slept
        assert "until every edge serves the final route" in result.stderr
    else:
        assert slept == [] and "every edge" not in result.stderr


@pytest.mark.parametrize(("columns", "width"), [(None, 140), ("100", 100)])
def test_following_into_a_log_is_not_cut_at_80_columns(
    store: Store,
    tmp_path: Path,
    plan_doc: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    columns: str | None,
    width: int,
) -> None:
    """GIVEN `start --wait` writing to a pipe (not a terminal) WHEN it follows the rollout
    THEN its screen is drawn 140 columns wide, not rich's 80 that cut the metric table,
    unless COLUMNS says otherwise."""
    from orchestrator.cli import watch

    seen: list[int] = []

    def follow(fetch: Any, console: Any, **kwargs: Any) -> Any:
        seen.append(console.width)
        rollout, _ = fetch()
        return rollout.model_copy(update={"status": RolloutStatus.FAILED})

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(watch, "follow", follow)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan_doc))

    result = CliRunner().invoke(cli, ["start", str(path), "--wait"])

    assert result.exit_code == 1, result.output
    assert seen == [width]


@pytest.mark.parametrize(
    ("stage", "status", "said"),
    [
        (0, "PENDING", "before stage 1/3"),
        (2, "RUNNING", "stage 2/3"),
        (2, "PROMOTED", "ended in stage 2/3"),
        (1, "ROLLED_BACK", "ended in stage 1/3"),
        (0, "ROLLED_BACK", "ended before stage 1/3"),  # preflight refused it
    ],
)
def test_status_and_list_say_where_a_rollout_is_or_ended(
    stage: int, status: str, said: str
) -> None:
    """GIVEN a rollout's stage and status WHEN `status` and `list` name its stage THEN an
    ended one says the stage it ended in (a promote from stage 2 of 3 has no 3rd)."""
    from orchestrator.cli.summary import stage_text

    assert stage_text(stage, 3, status) == said
