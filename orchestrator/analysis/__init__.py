"""Canary analysis: providers fetch counts, the judge decides what they mean."""

from .counts import Counts
from .evaluate import evaluate, preflight
from .judge import MetricVerdict, Outcome, Verdict, judge_ratio, judge_threshold

__all__ = [
    "Counts",
    "MetricVerdict",
    "Outcome",
    "Verdict",
    "evaluate",
    "judge_ratio",
    "judge_threshold",
    "preflight",
]
