"""Canary analysis: providers fetch counts, the judge decides what they mean."""

from .counts import Counts
from .evaluate import evaluate
from .judge import Outcome, Verdict, judge

__all__ = ["Counts", "Outcome", "Verdict", "evaluate", "judge"]
