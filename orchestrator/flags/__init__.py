"""Flag data for flag-routed rules: read in the SDK's format, checked against the rules that
use it, and written where the edge reads it (``edge.flags``); ``sync`` is the scheduled
Lambda that takes it from LaunchDarkly."""

from .data import FlagData, FlagDataError, load_file, rule_problems, size_problems
from .store import FlagStore, StaleFlagError, SyncResult, UnservedRules

__all__ = [
    "FlagData",
    "FlagDataError",
    "FlagStore",
    "StaleFlagError",
    "SyncResult",
    "UnservedRules",
    "load_file",
    "rule_problems",
    "size_problems",
]
