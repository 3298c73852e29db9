"""The measured error rate of a call: how often validation calls made under the same conditions were wrong.

Owns the conditions a call is compared under (`conditions`: marker, query
length class, identity bin, gap bin and the level of the call), the
validation cells they are counted in (`CallCells`, stored in a validation
report under "call_cells"), the exact (Clopper-Pearson) 95 % interval, and
`error_rate_of`, which turns a stored validation and a decision into an
`ErrorRate` with a sentence for court.

What "wrong" means, per level of call (the same for the validation query and
for the call it is compared with):
- species: another species than the query's own;
- genus: another genus than the query's own;
- ambiguous: the query's own species is not among the candidates;
- no identification: never wrong, and no rate is given.

The rate is measured on leave-one-out queries of species in the library; calls
made under the same conditions on queries of species held out of the library
(false calls, whose number depends on how many such queries the validation
drew) are counted beside it and stated, not mixed into the rate.

Invariants: the bins are fixed here and named in words in the statement; a
cell is looked up exactly, then by marker, length class and level only
(said so), never borrowed from another marker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from species_ref.vocab import DecisionLevel

#: (lower bound, words); a value falls in the last bin whose bound it reaches.
LENGTH_CLASSES = (
    (0, "under 150 bp"),
    (150, "150-299 bp"),
    (300, "300-499 bp"),
    (500, "500 bp or more"),
)
IDENTITY_BINS = (
    (0.0, "below 95 %"),
    (95.0, "95-98 %"),
    (98.0, "98-99 %"),
    (99.0, "99-99.5 %"),
    (99.5, "99.5 % or more"),
)
GAP_BINS = ((0.0, "under 1 %"), (1.0, "1-3 %"), (3.0, "3 % or more"))
NO_OTHER = "no other species"


class _Call(Protocol):
    @property
    def level(self) -> DecisionLevel: ...
    @property
    def identity(self) -> float | None: ...
    @property
    def next_species_distance(self) -> float | None: ...


def _bin(value: float, bins: tuple[tuple[Any, str], ...]) -> str:
    words = bins[0][1]
    for bound, name in bins:
        if value >= bound:
            words = name
    return words


def conditions(
    *,
    marker: str,
    query_length: int,
    identity: float | None,
    gap: float | None,
    level: DecisionLevel,
) -> str:
    """The key of the cell a call is counted in: marker|length|identity|gap|level."""
    ident = "none" if identity is None else _bin(identity, IDENTITY_BINS)
    gap_words = NO_OTHER if gap is None else _bin(gap, GAP_BINS)
    return "|".join((marker, _bin(query_length, LENGTH_CLASSES), ident, gap_words, str(level)))


def is_wrong(
    *, level: DecisionLevel, taxon: str | None, truth: str, candidates: list[str], absent: bool
) -> bool:
    """Whether a validation call was wrong, by the definitions in the module docstring."""
    if level is DecisionLevel.SPECIES:
        return absent or taxon != truth
    if level is DecisionLevel.GENUS:
        return taxon != truth.split(" ", 1)[0]
    if level is DecisionLevel.AMBIGUOUS:
        return absent or truth not in candidates
    return False


PRESENT = "present|"  # leave-one-out queries: their species is in the library
ABSENT = "absent|"  # queries of species held out of the library: every call is false


@dataclass
class CallCells:
    """Validation calls counted per experiment and conditions key: [calls, wrong]."""

    cells: dict[str, list[int]]

    @classmethod
    def empty(cls) -> CallCells:
        return cls({})

    def add(self, key: str, wrong: bool, *, absent: bool = False) -> None:
        cell = self.cells.setdefault((ABSENT if absent else PRESENT) + key, [0, 0])
        cell[0] += 1
        cell[1] += int(wrong)

    def to_dict(self) -> dict[str, list[int]]:
        return {k: list(v) for k, v in sorted(self.cells.items())}


def clopper_pearson(wrong: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial 95 % interval for `wrong` of `n` (bisection on the binomial CDF)."""
    if n <= 0:
        return 0.0, 1.0
    alpha = (1.0 - level) / 2.0

    def cdf(k: int, p: float) -> float:  # P(X <= k)
        if p <= 0.0:
            return 1.0
        if p >= 1.0:
            return 0.0 if k < n else 1.0
        lp, lq = math.log(p), math.log1p(-p)
        total = 0.0
        for i in range(k + 1):
            total += math.exp(
                math.lgamma(n + 1)
                - math.lgamma(i + 1)
                - math.lgamma(n - i + 1)
                + i * lp
                + (n - i) * lq
            )
        return min(total, 1.0)

    def solve(target: float, k: int) -> float:  # p with cdf(k, p) == target; cdf falls with p
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if cdf(k, mid) > target:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    low = 0.0 if wrong == 0 else solve(1.0 - alpha, wrong - 1)
    high = 1.0 if wrong == n else solve(alpha, wrong)
    return low, high


