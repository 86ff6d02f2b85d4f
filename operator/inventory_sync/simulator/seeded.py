"""Deterministic randomness addressable by index: item i of a dataset is drawn from (seed, i)
alone, so any page can be generated without generating the ones before it."""

from __future__ import annotations

import bisect
import hashlib
import math
import uuid
from collections.abc import Sequence
from itertools import accumulate
from typing import Generic, TypeVar

_T = TypeVar("_T")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_SERIAL_SPACE = 36**8
_ID_BITS = 62
_ID_SPACE = 1 << _ID_BITS
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class Draws:
    """A stream of random choices from one digest of (key, index); refilled when spent."""

    __slots__ = ("_bits", "_key", "_refills")

    def __init__(self, key: bytes, index: int) -> None:
        self._key = key + index.to_bytes(8, "big", signed=False)
        self._refills = 0
        self._bits = self._digest()

    def _digest(self) -> int:
        data = self._key + self._refills.to_bytes(2, "big")
        return int.from_bytes(hashlib.blake2b(data, digest_size=64).digest(), "big")

    def below(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        if self._bits < (1 << 64):
            self._refills += 1
            self._bits = self._digest()
        self._bits, value = divmod(self._bits, n)
        return value

    def unit(self) -> float:
        """A float in [0, 1)."""
        return self.below(1 << 30) / (1 << 30)

    def chance(self, p: float) -> bool:
        return self.unit() < p

    def choice(self, values: Sequence[_T]) -> _T:
        return values[self.below(len(values))]

    # The subset of random.Random that dataset.ItemFactory uses, so one item's fields can be
    # drawn from (seed, index) with the same code that draws added items from a Random.

    def random(self) -> float:
        return self.unit()

    def randrange(self, start: int, stop: int | None = None) -> int:
        if stop is None:
            start, stop = 0, start
        return start + self.below(stop - start)

    def randint(self, low: int, high: int) -> int:
        return low + self.below(high - low + 1)

    def getrandbits(self, count: int) -> int:
        return self.bits(count)

    def choices(
        self,
        population: Sequence[_T],
        weights: Sequence[float] | None = None,
        *,
        cum_weights: Sequence[float] | None = None,
        k: int = 1,
    ) -> list[_T]:
        if weights is None and cum_weights is None:
            return [population[self.below(len(population))] for _ in range(k)]
        bounds = list(accumulate(weights)) if weights is not None else list(cum_weights or ())
        return [population[bisect.bisect_right(bounds, self.unit() * bounds[-1])] for _ in range(k)]

    def bytes(self, count: int) -> list[int]:
        """`below(256)`, `count` times, by shifts instead of divisions (the same values)."""
        out = []
        for _ in range(count):
            if self._bits < (1 << 64):
                out.append(self.below(256))
                continue
            out.append(self._bits & 0xFF)
            self._bits >>= 8
        return out

    def bits(self, count: int) -> int:
        """`count` random bits (at most 64 at a time are taken from the stream)."""
        value = 0
        for _ in range(0, count, 32):
            value = (value << 32) | self.below(1 << 32)
        return value >> (-count % 32)


class Weighted(Generic[_T]):
    """A weighted choice table, drawn with one integer."""

    def __init__(self, values: Sequence[_T], weights: Sequence[int]) -> None:
        self.values = list(values)
        self._bounds = list(accumulate(weights))

    def draw(self, draws: Draws) -> _T:
        return self.values[bisect.bisect_right(self._bounds, draws.below(self._bounds[-1]))]


class Permutation:
    """An affine bijection of [0, n): cheap both ways, different per seed."""

    def __init__(self, n: int, key: bytes) -> None:
        self.n = n
        if n <= 1:
            self._a, self._b, self._inverse = 1, 0, 1
            return
        draws = Draws(key, n)
        a = draws.below(n - 1) + 1
        while math.gcd(a, n) != 1:
            a = a % (n - 1) + 1
        self._a, self._b = a, draws.below(n)
        self._inverse = pow(a, -1, n)

    def __call__(self, i: int) -> int:
        return (self._a * i + self._b) % self.n if self.n > 1 else i

    def inverse(self, j: int) -> int:
        return ((j - self._b) * self._inverse) % self.n if self.n > 1 else j


class IdCodec:
    """Version-4 UUIDs that encode an index: random-looking, unique, decodable."""

    def __init__(self, key: bytes) -> None:
        draws = Draws(key, 0)
        self._a = draws.bits(_ID_BITS) | 1
        self._b = draws.bits(_ID_BITS)
        self._inverse = pow(self._a, -1, _ID_SPACE)
        self._salt = draws.bits(64)

    def encode(self, index: int) -> str:
        low = (self._a * index + self._b) % _ID_SPACE
        # The other bits only make ids look random: a multiplicative hash of the low ones.
        high = ((low * _GOLDEN) ^ self._salt) & _MASK64
        value = (high << 64) | low
        value = (value & ~(0xF << 76)) | (4 << 76)  # version 4
        value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def decode(self, text: str) -> int | None:
        """The index `text` encodes, or None when it is not one of ours."""
        try:
            value = uuid.UUID(text).int
        except ValueError:
            return None
        index = ((value & (_ID_SPACE - 1)) - self._b) * self._inverse % _ID_SPACE
        return index if self.encode(index) == text else None


class SerialCodec:
    """Ten-character serial numbers (two letters, eight of A-Z0-9) that encode an index."""

    def __init__(self, key: bytes, prefixes: Sequence[str]) -> None:
        draws = Draws(key, 1)
        a = draws.below(_SERIAL_SPACE - 1) + 1
        while math.gcd(a, 36) != 1:
            a += 1
        self._a, self._b = a, draws.below(_SERIAL_SPACE)
        self._inverse = pow(a, -1, _SERIAL_SPACE)
        self._prefixes = list(prefixes)
        self._key = key

    def encode(self, index: int) -> str:
        value = (self._a * index + self._b) % _SERIAL_SPACE
        digits = []
        for _ in range(8):
            value, digit = divmod(value, 36)
            digits.append(_ALNUM[digit])
        prefix = self._prefixes[((index * _GOLDEN) >> 17) % len(self._prefixes)]
        return prefix + "".join(reversed(digits))

    def decode(self, text: str) -> int | None:
        """The index `text` encodes, or None when it is not one of ours."""
        if len(text) != 10:
            return None
        value = 0
        for char in text[2:]:
            digit = _ALNUM.find(char)
            if digit < 0:
                return None
            value = value * 36 + digit
        index = (value - self._b) * self._inverse % _SERIAL_SPACE
        return index if self.encode(index) == text else None
