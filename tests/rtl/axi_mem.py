"""AXI4 slave memory for cocotb benches of dnpu_top's m_axi_* master.

Byte-addressed sparse memory with regions, like `dnpu.emu.Memory`:

  * `map(addr, n)`: readable and writable memory (answers OKAY);
  * `map_error(addr, n)`: decoded but failing (answers SLVERR);
  * anything else: no slave (answers DECERR).

A beat answers with an error when any byte of its beat-aligned span (reads) or any
strobed byte (writes) is outside the OKAY regions; an errored write beat writes
nothing. Regions must start and end on beat boundaries, so beat-level answers agree
with the emulator's byte-level `is_mapped` for every access the NPU makes (it reads
whole beats).

One coroutine runs the five channels, once a cycle: it drives at the falling edge and
samples in the ReadOnly phase before the next rising edge, so the handshakes it sees
are the ones the DUT sees. With `stress` set it draws random READY on AR/AW/W, random
idle cycles before RVALID/BVALID and a random read/write latency; otherwise every
READY is 1 and the latency is fixed.

It also checks the master's side of the protocol and records every violation in
`errors` (the bench asserts it stays empty): INCR bursts only, full-width size,
beat-aligned addresses, at most `max_burst` beats, no 4 KiB crossing, VALID held with
a stable payload until READY, WLAST on exactly the last beat of each burst.
Callbacks in `per_cycle` run in the same ReadOnly phase (the retire-trace monitor).

Two helpers for every AXI bench: `burst_plan` (the INCR bursts a master must issue for a
transfer: at most MAX_BURST beats, split at 4 KiB) and `pauses` (a random pause generator
for cocotbext-axi's set_pause_generator).
"""

from __future__ import annotations

import random
from collections import deque

try:
    import cocotb
    from cocotb.triggers import FallingEdge, ReadOnly
except ImportError:  # pytest collection without cocotb: burst_plan and pauses still import
    cocotb = None

OKAY, EXOKAY, SLVERR, DECERR = 0, 1, 2, 3
PAGE = 1 << 12


