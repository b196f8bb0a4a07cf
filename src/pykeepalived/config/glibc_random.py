"""glibc's random() after srandom(seed), so that ${_RANDOM} with global_defs random_seed gives keepalived's numbers.

keepalived expands `${_RANDOM [MIN] MAX}` as random() % (MAX - MIN + 1) + MIN,
and seeds random() with `random_seed` when the config sets one: the same
config then gives the same values on every start, and, with this generator,
the same values as keepalived 2.2.7 (glibc's default TYPE_3 additive
generator: 31 words of state filled by a Lehmer step, 310 outputs discarded).
Pure: integer arithmetic only.
"""

from __future__ import annotations

_DEGREE = 31
_SEPARATION = 3
_MASK32 = 0xFFFFFFFF


def _c_div(a: int, b: int) -> tuple[int, int]:
    """C's truncating division and remainder."""
    q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
    return q, a - q * b


def _int32(value: int) -> int:
    value &= _MASK32
    return value - (1 << 32) if value & 0x80000000 else value


class GlibcRandom:
    def __init__(self, seed: int) -> None:
        seed &= _MASK32
        state = [_int32(seed or 1)]
        for _ in range(1, _DEGREE):
            hi, lo = _c_div(state[-1], 127773)
            word = 16807 * lo - 2836 * hi
            if word < 0:
                word += 2147483647
            state.append(word)
        self._state = state
        self._front = _SEPARATION
        self._rear = 0
        for _ in range(_DEGREE * 10):
            self.random()

    def random(self) -> int:
        """The next value, in [0, 2**31)."""
        s = self._state
        s[self._front] = _int32(s[self._front] + s[self._rear])
        result = (s[self._front] & _MASK32) >> 1
        self._front = (self._front + 1) % _DEGREE
        self._rear = (self._rear + 1) % _DEGREE
        return result

    def between(self, lo: int, hi: int) -> int:
        """keepalived's ${_RANDOM lo hi}."""
        return self.random() % (hi - lo + 1) + lo
