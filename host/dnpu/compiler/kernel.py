"""What every compiled kernel program is: its binary and source, where its buffers lie in
external memory, and the order its argument registers take them (the transformer kernels
of `dnpu.compiler.norm`, `.swiglu`, `.rope` and `.embed` are built with `build`)."""

from __future__ import annotations

import dataclasses

from dnpu.spec import isa
from dnpu.spec.mx import PACK_ALIGN, align_up

__all__ = ["KernelProgram", "build", "loop"]


@dataclasses.dataclass(frozen=True)
class KernelProgram:
    """A compiled kernel: `layout` maps each buffer (the program first) to (offset from the
    base, bytes), every offset 64-byte aligned; argument register i carries the address of
    buffer `arg_order[i]`; `tile` is the kernel's unit of work per SRAM tile (rows or
    tokens) and `shape` the sizes it was compiled for."""

    name: str
    config_name: str
    shape: tuple[tuple[str, int], ...]
    tile: int
    asm: str
    binary: bytes
    layout: dict[str, tuple[int, int]]
    arg_order: tuple[str, ...]

    @property
    def nbytes(self) -> int:
        return max(off + n for off, n in self.layout.values())

    def args(self, base: int) -> list[int]:
        return [base + self.layout[name][0] for name in self.arg_order]


def build(name: str, config_name: str, shape: dict[str, int], tile: int, src: str,
          buffers: list[tuple[str, int]], arg_order: tuple[str, ...]) -> KernelProgram:
    """Assemble src and lay out the program and `buffers` ((name, bytes), in that order)."""
    binary = isa.assemble(src, filename=f"<{name} {' '.join(f'{k}={v}' for k, v in shape.items())}>")
    layout, off = {}, 0
    for buf, n in [("program", len(binary)), *buffers]:
        layout[buf] = (off, n)
        off = align_up(off + n, PACK_ALIGN)
    return KernelProgram(name, config_name, tuple(shape.items()), tile, src, binary, layout, tuple(arg_order))


def loop(count: int, body: list[str]) -> list[str]:
    """body (one instruction an entry) repeated count times: nothing for count 0, the body
    itself for 1, else a hardware loop (C_LOOPI) around it."""
    if count <= 0:
        return []
    if count == 1:
        return list(body)
    return [f"C_LOOPI {count}, {len(body)}", *body]
