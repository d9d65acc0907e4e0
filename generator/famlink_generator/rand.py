"""A tiny keyed PRNG (splitmix64) for per-record choices.

Seeding Python's Mersenne Twister costs ~20 microseconds; millions of records
each need their own deterministic stream, so this keyed generator is used
instead. Same keys, same numbers, on every platform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

_M = (1 << 64) - 1
_G = 0x9E3779B97F4A7C15
T = TypeVar("T")


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
    return z ^ (z >> 31)


class KeyedRandom:
    """random.Random-like subset (random, randrange, randint, choice, uniform)."""

    __slots__ = ("s",)

    def __init__(self, *keys: int) -> None:
        s = _G
        for k in keys:
            s = _mix((s ^ (k & _M)) + _G & _M)
        self.s = s

    def _next(self) -> int:
        self.s = (self.s + _G) & _M
        return _mix(self.s)

    def random(self) -> float:
        """Uniform float in [0, 1)."""
        return (self._next() >> 11) * (1.0 / 9007199254740992.0)

    def randrange(self, a: int, b: int | None = None) -> int:
        """Like random.randrange(a[, b])."""
        if b is None:
            a, b = 0, a
        return a + self._next() % (b - a)

    def randint(self, a: int, b: int) -> int:
        """Inclusive both ends."""
        return a + self._next() % (b - a + 1)

    def uniform(self, a: float, b: float) -> float:
        """Uniform float in [a, b)."""
        return a + (b - a) * self.random()

    def choice(self, seq: Sequence[T]) -> T:
        """One element."""
        return seq[self._next() % len(seq)]
