"""Flag data in the SDK's file-data-source format, read the way the SDK itself reads it.

``{"flags": {key: flag JSON}, "segments": {key: segment JSON}, "flagValues": {key: value}}``
(JSON or YAML). The file is loaded by the SDK's own file data source into the SDK's own
in-memory store, so a file the SDK would reject is rejected here with the SDK's reason, and
what is stored is what the SDK decoded (a ``flagValues`` entry becomes the one-variation
flag the SDK makes of it). On top of the SDK, unknown fields are refused: the SDK ignores
them, so a misspelt ``fallthrough`` would silently serve something else.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ldclient.feature_store import InMemoryFeatureStore

# The fields LaunchDarkly's flag and segment JSON carry (the SDK's model, ldclient.impl.model).
FLAG_FIELDS = frozenset(
    {
        "key", "version", "deleted", "on", "variations", "offVariation", "fallthrough",
        "prerequisites", "targets", "contextTargets", "rules", "salt", "trackEvents",
        "trackEventsFallthrough", "debugEventsUntilDate", "clientSide",
        "clientSideAvailability", "migration", "excludeFromSummaries", "samplingRatio",
    }
)  # fmt: skip
SEGMENT_FIELDS = frozenset(
    {
        "key", "version", "deleted", "included", "excluded", "includedContexts",
        "excludedContexts", "rules", "salt", "unbounded", "unboundedContextKind", "generation",
    }
)  # fmt: skip
TOP_LEVEL = frozenset({"flags", "segments", "flagValues"})
# DynamoDB holds at most 400 KB in an item (names and values); each flag's JSON is stored
# in one, beside its key and a few small attributes (``orchestrator.flags.store``).
MAX_ITEM_BYTES = 400 * 1024
ITEM_OVERHEAD_BYTES = 4096


class FlagDataError(ValueError):
    """The flag data cannot be synced; the message names the flag, segment or field."""


@dataclass(frozen=True)
class FlagData:
    """Flags and segments as the SDK holds them (JSON objects), by key."""

    flags: dict[str, dict[str, Any]] = field(default_factory=dict)
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def variation_keys(self, flag: str) -> set[str]:
        """The ``variations`` keys a flag's values can produce (``edge.flags.value_key``)."""
        from edge.flags import value_key

        return {value_key(value) for value in self.flags[flag].get("variations") or []}


def from_store(store: InMemoryFeatureStore) -> FlagData:
    """The flags and segments an SDK feature store holds, as their JSON objects."""
    from ldclient.versioned_data_kind import FEATURES, SEGMENTS

    flags = store.all(FEATURES, lambda items: items)  # type: ignore[no-untyped-call]
    segments = store.all(SEGMENTS, lambda items: items)  # type: ignore[no-untyped-call]
    return FlagData(
        flags={key: dict(item.to_json_dict()) for key, item in flags.items()},
        segments={key: dict(item.to_json_dict()) for key, item in segments.items()},
    )


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def load_file(path: Path) -> FlagData:
    """Load ``path`` with the SDK's file data source; ``FlagDataError`` names what is wrong."""
    from ldclient import Config
    from ldclient.feature_store import InMemoryFeatureStore
    from ldclient.integrations import Files

    if not path.is_file():
        raise FlagDataError(f"{path}: no such file")
    _check_fields(path)
    store = InMemoryFeatureStore()  # type: ignore[no-untyped-call]
    factory = Files.new_data_source(paths=[str(path)])
    assert factory is not None
    source = factory(Config("edgeshift-flags-sync", send_events=False), store, threading.Event())
    captured = _Captured()
    logger = logging.getLogger("ldclient.util")
    logger.addHandler(captured)
    try:
        # The SDK prints a traceback as well as logging the reason: keep the reason only.
        with contextlib.redirect_stderr(io.StringIO()):
            source.start()  # type: ignore[no-untyped-call]
    finally:
        logger.removeHandler(captured)
        source.stop()  # type: ignore[no-untyped-call]
    if not source.initialized():
        reason = captured.messages[0] if captured.messages else "the SDK did not load it"
        raise FlagDataError(reason)
    return from_store(store)