def burst_plan(addr: int, beats: int, max_burst: int, bb: int) -> list[tuple[int, int]]:
    """(address, beats) of each INCR burst of a transfer of `beats` beats of `bb` bytes:
    from the beat holding addr, at most max_burst beats, never across a 4 KiB boundary."""
    a = addr - addr % bb
    out = []
    while beats:
        n = min(beats, max_burst, (PAGE - a % PAGE) // bb)
        out.append((a, n))
        a += n * bb
        beats -= n
    return out


def pauses(rng: random.Random, p: float):
    """A pause generator for cocotbext-axi channels: each cycle paused with probability p."""
    while True:
        yield rng.random() < p


# ---- pytest entries of the DMA engine benches (test_axi_rd, test_axi_wr) ----------------------
# A combo is (DATA_W, MAX_BURST, ADDR_W, ID_W); the bench reads the same values from
# <PREFIX>_DATA_W ... in its environment (and <PREFIX>_SCALE, the stimulus length).

def _cocotb_run():
    try:
        from . import cocotb_run
    except ImportError:
        import cocotb_run
    return cocotb_run


def dma_parameters(combo) -> dict[str, int]:
    """(DATA_W, MAX_BURST, ADDR_W, ID_W[, MAX_OUT]) as the engine's parameters."""
    return dict(zip(("DATA_W", "MAX_BURST", "ADDR_W", "ID_W", "MAX_OUT"), combo))


def combo_ids(combos) -> list[str]:
    return [f"w{c[0]}-b{c[1]}-a{c[2]}-id{c[3]}" + (f"-out{c[4]}" if len(c) > 4 else "") for c in combos]


def run_dma_bench(top: str, test_module: str, env_prefix: str, sources: list[str], sim: str, combo, *,
                  scale: float = 1.0) -> None:
    cr = _cocotb_run()
    params = dma_parameters(combo)
    env = {f"{env_prefix}_{k}": str(v) for k, v in params.items()} | {f"{env_prefix}_SCALE": str(scale)}
    cr.run_block(top, cr.rtl_sources(*sources), test_module, sim=sim, parameters=params, extra_env=env)


def lint_dma(top: str, sources: list[str], combos) -> None:
    cr = _cocotb_run()
    for combo in combos:
        # SYMRSVDWORD: the port `abort` matches a C++ word; Verilator warns only when the
        # module is the top (its ports become C++ members), never inside dnpu_top.
        cr.lint(top, cr.rtl_sources(*sources), waive=("SYMRSVDWORD",), parameters=dma_parameters(combo))


class AxiMem:
    def __init__(self, beat_bytes: int, max_burst: int, id_width: int, addr_width: int):
        self.bb = beat_bytes
        self.max_burst = max_burst
        self.id_width = id_width
        self.addr_width = addr_width
        self.size_code = beat_bytes.bit_length() - 1
        self._pages: dict[int, bytearray] = {}
        self.ok_regions: list[tuple[int, int]] = []       # [start, end)
        self.err_regions: list[tuple[int, int]] = []
        self.errors: list[str] = []
        self.per_cycle: list = []
        self.rng = random.Random(1)
        self.stress = False
        self.latency = 4
        self.counts = {"ar": 0, "aw": 0, "r": 0, "w": 0, "b": 0}
        self.log: list[tuple] = []    # ("ar"|"aw", addr, beats, id) in acceptance order
        self._task = None
        self.cycle = 0
        self.reset_queues()

    # ---- memory --------------------------------------------------------------------------
    def _check_region(self, addr: int, n: int) -> None:
        if addr % self.bb or n % self.bb:
            raise ValueError(f"region 0x{addr:X}+{n}: must start and end on {self.bb}-byte beats")

    def map(self, addr: int, n: int) -> None:
        self._check_region(addr, n)
        self.ok_regions.append((addr, addr + n))

    def map_error(self, addr: int, n: int) -> None:
        self._check_region(addr, n)
        self.err_regions.append((addr, addr + n))

    def _kind(self, addr: int, n: int) -> int:
        for s, e in self.ok_regions:
            if s <= addr and addr + n <= e:
                return OKAY
        for s, e in self.err_regions:
            if s <= addr < e:
                return SLVERR
        return DECERR

    def write(self, addr: int, data: bytes) -> None:
        for i, b in enumerate(bytes(data)):
            a = addr + i
            pg = self._pages.get(a >> 12)
            if pg is None:
                pg = self._pages[a >> 12] = bytearray(PAGE)
            pg[a & (PAGE - 1)] = b

    def read(self, addr: int, n: int) -> bytes:
        out = bytearray(n)
        pos = 0
        while pos < n:
            a = addr + pos
            off = a & (PAGE - 1)
            k = min(n - pos, PAGE - off)
            pg = self._pages.get(a >> 12)
            if pg is not None:
                out[pos:pos + k] = pg[off:off + k]
            pos += k
        return bytes(out)

    # ---- bus -----------------------------------------------------------------------------
    def reset_queues(self) -> None:
        self.ar_q: deque = deque()      # [ready_cycle, id, addr, beats]
        self.r_cur = None               # [id, addr, beats_left] being served
        self.r_out = None               # (data, resp, last, id) presented on R
        self.aw_q: deque = deque()      # [id, addr, beats]
        self.w_q: deque = deque()       # (data, strb, last)
        self.b_q: deque = deque()       # [ready_cycle, id, resp]
        self.b_out = None
        self._hold = {}                 # channel -> payload seen with VALID & !READY

    def attach(self, dut, clk, prefix: str = "m_axi") -> None:
        """Bind to the DUT and (re)start the channel coroutine (cocotb ends tasks between
        tests; memory contents and regions persist)."""
        g = lambda n: getattr(dut, f"{prefix}_{n}")
        self.s = {n: g(n) for n in (
            "arid", "araddr", "arlen", "arsize", "arburst", "arvalid", "arready",
            "rid", "rdata", "rresp", "rlast", "rvalid", "rready",
            "awid", "awaddr", "awlen", "awsize", "awburst", "awvalid", "awready",
            "wdata", "wstrb", "wlast", "wvalid", "wready",
            "bid", "bresp", "bvalid", "bready")}
        self.clk = clk
        self.reset_queues()
        for n in ("arready", "rvalid", "awready", "wready", "bvalid", "rlast"):
            self.s[n].value = 0
        for n in ("rid", "rdata", "rresp", "bid", "bresp"):
            self.s[n].value = 0
        self._task = cocotb.start_soon(self._run())

    def _p(self, p: float) -> bool:
        return (not self.stress) or self.rng.random() < p

    def _lat(self) -> int:
        return self.rng.randint(1, 24) if self.stress else self.latency

    def _check_addr(self, ch: str, addr: int, length: int, size: int, burst: int) -> None:
        beats = length + 1
        if burst != 1:
            self.errors.append(f"{ch}: burst type {burst}, expected INCR")
        if size != self.size_code:
            self.errors.append(f"{ch}: size {size}, expected {self.size_code} (full width)")
        if addr % self.bb:
            self.errors.append(f"{ch}: address 0x{addr:X} not beat-aligned")
        if beats > self.max_burst:
            self.errors.append(f"{ch}: {beats} beats > max burst {self.max_burst}")
        if (addr % 4096) + beats * self.bb > 4096:
            self.errors.append(f"{ch}: burst 0x{addr:X} x {beats} crosses 4 KiB")

    def _stable(self, ch: str, valid: int, ready: int, payload) -> None:
        prev = self._hold.get(ch)
        if prev is not None:
            if not valid:
                self.errors.append(f"cycle {self.cycle}: {ch}VALID dropped before READY")
            elif payload != prev:
                self.errors.append(f"cycle {self.cycle}: {ch} payload changed while stalled")
        self._hold[ch] = payload if (valid and not ready) else None

    async def _run(self) -> None:
        s = self.s
        while True:
            await FallingEdge(self.clk)
            self.cycle += 1
            # -- drive
            s["arready"].value = 1 if self._p(0.6) else 0
            s["awready"].value = 1 if self._p(0.6) else 0
            s["wready"].value = 1 if self._p(0.7) else 0
            if self.r_out is None:
                self._next_r()
            if self.r_out is not None:
                d, resp, last, rid = self.r_out
                s["rvalid"].value = 1
                s["rdata"].value = d
                s["rresp"].value = resp
                s["rlast"].value = 1 if last else 0
                s["rid"].value = rid
            else:
                s["rvalid"].value = 0
            if self.b_out is None and self.b_q and self.b_q[0][0] <= self.cycle and self._p(0.7):
                _, bid, resp = self.b_q.popleft()
                self.b_out = (bid, resp)
            if self.b_out is not None:
                s["bvalid"].value = 1
                s["bid"].value = self.b_out[0]
                s["bresp"].value = self.b_out[1]
            else:
                s["bvalid"].value = 0
            await ReadOnly()
            self._sample()
            for cb in self.per_cycle:
                cb()

    def _next_r(self) -> None:
        if self.r_cur is None:
            if not self.ar_q or self.ar_q[0][0] > self.cycle:
                return
            _, rid, addr, beats = self.ar_q.popleft()
            self.r_cur = [rid, addr, beats]
        if not self._p(0.7):
            return
        rid, addr, left = self.r_cur
        resp = self._kind(addr, self.bb)
        data = int.from_bytes(self.read(addr, self.bb), "little") if resp == OKAY else 0
        self.r_out = (data, resp, left == 1, rid)
        if left == 1:
            self.r_cur = None
        else:
            self.r_cur = [rid, addr + self.bb, left - 1]

    def _sample(self) -> None:
        s = self.s
        # AR
        arv, arr = int(s["arvalid"].value), int(s["arready"].value)
        if arv or self._hold.get("AR") is not None:
            pay = (int(s["arid"].value), int(s["araddr"].value), int(s["arlen"].value),
                   int(s["arsize"].value), int(s["arburst"].value)) if arv else None
            self._stable("AR", arv, arr, pay)
            if arv and arr:
                rid, addr, ln, size, burst = pay
                self._check_addr("AR", addr, ln, size, burst)
                self.ar_q.append([self.cycle + self._lat(), rid, addr, ln + 1])
                self.counts["ar"] += 1
                self.log.append(("ar", addr, ln + 1, rid))
        # R
        if self.r_out is not None and int(s["rready"].value):
            self.r_out = None
            self.counts["r"] += 1
        # AW
        awv, awr = int(s["awvalid"].value), int(s["awready"].value)
        if awv or self._hold.get("AW") is not None:
            pay = (int(s["awid"].value), int(s["awaddr"].value), int(s["awlen"].value),
                   int(s["awsize"].value), int(s["awburst"].value)) if awv else None
            self._stable("AW", awv, awr, pay)
            if awv and awr:
                wid, addr, ln, size, burst = pay
                self._check_addr("AW", addr, ln, size, burst)
                self.aw_q.append([wid, addr, ln + 1, ln + 1, OKAY])   # id, addr, beats, left, resp
                self.counts["aw"] += 1
                self.log.append(("aw", addr, ln + 1, wid))
        # W
        wv, wr = int(s["wvalid"].value), int(s["wready"].value)
        if wv or self._hold.get("W") is not None:
            pay = (int(s["wdata"].value), int(s["wstrb"].value), int(s["wlast"].value)) if wv else None
            self._stable("W", wv, wr, pay)
            if wv and wr:
                self.w_q.append(pay)
                self.counts["w"] += 1
        self._drain_w()
        # B
        if self.b_out is not None and int(s["bready"].value):
            self.b_out = None
            self.counts["b"] += 1

    def _drain_w(self) -> None:
        while self.aw_q and self.w_q:
            aw = self.aw_q[0]
            wid, addr, beats, left, resp = aw
            data, strb, last = self.w_q.popleft()
            beat_addr = addr + (beats - left) * self.bb
            if bool(last) != (left == 1):
                self.errors.append(f"W: WLAST={last} on beat {beats - left + 1} of {beats} "
                                   f"(burst at 0x{addr:X})")
            lanes = [i for i in range(self.bb) if strb >> i & 1]
            r = OKAY
            for i in lanes:
                k = self._kind(beat_addr + i, 1)
                if k != OKAY:
                    r = max(r, k)
            if r == OKAY and lanes:
                raw = data.to_bytes(self.bb, "little")
                for i in lanes:
                    self.write(beat_addr + i, raw[i:i + 1])
            aw[4] = max(resp, r)
            aw[3] = left - 1
            if left == 1:
                self.aw_q.popleft()
                self.b_q.append([self.cycle + self._lat(), wid, aw[4]])
