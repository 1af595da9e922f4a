"""The Verilator co-simulation model: `build` (build and cache) and `binding` (ctypes).

    res = ensure_built("sim")                  # builds once, then reuses the cache
    m = Model(res.path, clock_period_ps=10_000)
    m.map(0x1000_0000, 4096); m.write(0x1000_0000, prog)
    m.csr_write(csr.offset("PROG_BASE"), 0x1000_0000)
    r = m.run(ctrl=START, budget=1_000_000, watchdog=100_000)

The model is `hw/rtl/top/dnpu_top.v` (every other module found by name under hw/rtl/)
compiled with `cosim/harness.cpp` into one shared library with a C ABI
(`cosim/dnpu_cosim.h`). It is built into
`<cache>/<profile>-<key>/libdnpu_cosim.so`, where the key hashes every `hw/rtl/**/*.v`
and `*.vh`, the harness sources, the build flags, the Verilator version and the C++
compiler's version; `<cache>` is `$DNPU_COSIM_CACHE`, else `$XDG_CACHE_HOME/dnpu/cosim`,
else `~/.cache/dnpu/cosim`. A build holds a lock on its key, builds in a private folder
and renames it into place, so concurrent users build once. `BUILD_COUNT` counts the
builds this process ran (tests assert that a second open builds nothing).

    python -m dnpu.runtime.cosim build [--profile sim] [--rebuild]   # prints the library
    python -m dnpu.runtime.cosim key|path [--profile sim]
    python -m dnpu.runtime.cosim clean                               # removes the cache
    python -m dnpu.runtime.cosim serve-serial [--profile sim] [--port N]

A second top, `hw/rtl/top/dnpu_uart_top.v` with `cosim/uart_harness.cpp`
(`ensure_built(profile, top="dnpu_uart_top")`), is the co-simulated serial board that
`dnpu.runtime.cosim.serial_board` serves on a TCP port for the `serial` backend.
"""

from dnpu.runtime.cosim import build as _build
from dnpu.runtime.cosim.binding import (ABI_VERSION, RETIRE_DTYPE, RUN_REASONS, TRACE_MAX, CosimError, Model,
                                        RunStats, check_library)
from dnpu.runtime.cosim.build import (BUILD_TIMEOUT, LIB_NAME, BuildResult, CosimBuildError, build_timeout,
                                      cache_key, cache_root, cosim_dir, ensure_built, entry_path, profile_define,
                                      rtl_dir, verilator_exe)

__all__ = ["Model", "RunStats", "BuildResult", "CosimError", "CosimBuildError", "ensure_built",
           "cache_key", "cache_root", "entry_path", "profile_define", "rtl_dir", "cosim_dir", "verilator_exe",
           "BUILD_COUNT", "RUN_REASONS", "RETIRE_DTYPE", "TRACE_MAX", "ABI_VERSION", "LIB_NAME", "check_library",
           "build_timeout", "BUILD_TIMEOUT"]


def __getattr__(name):
    # A live view: ensure_built counts into dnpu.runtime.cosim.build.
    if name == "BUILD_COUNT":
        return _build.BUILD_COUNT
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