def _check_fields(path: Path) -> None:
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FlagDataError(f"{path}: not readable JSON or YAML ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise FlagDataError(f"{path}: must be an object with flags, segments or flagValues")
    unknown = sorted(str(k) for k in document if k not in TOP_LEVEL)
    if unknown:
        raise FlagDataError(
            f"{unknown[0]}: unknown top-level field (known: flags, segments, flagValues)"
        )
    for section, known in (("flags", FLAG_FIELDS), ("segments", SEGMENT_FIELDS)):
        entries = document.get(section) or {}
        if not isinstance(entries, dict):
            raise FlagDataError(f"{section}: must map keys to objects")
        for key, item in entries.items():
            if not isinstance(item, dict):
                raise FlagDataError(f"{section}.{key}: must be an object")
            # `on: true` unquoted: YAML 1.1 reads the key as the boolean true.
            if section == "flags" and any(name is True for name in item) and "on" not in item:
                raise FlagDataError(
                    f'{section}.{key}.on: YAML reads an unquoted on as true; write "on": ...'
                )
            extra = sorted(str(name) for name in item if name not in known)
            if extra:
                raise FlagDataError(f"{section}.{key}.{extra[0]}: unknown field")
            if item.get("key", key) != key:
                raise FlagDataError(f"{section}.{key}.key: is {item['key']!r}, not {key!r}")


def size_problems(data: FlagData) -> list[str]:
    """Flags and segments whose stored JSON is too big for one table item, naming each:
    refused before anything is written, not by the table half-way through a sync."""
    from .store import encode

    problems: list[str] = []
    for section, items in (("flags", data.flags), ("segments", data.segments)):
        for key, item in sorted(items.items()):
            size = len(encode(item).encode())
            if size > MAX_ITEM_BYTES - ITEM_OVERHEAD_BYTES:
                problems.append(
                    f"{section}.{key}: {size // 1024} KB as stored, over the "
                    f"{MAX_ITEM_BYTES // 1024} KB a table item holds (split its target lists "
                    "into segments)"
                )
    return problems


def rule_problems(rules: list[Any], data: FlagData) -> list[str]:
    """Why flag-routed ``rules`` (``RouteRule``) cannot be served from ``data``, naming each.

    A rule's flag must be in the data, and each value its ``variations`` maps must be one
    the flag can serve: a mapped value the flag lacks means the author meant another flag.
    """
    problems: list[str] = []
    for rule in rules:
        assignment = getattr(rule, "assignment", None)
        if assignment is None:
            continue
        where = f"{rule.host} {rule.path_rule}: assignment"
        if assignment.flag not in data.flags:
            problems.append(f"{where}.flag: flag {assignment.flag!r} is not in the flag data")
            continue
        problems += [f"{where}.flag: {problem}" for problem in _dangling(assignment.flag, data)]
        served = data.variation_keys(assignment.flag)
        for value in sorted(set(assignment.variations) - served):
            problems.append(
                f"{where}.variations.{value}: flag {assignment.flag!r} has no such value "
                f"(its values: {', '.join(sorted(served))})"
            )
    return problems


def _dangling(flag: str, data: FlagData) -> list[str]:
    """The prerequisite flags and matched segments ``flag`` needs (its own and its
    prerequisites', transitively) that ``data`` lacks: the SDK would serve the off
    variation for a missing prerequisite, and never match a missing segment, silently."""
    return _walk(flag, data)[0]


def needed_items(flag: str, data: FlagData) -> set[tuple[str, str]]:
    """Every item serving ``flag`` takes, as ``("flag" | "segment", key)``: the flag, its
    prerequisites transitively, and the segments any of them match (those ``data`` holds)."""
    return _walk(flag, data)[1]


def _walk(flag: str, data: FlagData) -> tuple[list[str], set[tuple[str, str]]]:
    problems: list[str] = []
    needed: set[tuple[str, str]] = set()
    seen: set[str] = set()
    pending = [flag]
    while pending:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        item = data.flags.get(key)
        if item is None:
            continue
        needed.add(("flag", key))
        for prerequisite in item.get("prerequisites") or []:
            wanted = prerequisite.get("key") if isinstance(prerequisite, dict) else None
            if isinstance(wanted, str) and wanted not in data.flags:
                problems.append(f"flag {key!r} needs prerequisite flag {wanted!r}, not in the data")
            elif isinstance(wanted, str):
                pending.append(wanted)
        for rule in item.get("rules") or []:
            for clause in (rule.get("clauses") or []) if isinstance(rule, dict) else []:
                if not isinstance(clause, dict) or clause.get("op") != "segmentMatch":
                    continue
                for segment in clause.get("values") or []:
                    if not isinstance(segment, str):
                        continue
                    if segment in data.segments:
                        needed.add(("segment", segment))
                    else:
                        problems.append(
                            f"flag {key!r} matches segment {segment!r}, not in the data"
                        )
    return problems, needed
