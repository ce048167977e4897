"""What providers return: counts, never rates. Statistics belong to the judge."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Counts:
    errors: int
    total: int

    def __post_init__(self) -> None:
        if self.total < 0 or self.errors < 0:
            raise ValueError(f"counts cannot be negative: {self}")
        if self.errors > self.total:
            raise ValueError(f"more errors ({self.errors}) than requests ({self.total})")

    @property
    def rate(self) -> float:
        return self.errors / self.total if self.total else 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.errors + other.errors, self.total + other.total)
