"""The reliability matrix: each fault, the behaviour promised, and what the tests observed.

    python tests/reliability/matrix.py [extra pytest args]

runs the tests behind every row (the same tests `make test` runs) and prints one line per
row: fault, expected behaviour, observed, PASS / FAIL. A row whose test is a strict xfail
(a known product bug) prints ``known bug`` and counts as failing. Exit status 0 only when
every row passes.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WF = "tests/integration/test_workflow_scenarios.py"
DD = "tests/functional/test_provider_datadog.py"
CW = "tests/functional/test_provider_cloudwatch.py"
EV = "tests/unit/analysis/test_analysis_evaluate.py"
RULES = "tests/unit/edge/test_edge_rules.py"
FI = "tests/reliability/test_fault_injection.py"
RB = "tests/runbooks/test_runbooks.py"
PK = "tests/reliability/test_parks.py"

# (area, fault, expected behaviour, tests: node ids or their prefixes)
ROWS: list[tuple[str, str, str, list[str]]] = [
    (
        "edge",
        "routes table unreachable or throttled",
        "stale rules served, then stable; no exception",
        [
            f"{RULES}::test_stale_rules_are_served_while_the_table_fails",
            f"{RULES}::test_failure_without_cached_rules_serves_nothing_and_backs_off",
            f"{RULES}::test_stale_rules_stop_after_the_maximum_staleness",
            "tests/unit/edge/test_edge_dynamo.py::test_unreachable_endpoint_raises_dynamo_error",
        ],
    ),
    (
        "edge",
        "table returns malformed items",
        "bad items dropped, valid kept",
        [
            f"{RULES}::test_malformed_items_are_dropped_and_valid_ones_kept",
            f"{RULES}::test_malformed_items_are_rejected",
        ],
    ),
    ("edge", "malformed events", "handlers never raise", ["tests/unit/edge/test_edge_fuzz.py"]),
    (
        "analysis",
        "Datadog 5xx",
        "transient error, v1 fallback",
        [f"{DD}::test_5xx_is_transient_and_falls_back_to_v1"],
    ),
    (
        "analysis",
        "Datadog 429",
        "waits for the reset, bounded retries",
        [
            f"{DD}::test_429_waits_for_the_reset_header_then_succeeds",
            f"{DD}::test_429_retries_are_bounded",
        ],
    ),
    (
        "analysis",
        "Datadog timeout",
        "transient error",
        [f"{DD}::test_timeout_is_a_transient_error"],
    ),
    (
        "analysis",
        "Datadog empty series / null",
        "no data, never a pass",
        [
            f"{DD}::test_v1_empty_series_is_no_data",
            f"{DD}::test_v2_null_value_is_no_data",
            f"{EV}::test_no_data_is_inconclusive_never_pass",
        ],
    ),
    (
        "analysis",
        "provider answers nonsense",
        "error, not a crash",
        [f"{EV}::test_impossible_answers_are_errors_not_crashes"],
    ),
    (
        "analysis",
        "CloudWatch throttling",
        "transient error until the consecutive limit",
        [
            f"{CW}::test_status_codes_become_errors",
            f"{EV}::test_transient_errors_are_tolerated_until_the_consecutive_limit",
        ],
    ),
    (
        "analysis",
        "Datadog outage mid-rollout",
        "inconclusive, never promoted; resumes",
        [f"{RB}::test_runbook_commands_work_as_written[datadog-outage]"],
    ),
    (
        "analysis",
        "Datadog keys rotated, warm container",
        "new keys after the cache max_age",
        [f"{FI}::test_rotated_datadog_keys_are_used_once_the_secret_cache_expires"],
    ),
    (
        "control",
        "SendTaskSuccess throttled once / twice",
        "retried at once; PROMOTED, token cleared",
        [f"{FI}::test_a_throttled_wake_is_retried_and_the_rollout_goes_on"],
    ),
    (
        "control",
        "resume's wake lost (every try fails)",
        "token kept; the same resume resends it; moves on",
        [f"{FI}::test_a_lost_wake_is_resent_by_the_next_request"],
    ),
    (
        "control",
        "abort after a lost wake",
        "wake resent, abort honoured: ROLLED_BACK",
        [f"{FI}::test_an_abort_after_a_lost_wake_is_honoured"],
    ),
    (
        "iam",
        "a call the deployed role lacks",
        "AccessDeniedException locally, as in AWS",
        [
            "tests/integration/test_iam_parity.py::test_a_call_the_role_lacks_is_refused_as_aws_would",
            "tests/integration/test_iam_parity.py::test_removing_a_needed_permission_fails_the_check",
        ],
    ),
    (
        "workflow",
        "exception in each task",
        "ROLLED_BACK, stable 100%, lock freed",
        [f"{WF}::test_an_exception_in_any_task_rolls_back_and_frees_the_target"],
    ),
    (
        "workflow",
        "DynamoDB throttling in a task",
        "ROLLED_BACK with the cause; restartable",
        [f"{RB}::test_runbook_commands_work_as_written[dynamodb-throttling]"],
    ),
    (
        "workflow",
        "crash between weights and return",
        "one write, rolled back, route = audit",
        [f"{FI}::test_a_crash_between_writing_weights_and_returning_rolls_back_consistently"],
    ),
    (
        "workflow",
        "rollback fails twice, then succeeds",
        "ROLLED_BACK, lock freed, route = audit",
        [f"{FI}::test_a_rollback_that_fails_twice_then_succeeds_ends_rolled_back"],
    ),
    (
        "workflow",
        "rollback keeps failing",
        "FAILED, lock kept; recover frees it",
        [
            f"{WF}::test_a_failing_rollback_fails_loudly_and_keeps_the_lock",
            f"{RB}::test_runbook_commands_work_as_written[rollback-failed]",
        ],
    ),
    (
        "lambda",
        "a task exceeding its timeout",
        "Sandbox.Timedout; ROLLED_BACK; no late write",
        [
            "tests/reliability/test_lambda_limits.py::test_a_task_past_its_timeout_rolls_back",
            "tests/reliability/test_lambda_limits.py::test_a_timed_out_invoke_writes_nothing_late",
            "tests/reliability/test_lambda_limits.py::test_the_context_has_the_deployed_limits",
            "tests/reliability/test_lambda_limits.py::test_the_fallback_limits_are_synthesized",
        ],
    ),
    (
        "lambda",
        "a state output over 256 KB",
        "real ones <10%; over: FAILED, recover frees",
        [
            "tests/reliability/test_lambda_limits.py::test_a_256_kb_state_output_fails_the_run",
            "tests/reliability/test_lambda_limits.py::test_rollout_payloads_stay_under_256_kb",
        ],
    ),
    (
        "lambda",
        "an invoke payload over 6 MB",
        "413 / ResponseSizeTooLarge, as Lambda",
        [
            "tests/reliability/test_lambda_limits.py::test_a_request_over_6_mb_is_a_413",
            "tests/reliability/test_lambda_limits.py::test_a_response_over_6_mb_is_an_error",
        ],
    ),
    (
        "control",
        "pause/abort/promote from 6 threads",
        "one wins, others refused, audit ordered",
        [f"{FI}::test_concurrent_pause_abort_promote_one_wins_the_others_are_refused"],
    ),
    (
        "control",
        "pause lands during an analysis",
        "honoured at the next look",
        [f"{FI}::test_a_pause_that_lands_during_an_analysis_is_honoured"],
    ),
    (
        "park",
        "resume's SendTaskSuccess never arrives",
        "re-read within one park_recheck; PROMOTED",
        [
            f"{PK}::test_a_resume_whose_wake_is_lost_moves_on_within_one_recheck",
        ],
    ),
    (
        "park",
        "abort's SendTaskFailure never arrives",
        "re-read rolls back with the reason",
        [
            f"{PK}::test_an_abort_whose_wake_is_lost_still_rolls_back",
        ],
    ),
    (
        "park",
        "an approval's wake-up call is lost",
        "next stage applied, no second gate",
        [
            f"{PK}::test_an_approval_whose_wake_is_lost_goes_on_to_the_next_stage",
        ],
    ),
    (
        "park",
        "promote accepted just before Hold",
        "Hold does not park over it; PROMOTED",
        [
            f"{PK}::test_a_promote_accepted_just_before_hold_is_carried_out",
        ],
    ),
    (
        "park",
        "abort accepted just before Hold",
        "Hold does not park over it; ROLLED_BACK",
        [
            f"{PK}::test_an_abort_accepted_just_before_hold_is_carried_out",
        ],
    ),
    (
        "park",
        "pause lands before stage 1 is applied",
        "stage held back, applied after resume; PROMOTED",
        [
            f"{PK}::test_a_pause_before_the_first_stage_holds_it_back_then_applies_it",
        ],
    ),
    (
        "park",
        "nobody answers a pause",
        "re-parked each re-read; rolled back at max_pause",
        [
            f"{PK}::test_a_pause_nobody_answers_is_rechecked_then_rolled_back_at_max_pause",
        ],
    ),
    (
        "park",
        "execution stopped in the console, PAUSED",
        "resume refused naming recover; abort recovers",
        [
            f"{PK}::test_a_parked_execution_stopped_from_the_console_leaves_a_way_forward[console-stop-paused]",
        ],
    ),
    (
        "park",
        "execution stopped in the console, AWAITING",
        "promote refused naming recover; abort recovers",
        [
            f"{PK}::test_a_parked_execution_stopped_from_the_console_leaves_a_way_forward[console-stop-approval]",
        ],
    ),
    (
        "retry",
        "begin's response lost after commit",
        "retried, work found done; PROMOTED",
        [
            f"{PK}::test_a_task_whose_response_is_lost_after_its_commit_is_retried_safely[lost-response-begin-PROMOTED]",
        ],
    ),
    (
        "retry",
        "apply-stage's response lost after commit",
        "retried, work found done; PROMOTED",
        [
            f"{PK}::test_a_task_whose_response_is_lost_after_its_commit_is_retried_safely[lost-response-apply-stage-PROMOTED]",
        ],
    ),
    (
        "retry",
        "Analyze (PROMOTING)'s response lost after commit",
        "retried, work found done; PROMOTED",
        [
            f"{PK}::test_a_task_whose_response_is_lost_after_its_commit_is_retried_safely[lost-response-analyze-promoting-PROMOTED]",
        ],
    ),
    (
        "retry",
        "promote's response lost after commit",
        "retried, work found done; PROMOTED",
        [
            f"{PK}::test_a_task_whose_response_is_lost_after_its_commit_is_retried_safely[lost-response-promote-PROMOTED]",
        ],
    ),
    (
        "retry",
        "rollback's response lost after commit",
        "retried, work found done; ROLLED_BACK",
        [
            f"{PK}::test_a_task_whose_response_is_lost_after_its_commit_is_retried_safely[lost-response-rollback-ROLLED_BACK]",
        ],
    ),
    (
        "retry",
        "hold's response lost after commit",
        "retried, work found done; PROMOTED",
        [
            f"{PK}::test_a_task_whose_response_is_lost_after_its_commit_is_retried_safely[lost-response-hold-PROMOTED]",
        ],
    ),
    (
        "retry",
        "recheck's response lost after commit",
        "retried, work found done; PROMOTED",
        [
            f"{PK}::test_a_task_whose_response_is_lost_after_its_commit_is_retried_safely[lost-response-recheck-PROMOTED]",
        ],
    ),
    (
        "starts",
        "concurrent starts on one target",
        "exactly one rollout",
        [f"{WF}::test_concurrent_starts_on_one_target_run_exactly_one"],
    ),
    (
        "starts",
        "duplicate idempotency keys",
        "same rollout; other plan refused",
        [
            f"{WF}::test_same_idempotency_key_returns_the_same_rollout",
            "tests/functional/test_api.py::test_same_idempotency_key_same_body_gives_the_same_rollout",
            "tests/functional/test_api.py::test_same_idempotency_key_other_body_is_422",
        ],
    ),
]

# Each AWS call of each task failing for real, one host per fault, all at once on one stack
# (tests/reliability/test_call_faults.py; the cases are in call_fault_cases.py).
CF = "tests/reliability/test_call_faults.py"
_ONCE = f"{CF}::test_each_call_of_a_task_failing_once_changes_nothing"
_PAST = f"{CF}::test_a_call_failing_past_its_retries_takes_the_task_error_path"
_KINDS = {
    "throttle-before": "throttled",
    "5xx-before": "5xx, not done",
    "5xx-after": "5xx, done",
    "timeout-before": "connect timeout",
    "timeout-after": "read timeout, done",
}
_ONCE_ENDS = {
    "rollback": "botocore retries; ROLLED_BACK",
    "record-failure": "retried; FAILED, lock kept; recover frees",
}
ROWS += [
    (
        "calls",
        f"{task}: each call once: {words}",
        _ONCE_ENDS.get(task, "botocore retries; PROMOTED, route = audit"),
        [f"{_ONCE}[{task}-{kind}]"],
    )
    for task in ("begin", "apply-stage", "analyze", "promote", "rollback", "record-failure")
    for kind, words in _KINDS.items()
]
ROWS += [
    (
        "calls",
        "begin: preflight's noise read fails once",
        "no prior; still PROMOTED",
        [f"{_ONCE}[begin-noise-read-5xx-before]"],
    ),
    # Failing on every attempt: botocore gives up and the task's own error path runs.
    *[
        (
            "exhausted",
            f"{task} {call}: {words}",
            ends,
            [f"{_PAST}[{task}-{node}-{kind}-every-try]"],
        )
        for task, call, node, kind, words, ends in [
            (t, c, n, k, w, "Catch -> ROLLED_BACK, cause in reason")
            for t in ("begin", "apply-stage", "analyze")
            for c, n, k, w in (
                ("GetItem", "GetItem1", "5xx-before", "5xx"),
                ("TransactWrite", "TransactWriteItems1", "throttle-before", "throttled"),
                ("TransactWrite", "TransactWriteItems1", "timeout-after", "done, answer lost"),
            )
        ]
        + [
            (
                "promote",
                "GetItem",
                "GetItem1",
                "5xx-before",
                "5xx",
                "Catch -> ROLLED_BACK, cause in reason",
            ),
            (
                "promote",
                "TransactWrite",
                "TransactWriteItems1",
                "throttle-before",
                "throttled",
                "Catch -> ROLLED_BACK, cause in reason",
            ),
            (
                "promote",
                "TransactWrite",
                "TransactWriteItems1",
                "timeout-after",
                "done, answer lost",
                "the commit stands: PROMOTED",
            ),
            (
                "rollback",
                "GetItem",
                "GetItem1",
                "5xx-before",
                "5xx",
                "Rollback retried: ROLLED_BACK",
            ),
            (
                "rollback",
                "1st TransactWrite",
                "TransactWriteItems1",
                "throttle-before",
                "throttled",
                "Rollback retried: ROLLED_BACK",
            ),
            (
                "rollback",
                "2nd TransactWrite",
                "TransactWriteItems2",
                "timeout-after",
                "done, answer lost",
                "Rollback retried: ROLLED_BACK",
            ),
            (
                "apply-stage",
                "every PutEvents",
                "PutEventsevery",
                "5xx-before",
                "5xx",
                "events are best effort: PROMOTED",
            ),
            (
                "record-failure",
                "every TransactWrite",
                "TransactWriteItemsevery",
                "5xx-before",
                "5xx",
                "execution FAILED; recover: ROLLED_BACK",
            ),
        ]
    ],
    (
        "calls",
        "a task makes a call the fault table lacks",
        "the table test fails until it has rows",
        [f"{CF}::test_the_fault_table_names_every_call_each_task_makes"],
    ),
    *[
        ("clock", fault, expected, [f"{CF}::test_the_task_clock_two_minutes_off[{case}]"])
        for case, fault, expected in [
            (
                "skew-ahead-every-task",
                "every task's clock 2 min ahead",
                "no data in window: never PROMOTED",
            ),
            (
                "skew-behind-every-task",
                "every task's clock 2 min behind",
                "no data in window: never PROMOTED",
            ),
            (
                "skew-ahead-analyze-good",
                "Analyze 2 min ahead of the stage stamp",
                "PROMOTED, or ROLLED_BACK: no verdict",
            ),
            (
                "skew-ahead-analyze-bad",
                "Analyze 2 min ahead, bad canary",
                "ROLLED_BACK, never PROMOTED",
            ),
            (
                "skew-behind-analyze-good",
                "Analyze 2 min behind the stage stamp",
                "cannot measure; abortable: ROLLED_BACK",
            ),
            (
                "skew-behind-analyze-bad",
                "Analyze 2 min behind, bad canary",
                "never PROMOTED; ROLLED_BACK",
            ),
        ]
    ],
    (
        "calls",
        "TransactionCanceled on ApplyStage (route moved)",
        "nothing written over it; ROLLED_BACK, cause",
        [f"{CF}::test_a_route_changed_while_apply_stage_writes_is_refused_and_rolled_back"],
    ),
    (
        "calls",
        "TransactionCanceled on ApplyStage (pause won)",
        "redone on a fresh read; pause honoured",
        [f"{CF}::test_a_pause_that_wins_the_race_with_apply_stage_is_honoured"],
    ),
    *[
        (
            "control",
            fault,
            expected,
            [f"{CF}::test_abort_of_a_paused_rollout_whose_send_task_failure_fails[{case}]"],
        )
        for case, fault, expected in [
            (
                "wake-throttled-once",
                "abort's SendTaskFailure throttled once",
                "botocore retries; ROLLED_BACK",
            ),
            (
                "wake-throttled-first-try",
                "abort's SendTaskFailure: 1st call fails",
                "sent again at once; ROLLED_BACK",
            ),
            (
                "wake-failing-every-try",
                "abort's SendTaskFailure fails every try",
                "WakeFailed; re-read carries it: ROLLED_BACK",
            ),
            (
                "wake-answer-lost",
                "abort's SendTaskFailure answer lost",
                "accepted once; ROLLED_BACK",
            ),
        ]
    ],
    (
        "exhausted",
        "promote TransactWrite: done, answer lost every try (the execution's end)",
        "Rollback finds PROMOTED; execution ends in Promoted",
        [f"{CF}::test_a_promote_whose_answer_is_lost_every_time_ends_the_execution_as_promoted"],
    ),
]


class _Collector:
    def __init__(self) -> None:
        self.outcomes: dict[str, list[str]] = defaultdict(list)

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = "xfail" if hasattr(report, "wasxfail") and report.skipped else report.outcome
            self.outcomes[report.nodeid].append(outcome)


def _observed(collector: _Collector, tests: list[str]) -> str:
    found = [
        o
        for node, outs in collector.outcomes.items()
        for o in outs
        if any(node == t or node.startswith(t) for t in tests)
    ]
    if not found:
        return "not run"
    if "failed" in found:
        return "failed"
    if "xfail" in found:
        return "known bug"
    return "passed" if all(o == "passed" for o in found) else ", ".join(sorted(set(found)))


def main(argv: list[str]) -> int:
    import os

    os.chdir(ROOT)
    collector = _Collector()
    nodes = sorted({t.split("[")[0] for _, _, _, tests in ROWS for t in tests})
    pytest.main([*nodes, "-q", "-p", "no:cacheprovider", "--no-header", *argv], plugins=[collector])
    width = max(len(f) for _, f, _, _ in ROWS)
    print(f"\n{'area':<9} {'fault':<{width}}  {'expected':<46} {'observed':<10} result")
    ok = True
    for area, fault, expected, tests in ROWS:
        observed = _observed(collector, tests)
        passed = observed == "passed"
        ok &= passed
        print(
            f"{area:<9} {fault:<{width}}  {expected:<46} {observed:<10} "
            f"{'PASS' if passed else 'FAIL'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
