"""Canary analysis: providers fetch counts, the judge decides what they mean."""

from .counts import Counts
from .evaluate import evaluate, judge, preflight
from .judge import MetricVerdict, Outcome, Verdict, judge_ratio, judge_threshold

__all__ = [
    "Counts",
    "MetricVerdict",
    "Outcome",
    "Verdict",
    "evaluate",
    "judge",
    "judge_ratio",
    "judge_threshold",
    "preflight",
]
