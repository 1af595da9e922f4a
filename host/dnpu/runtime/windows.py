"""The memory windows of a run: which device memory the NPU may touch (docs/EXECUTION.md,
"Memory windows"). `Device.run` programs them before every START, on every backend.

The default grants exactly the buffers the run uses, each whole (its reserved size, a
multiple of 64 bytes, so whole AXI beats on every profile):

- the buffer holding the program: X (instruction fetch);
- every buffer that an argument points into (a Buffer, or an int address inside one;
  ints that are no buffer's address, such as counts, grant nothing), and every buffer in
  `grant` (memory the program reaches through an address it reads from memory, not from an
  argument register): R and W.

A buffer that is both gets R, W and X (the compiler's layouts put a program and its data in
one buffer). Windows whose extents touch and whose permissions are equal merge into one.
More than the NPU's windows left: ValueError (pass fewer buffers or `windows=`).

`windows=` replaces the default: a list of `(buffer, perms)` or `(addr, nbytes, perms)`,
perms a string of the letters r, w, x; or "all": one window over the whole 32-bit address
space with r, w and x (no protection: for debugging).
"""

from __future__ import annotations

import bisect

from dnpu.spec import csr

__all__ = ["NWIN", "R", "W", "X", "plan", "perm_bits", "perm_text", "describe"]

NWIN = csr.REGS["WIN_BASE"].count
R, W, X = (csr.mask("WIN_PERM", b) for b in "RWX")
_LETTERS = {"r": R, "w": W, "x": X}
_M32 = 0xFFFF_FFFF


def perm_bits(perms: str) -> int:
    """"rw" -> R | W; ValueError for anything but the letters r, w, x."""
    if not isinstance(perms, str) or any(c not in _LETTERS for c in perms.lower()):
        raise ValueError(f"window permissions {perms!r}: a string of the letters r, w, x")
    bits = 0
    for c in perms.lower():
        bits |= _LETTERS[c]
    return bits


def perm_text(bits: int) -> str:
    return "".join(c for c, b in _LETTERS.items() if bits & b) or "-"


def _explicit(windows) -> list[tuple[int, int, int]]:
    if windows == "all":
        return [(0, _M32, R | W | X)]
    if isinstance(windows, str) or not isinstance(windows, (list, tuple)):
        raise ValueError(f"windows = {windows!r}: a list of (buffer, perms) or (addr, nbytes, perms), or 'all'")
    out = []
    for w in windows:
        if isinstance(w, tuple) and len(w) == 2 and hasattr(w[0], "size"):
            if w[0].freed:
                raise ValueError(f"windows: {w[0]!r} is freed")
            base, n, p = w[0].addr, w[0].size, w[1]
        elif isinstance(w, tuple) and len(w) == 3:
            base, n, p = int(w[0]), int(w[1]), w[2]
        else:
            raise ValueError(f"window {w!r}: expected (buffer, perms) or (addr, nbytes, perms)")
        if n < 1 or base < 0 or base + n > _M32 + 1:
            raise ValueError(f"window {w!r}: [0x{base:X}, +{n}) is not a non-empty range of the 32-bit space")
        out.append((base, base + n - 1, perm_bits(p)))
    return out


def plan(extents, prog: int, args, grant=(), windows=None) -> list[tuple[int, int, int]]:
    """(base, limit, perm) for each of the NWIN windows (unused ones (0, 0, 0)).

    extents: (addr, size) of the device's live buffers; prog, args, grant: addresses."""
    if windows is not None:
        wins = _explicit(windows)
        what = "windows given"
    else:
        ext = sorted(extents)
        starts = [a for a, _ in ext]

        def holder(addr: int):
            i = bisect.bisect_right(starts, addr) - 1
            return ext[i] if i >= 0 and addr < ext[i][0] + ext[i][1] else None

        perms: dict[tuple[int, int], int] = {}
        for addr, bit in [(prog, X)] + [(a, R | W) for a in (*args, *grant)]:
            e = holder(addr)
            if e is not None:
                perms[e] = perms.get(e, 0) | bit
        wins = []
        for (a, n), p in sorted(perms.items()):
            if wins and wins[-1][1] + 1 == a and wins[-1][2] == p:
                wins[-1] = (wins[-1][0], a + n - 1, p)
            else:
                wins.append((a, a + n - 1, p))
        what = "buffers the run uses"
    if len(wins) > NWIN:
        raise ValueError(f"the {what} need {len(wins)} memory windows ({describe(wins)}); the NPU has "
                         f"{NWIN}: place the data in fewer buffers, or pass windows=")
    return wins + [(0, 0, 0)] * (NWIN - len(wins))


def describe(wins) -> str:
    """'[0x01000000, 0x010003FF] rwx, ...' of the enabled windows."""
    return ", ".join(f"[0x{b:08X}, 0x{lim:08X}] {perm_text(p)}" for b, lim, p in wins if p) or "none"
