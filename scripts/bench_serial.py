"""Throughput of the serial link: write and read back a buffer through the `serial` backend and
print KiB/s; on the co-simulated board (no --port) also the simulated cycles, cycles/s and
cycles per payload byte (a byte on the line is 10 bit times).

    scripts/venv-run python scripts/bench_serial.py                          # the co-simulated board
    scripts/venv-run python scripts/bench_serial.py --port /dev/ttyUSB0 --baudrate 115200 --config ecp5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from dnpu import runtime
from dnpu.runtime.serial_backend import BITS_PER_BYTE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", help="a pyserial URL (default: a co-simulated board in this process)")
    ap.add_argument("--baudrate", type=int)
    ap.add_argument("--config", default="sim")
    ap.add_argument("--kib", type=int, default=16, help="KiB written and read back (default 16)")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args(argv)
    if a.kib < 1:
        ap.error("--kib must be at least 1")
    try:
        dev = runtime.open("serial", config=a.config, port=a.port, baudrate=a.baudrate)
    except (runtime.DeviceError, ValueError) as e:
        print(f"bench_serial: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    with dev:
        n = a.kib << 10
        data = bytes(range(256)) * (n // 256) + bytes(n % 256)
        buf = dev.alloc(n)
        model = dev.board.model if dev.board is not None else None
        out = {"port": dev.port, "kib": a.kib, "link": dev.info["link"]}
        for what in ("write", "read"):
            c0 = model.get("cycle") if model else 0
            t0 = time.perf_counter()
            if what == "write":
                buf.write(data)
            elif buf.read() != data:
                print("bench_serial: FAILED: the data read back differs from the data written", file=sys.stderr)
                return 1
            s = time.perf_counter() - t0
            r = {"seconds": round(s, 3), "kib_per_s": round(a.kib / s, 2)}
            if model:
                cycles = model.get("cycle") - c0
                r.update(cycles=cycles, cycles_per_s=round(cycles / s), cycles_per_byte=round(cycles / n, 2),
                         line_cycles_per_byte=BITS_PER_BYTE * dev.info["link"]["CLKS_PER_BIT"])
            out[what] = r
            print(f"{what:5} {a.kib} KiB: {s:.2f} s, {r['kib_per_s']} KiB/s"
                  + (f", {r['cycles']} cycles ({r['cycles_per_s'] / 1e3:.0f} k cycles/s), {r['cycles_per_byte']} "
                     f"cycles a payload byte (the line: {r['line_cycles_per_byte']})" if model else ""))
        out["stats"] = dict(dev.stats)
    if a.json:                     # atomically: a reader never sees half a file
        tmp = f"{a.json}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