@dataclass(frozen=True)
class ErrorRate:
    """How often validation calls like this one were wrong, with its 95 % interval."""

    count: int
    wrong: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    statement: str
    conditions: str = ""  # the conditions counted, in words ("" when not validated)
    validated: bool = True
    false_calls: int = 0  # calls like this one on queries of species held out of the library
    absent_queries: int = 0  # queries of held-out species in the validation

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "wrong": self.wrong,
            "rate": self.rate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "statement": self.statement,
            "conditions": self.conditions,
            "validated": self.validated,
            "false_calls": self.false_calls,
            "absent_queries": self.absent_queries,
        }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _cell_words(key: str, *, every_identity_and_gap: bool = False) -> str:
    marker, length, ident, gap, level = key.split("|")
    if every_identity_and_gap:
        return f"{level} calls on {marker}, queries {length}, any identity and gap"
    return f"{level} calls on {marker}, queries {length}, {_identity_and_gap_words(key)}"


def _identity_and_gap_words(key: str) -> str:
    _marker, _length, ident, gap, _level = key.split("|")
    gap_words = NO_OTHER if gap == NO_OTHER else f"next species {gap} away"
    return f"identity {ident}, {gap_words}"


def error_rate_of(
    validation: Mapping[str, Any] | None, call: _Call, *, query_length: int, marker: str | None
) -> ErrorRate:
    """The measured error rate of calls like `call` in a stored validation report.

    The statement names the conditions the calls were counted under; when none had
    the call's identity and gap, those are the marker, length class and level only,
    and a separate sentence says that no call had the call's identity and gap.
    """
    if call.level is DecisionLevel.NONE:
        return ErrorRate(
            0,
            0,
            None,
            None,
            None,
            "No identification was made, so no error rate applies.",
            validated=validation is not None,
        )
    cells = None if validation is None else validation.get("call_cells")
    if not isinstance(cells, dict):
        why = (
            "has not been validated"
            if validation is None
            else "was validated before call error rates were kept"
        )
        return ErrorRate(
            0, 0, None, None, None,
            f"The library version {why} under this rule, so the error rate of this call is "
            "unknown; validate the library to measure it.",
            validated=False,
        )  # fmt: skip
    key = conditions(
        marker=marker or "?", query_length=query_length, identity=call.identity,
        gap=call.next_species_distance, level=call.level,
    )  # fmt: skip
    words = _cell_words(key)
    like = f"like this one ({words})"
    n, wrong = _count(cells, PRESENT + key)
    m, _ = _count(cells, ABSENT + key)
    narrower = ""
    if n == 0:
        prefix = "|".join(key.split("|")[:2]) + "|"
        suffix = "|" + str(call.level)
        n, wrong = _sum(cells, lambda k: k.startswith(PRESENT + prefix) and k.endswith(suffix))
        m, _ = _sum(cells, lambda k: k.startswith(ABSENT + prefix) and k.endswith(suffix))
        words = _cell_words(key, every_identity_and_gap=True)
        like = f"with this call's marker, query length and level ({words})"
        narrower = (
            " No validation call on a species in the library had this call's identity and gap "
            f"({_identity_and_gap_words(key)})."
        )
    assert validation is not None  # it holds call cells
    absent_n = _absent_queries(validation)
    held_out = (
        f" Queries of species held out of the library received {m} such "
        f"{'call' if m == 1 else 'calls'} in the same validation (of {absent_n} held-out queries)"
        + (
            f"; {'it was a false call' if m == 1 else 'each was a false call'}, since the "
            "query's species was not in the library."
            if m and call.level is not DecisionLevel.GENUS
            else (
                "; their species was not in the library, but a species of its genus was, so a "
                "genus call on them is right when it names that genus."
                if m
                else "."
            )
        )
    )
    if n == 0:
        return ErrorRate(
            0, 0, None, None, None,
            f"No validation call on a species in the library was made {like}, so the error "
            "rate of this call is unknown." + held_out,
            conditions=words, false_calls=m, absent_queries=absent_n,
        )  # fmt: skip
    low, high = clopper_pearson(wrong, n)
    rate = wrong / n
    calls = "call" if n == 1 else "calls"
    was = "was" if wrong == 1 else "were"
    statement = (
        f"Of {n} validation {calls} {like} on species in the library, "
        f"{wrong} {was} wrong: {_pct(rate)} %, 95 % CI {_pct(low)}-{_pct(high)} %."
        + held_out
        + narrower
    )
    return ErrorRate(
        n, wrong, round(rate, 4), round(low, 4), round(high, 4), statement,
        conditions=words, false_calls=m, absent_queries=absent_n,
    )  # fmt: skip


def _absent_queries(validation: Mapping[str, Any]) -> int:
    absent = validation.get("absent")
    overall = absent.get("overall") if isinstance(absent, dict) else None
    n = overall.get("n") if isinstance(overall, dict) else None
    return int(n) if isinstance(n, int) else 0


def _count(cells: Mapping[str, Any], key: str) -> tuple[int, int]:
    cell = cells.get(key)
    if isinstance(cell, list) and len(cell) == 2:
        return int(cell[0]), int(cell[1])
    return 0, 0


def _sum(cells: Mapping[str, Any], keep: Any) -> tuple[int, int]:
    n = wrong = 0
    for k, v in cells.items():
        if keep(k) and isinstance(v, list) and len(v) == 2:
            n += int(v[0])
            wrong += int(v[1])
    return n, wrong
