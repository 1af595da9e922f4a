"""dnpu_axi_rd (hw/rtl/dma/): the AXI4 read engine on its own, against cocotbext-axi's
AxiRamRead and a Python model of its contract (the module header).

Bench (in the style of alexforencich's verilog-axi testbenches): the memory is a
cocotbext-axi AxiRamRead on the m_axi_* ports, with random pauses on AR and R
(set_pause_generator) and a per-beat RRESP map (OKAY / SLVERR / DECERR). The command
side is driven with random gaps (cmd_valid held until taken, as a valid/ready master
must), the beat stream with random m_ready. One per-cycle monitor (ReadOnly phase, so it
sees the handshakes the DUT sees) feeds two checkers:

  * the stream checker: every beat taken on m_* against the model (the beat-aligned
    bytes of memory, m_err = RRESP is SLVERR or DECERR, m_last exactly on the last beat
    of the commands taken before that cycle); no beat that no command asked for; a beat
    offered and not taken stays, unchanged;
  * the AXI checker: every AR against the model's burst plan of the commands taken
    (INCR, ARSIZE = the data width, <= MAX_BURST beats, split at 4 KiB, ARID = cmd_id,
    ARLOCK/ARCACHE/ARPROT), AR payload stable while waiting, at most MAX_OUT bursts
    in flight, and after an abort: no new AR, every R beat of the issued bursts drained
    before cmd_ready, no stale beat delivered to the next command.

cocotb tests (DUT parameters from AXIRD_* environment variables):
  random_commands   random addresses (4 KiB crossings, unaligned low bits), lengths 1 ..
                    3 pages, IDs, error beats; pauses on AR/R, random cmd_valid / m_ready
  queued_commands   commands offered eagerly, no pauses: the next command is taken while
                    the previous one is still delivering (its bursts follow at once), and
                    the stream runs at >= 0.9 beats a cycle
  aborts            abort at random points (AR waiting, R beats in flight, under
                    back-pressure, while a queued command delivers) and while idle; the
                    commands after each abort read correctly
"""

from __future__ import annotations

import os
import random
from collections import Counter, deque

import pytest

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge
    from cocotbext.axi import AxiReadBus, AxiRamRead
except ImportError:  # pytest collection without cocotb: only the entries below matter
    cocotb = None

try:  # a member of the tests/rtl package (pytest and cocotb both import it as rtl.*)
    from .axi_mem import DECERR, OKAY, PAGE, SLVERR, burst_plan, combo_ids, lint_dma, pauses, run_dma_bench
except ImportError:  # tests/rtl on PYTHONPATH
    from axi_mem import DECERR, OKAY, PAGE, SLVERR, burst_plan, combo_ids, lint_dma, pauses, run_dma_bench

DATA_W = int(os.environ.get("AXIRD_DATA_W", "128"))
MAX_BURST = int(os.environ.get("AXIRD_MAX_BURST", "16"))
ADDR_W = int(os.environ.get("AXIRD_ADDR_W", "32"))
ID_W = int(os.environ.get("AXIRD_ID_W", "4"))
MAX_OUT = int(os.environ.get("AXIRD_MAX_OUT", "4"))      # bursts in flight (the parameter's default)
SEED = int(os.environ.get("AXIRD_SEED", "20260601"))
SCALE = float(os.environ.get("AXIRD_SCALE", "1.0"))
BB = DATA_W // 8
MEM_SIZE = 1 << 20


# ---------------------------------------------------------------------------- model

class ReadModel:
    """Memory image, RRESP map, and the beats / bursts each command must produce."""

    def __init__(self, rng: random.Random):
        self.mem = bytearray(rng.randbytes(MEM_SIZE))
        self.resp: dict[int, int] = {}          # beat address -> RRESP (absent: OKAY)

    def beats(self, addr: int, n: int) -> list[tuple[int, int]]:
        """(data, RRESP) of each beat of a command."""
        a = addr - addr % BB
        return [(int.from_bytes(self.mem[a + i * BB:a + (i + 1) * BB], "little"),
                 self.resp.get(a + i * BB, OKAY)) for i in range(n)]


# ---------------------------------------------------------------------------- cocotb side

if cocotb is not None:

    class RespRamRead(AxiRamRead):
        """AxiRamRead answering each beat with model.resp[beat address] (SLVERR or DECERR
        with the memory's data; cocotbext-axi itself only makes SLVERR, on a failed read)."""

        def __init__(self, *args, resp: dict[int, int], **kwargs):
            super().__init__(*args, **kwargs)
            self.resp_map = resp
            self._beat_resp = OKAY
            send = self.r_channel.send

            async def send_with_resp(r):
                r.rresp = self._beat_resp
                await send(r)

            self.r_channel.send = send_with_resp

        async def _read(self, address, length):
            self._beat_resp = self.resp_map.get(address, OKAY)
            return await super()._read(address, length)


class Bench:
    """Clock, reset, the RAM, the drivers and the per-cycle monitor with its checkers."""

    def __init__(self, dut, tag: str):
        self.dut = dut
        self.rng = random.Random(SEED + sum(map(ord, tag)))
        self.model = ReadModel(self.rng)
        self.errors: list[str] = []
        self.cycle = 0
        # checker state
        self.exp_beats: deque = deque()        # (data, err, cmd#) of commands taken
        self.plan: deque = deque()             # (addr, beats, id) of bursts to come
        self.ar_pending = None                 # payload of an AR raised, not yet taken
        self.ar_raised = 0                     # bursts raised (the DUT counts from here)
        self.ar_beats = 0                      # beats of the bursts raised
        self.r_beats = 0                       # R beats the DUT accepted
        self.r_lasts = 0
        self.held = None                       # beat offered on m_* and not taken
        self.abort_cut = None                  # cycle after which no AR may be raised
        self.aborted = False                   # since the last abort, until idle
        self.abort_cycle = -1
        self.cmds_taken = 0
        self.beats_taken: list[int] = []       # cycles with a beat taken
        self.ar_cycles: list[int] = []         # cycles an AR was raised
        self.first_beat_cycle: dict[int, int] = {}
        self.last_beat_cycle: dict[int, int] = {}
        self.trace: deque = deque(maxlen=24)
        self.cover: Counter = Counter()        # what the stimulus reached

    async def start(self, p_ar: float = 0.0, p_r: float = 0.0):
        dut = self.dut
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst_n.value = 0
        dut.cmd_valid.value = 0
        dut.cmd_addr.value = 0
        dut.cmd_beats.value = 0
        dut.cmd_id.value = 0
        dut.m_ready.value = 0
        dut.abort.value = 0
        self.ram = RespRamRead(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst_n,
                               reset_active_level=False, size=MEM_SIZE, resp=self.model.resp)
        self.ram.write(0, bytes(self.model.mem))
        # cocotbext-axi's memory queues 2 ARs by default: room for every burst the engine may
        # have in flight, so that its MAX_OUT limit is what binds
        self.ram.ar_channel.queue_occupancy_limit = MAX_OUT + 2
        self.set_pauses(p_ar, p_r)
        for _ in range(4):
            await RisingEdge(dut.clk)
        dut.rst_n.value = 1
        await RisingEdge(dut.clk)

    def set_pauses(self, p_ar: float, p_r: float):
        for ch, p in ((self.ram.ar_channel, p_ar), (self.ram.r_channel, p_r)):
            ch.set_pause_generator(pauses(random.Random(self.rng.getrandbits(32)), p) if p else None)
            if not p:
                ch.pause = False

    def err(self, msg: str):
        if len(self.errors) < 30:
            self.errors.append(f"cycle {self.cycle}: {msg}")
        if len(self.errors) == 1:                  # the cycles before the first error
            self.errors.append("trace (cycle: cmd v/r, abort, m v/r/last, AR v/r, R v/r/last, "
                               "ar_raised, ar_beats, r_beats):\n  " + "\n  ".join(self.trace))

    # ---- one cycle: drive, then monitor in ReadOnly
    async def step(self, cmd=None, m_ready: bool = True, abort: bool = False) -> dict:
        """Drive this cycle's inputs (cmd = (addr, beats, id) or None), wait for ReadOnly,
        run the checkers; return the handshakes seen."""
        dut = self.dut
        await RisingEdge(dut.clk)
        self.cycle += 1
        dut.cmd_valid.value = int(cmd is not None)
        if cmd is not None:
            dut.cmd_addr.value = cmd[0]
            dut.cmd_beats.value = cmd[1]
            dut.cmd_id.value = cmd[2]
        else:
            dut.cmd_addr.value = self.rng.getrandbits(ADDR_W)     # must be ignored
            dut.cmd_beats.value = self.rng.getrandbits(32)
        dut.m_ready.value = int(m_ready)
        dut.abort.value = int(abort)
        await ReadOnly()
        return self.monitor(cmd, m_ready, abort)

    def monitor(self, cmd, m_ready: bool, abort: bool) -> dict:
        dut = self.dut
        c = self.cycle
        cmd_ready = bool(dut.cmd_ready.value)
        m_valid = bool(dut.m_valid.value)
        arvalid = bool(dut.m_axi_arvalid.value)
        arready = bool(dut.m_axi_arready.value)
        rvalid = bool(dut.m_axi_rvalid.value)
        rready = bool(dut.m_axi_rready.value)
        # the DUT is idle this cycle: ready for a command with no beat owed (queueing
        # behind an active command also raises cmd_ready, but then beats are owed)
        dut_idle = cmd_ready and not self.exp_beats
        # counts before this cycle's handshakes
        r_before, ar_before, ar_pend_before = self.r_beats, self.ar_beats, self.ar_pending
        idle_before = (not self.exp_beats and not self.aborted and ar_pend_before is None
                       and r_before == ar_before)
        self.trace.append(f"{c}: cmd {int(cmd is not None)}/{int(cmd_ready)} ab {int(abort)} "
                          f"m {int(m_valid)}/{int(m_ready)}/{dut.m_last.value} "
                          f"AR {int(arvalid)}/{int(arready)} R {int(rvalid)}/{int(rready)}/"
                          f"{dut.m_axi_rlast.value} {self.ar_raised} {self.ar_beats} {self.r_beats}")

        # -- AR channel
        if arvalid:
            ar = (dut.m_axi_araddr.value.to_unsigned(), dut.m_axi_arlen.value.to_unsigned() + 1,
                  dut.m_axi_arid.value.to_unsigned(), dut.m_axi_arsize.value.to_unsigned(),
                  dut.m_axi_arburst.value.to_unsigned(), int(dut.m_axi_arlock.value),
                  dut.m_axi_arcache.value.to_unsigned(), dut.m_axi_arprot.value.to_unsigned())
            if self.ar_pending is not None:
                if ar != self.ar_pending:
                    self.err(f"AR payload changed while waiting for ARREADY: {self.ar_pending} -> {ar}")
            else:                                           # a new burst
                self.ar_raised += 1
                self.ar_beats += ar[1]
                self.ar_cycles.append(c)
                if self.abort_cut is not None and c > self.abort_cut:
                    self.err(f"AR raised {c - self.abort_cut + 1} cycles after abort: {ar}")
                addr, n, rid = ar[:3]
                if ar[3:] != ((BB.bit_length() - 1), 1, 0, 3, 0):
                    self.err(f"AR size/burst/lock/cache/prot {ar[3:]}")
                if not 1 <= n <= MAX_BURST:
                    self.err(f"AR of {n} beats (MAX_BURST {MAX_BURST})")
                if addr % BB or addr // PAGE != (addr + n * BB - 1) // PAGE:
                    self.err(f"AR 0x{addr:X}+{n} beats: unaligned or crosses 4 KiB")
                if not self.plan:
                    self.err(f"AR 0x{addr:X}+{n} id {rid} that no command asked for")
                else:
                    want = self.plan.popleft()
                    if (addr, n, rid) != want:
                        self.err(f"AR (addr, beats, id) = (0x{addr:X}, {n}, {rid}), expected "
                                 f"(0x{want[0]:X}, {want[1]}, {want[2]})")
            self.ar_pending = None if arready else ar
        elif self.ar_pending is not None:
            self.err("ARVALID dropped before ARREADY")
            self.ar_pending = None
        if self.ar_raised - self.r_lasts > MAX_OUT:
            self.err(f"{self.ar_raised - self.r_lasts} bursts in flight (MAX_OUT {MAX_OUT})")
        self.cover["most in flight"] = max(self.cover["most in flight"], self.ar_raised - self.r_lasts)

        # -- R channel (the DUT's side: RREADY only while it can use or must drop the beat)
        if rvalid and rready:
            self.r_beats += 1
            if int(dut.m_axi_rlast.value):
                self.r_lasts += 1
        if self.r_beats > self.ar_beats:
            self.err(f"{self.r_beats} R beats accepted for {self.ar_beats} requested")

        # -- beat stream
        got = {}
        if self.held is not None:
            if not m_valid or dut.m_data.value.to_unsigned() != self.held:
                self.err("a beat offered and not taken was withdrawn or changed")
        self.held = None
        if m_valid:
            data = dut.m_data.value.to_unsigned()
            if self.aborted or not self.exp_beats:
                self.err(f"m_valid with no beat owed (aborted={self.aborted}) data 0x{data:X}")
            if not m_ready:
                self.held = data
            else:
                last = bool(dut.m_last.value)
                merr = bool(dut.m_err.value)
                if self.exp_beats:
                    want, resp, k = self.exp_beats.popleft()
                    want_err = resp in (SLVERR, DECERR)
                    self.cover[("rresp", resp)] += 1
                    if data != want:
                        self.err(f"command {k}: beat data 0x{data:0{BB * 2}X}, expected 0x{want:0{BB * 2}X}")
                    if merr != want_err:
                        self.err(f"command {k}: m_err {int(merr)}, expected {int(want_err)}")
                    if last != (not self.exp_beats):
                        self.err(f"command {k}: m_last {int(last)}, expected {int(not self.exp_beats)}")
                    self.first_beat_cycle.setdefault(k, c)
                    self.last_beat_cycle[k] = c
                self.beats_taken.append(c)
                got["beat"] = data
        # -- idle again after an abort: every R beat of the issued bursts is in
        if self.aborted and cmd_ready and c > self.abort_cycle:
            if r_before != ar_before or ar_pend_before is not None:
                self.err(f"cmd_ready after abort with {ar_before - r_before} R beats "
                         f"still to come (AR waiting: {ar_pend_before is not None})")
            self.aborted = False
        # -- command taken (its beats count for m_last from the next cycle on)
        if cmd is not None and cmd_ready:
            if abort and not dut_idle:
                self.err("bench: command offered in an abort cycle while busy")
            k = self.cmds_taken
            self.cmds_taken += 1
            self.aborted = False
            if self.abort_cut is not None:     # taken right after an abort: its bursts are gone
                self.plan.clear()
            self.abort_cut = None
            for d, e in self.model.beats(cmd[0], cmd[1]):
                self.exp_beats.append((d, e, k))
            plan = burst_plan(cmd[0], cmd[1], MAX_BURST, BB)
            self.plan.extend((a, n, cmd[2]) for a, n in plan)
            self.cover["page crossings"] += sum(1 for a, _ in plan[1:] if a % PAGE == 0)
            self.cover["unaligned addresses"] += cmd[0] % BB != 0
            self.cover["longest burst"] = max(self.cover["longest burst"], max(n for _, n in plan))
            got["cmd"] = k
        if not cmd_ready and idle_before:
            self.err("cmd_ready low while idle")
        # -- abort: beats owed and bursts not yet raised are gone
        if abort and not dut_idle:
            self.aborted = True
            self.abort_cycle = c
            self.held = None
            self.abort_cut = c + 1         # an AR decided in this cycle appears in the next
            self.exp_beats.clear()
        if self.abort_cut is not None and c > self.abort_cut:
            self.plan.clear()
        got["cmd_ready"] = cmd_ready
        return got

    def idle_model(self) -> bool:
        return not self.exp_beats

    def check(self):
        assert not self.errors, "\n".join(self.errors)


# ---------------------------------------------------------------------------- stimulus

def random_cmd(rng: random.Random, model: ReadModel, errors: bool = True) -> tuple[int, int, int]:
    """A command of random kind: a few bursts, a few beats, a page and a bit; unaligned
    low bits; often a few beats before a 4 KiB boundary; maybe a few error beats."""
    kind = rng.random()
    if kind < 0.45:
        n = rng.randint(1, min(3 * MAX_BURST + 1, 64))
    elif kind < 0.8:
        n = rng.randint(1, 6)
    else:                                          # a page and a bit
        n = rng.randint(PAGE // BB, PAGE // BB + min(2 * MAX_BURST, 128))
    if rng.random() < 0.5:          # start a few beats before a 4 KiB boundary
        page = rng.randrange(1, MEM_SIZE // PAGE - 4)
        a = page * PAGE - rng.randint(1, min(2 * MAX_BURST, PAGE // BB)) * BB
    else:
        a = rng.randrange(0, MEM_SIZE - (n + 1) * BB - PAGE)
    a = a - a % BB + rng.randrange(BB)             # low bits are dropped by the engine
    a = max(0, min(a, MEM_SIZE - (n + 1) * BB))
    if errors and rng.random() < 0.25:
        base = a - a % BB
        for _ in range(rng.randint(1, 3)):
            model.resp[base + rng.randrange(n) * BB] = rng.choice((SLVERR, DECERR))
    return a, n, rng.getrandbits(ID_W)


async def run_stream(tb: Bench, cmds: list, p_cmd_gap: float, p_stall: float,
                     abort_at: set[int] | None = None, max_cycles: int | None = None):
    """Offer cmds in order (cmd_valid held until taken, random gaps), m_ready random;
    abort on the cycles in abort_at (the command offer is held back on those cycles).
    Runs until every command is taken and every beat delivered (or aborted)."""
    rng = tb.rng
    i = 0
    offering = False
    budget = max_cycles or (400 + sum(n for _, n, _ in cmds) * int(6 + 40 * max(p_stall, p_cmd_gap)))
    start = tb.cycle
    while i < len(cmds) or tb.exp_beats or tb.aborted:
        if tb.cycle - start > budget:
            tb.err(f"timeout: {i}/{len(cmds)} commands taken, {len(tb.exp_beats)} beats owed")
            break
        ab = abort_at is not None and (tb.cycle + 1) in abort_at
        if not offering and i < len(cmds) and rng.random() >= p_cmd_gap:
            offering = True
        cmd = cmds[i] if (offering and i < len(cmds) and not ab) else None
        got = await tb.step(cmd, m_ready=rng.random() >= p_stall, abort=ab)
        if "cmd" in got:
            i += 1
            offering = False
        if tb.errors:
            break


if cocotb is not None:

    @cocotb.test()
    async def random_commands(dut):
        """Random commands (4 KiB crossings, unaligned addresses, 1 .. 3 pages, error
        beats), random pauses on AR and R, random cmd_valid gaps and m_ready."""
        tb = Bench(dut, "random")
        await tb.start(p_ar=0.3, p_r=0.3)
        n_cmds = max(8, int(60 * SCALE))
        for part, (p_ar, p_r, p_gap, p_stall) in enumerate(
                [(0.3, 0.3, 0.3, 0.3), (0.0, 0.0, 0.0, 0.0), (0.7, 0.1, 0.6, 0.1), (0.1, 0.6, 0.1, 0.7)]):
            tb.set_pauses(p_ar, p_r)
            cmds = [random_cmd(tb.rng, tb.model) for _ in range(n_cmds // 4)]
            await run_stream(tb, cmds, p_gap, p_stall)
            tb.check()
        nb = len(tb.beats_taken)
        dut._log.info(f"random_commands: {tb.cmds_taken} commands, {nb} beats, {tb.ar_raised} bursts, "
                      f"{tb.cycle} cycles; cover {dict(tb.cover)}")
        assert tb.cmds_taken == 4 * (n_cmds // 4)
        tb.check()
        cv = tb.cover
        assert cv[("rresp", SLVERR)] and cv[("rresp", DECERR)], cv
        assert cv["page crossings"] and cv["unaligned addresses"], cv
        assert cv["longest burst"] == min(MAX_BURST, PAGE // BB), cv
        assert cv["most in flight"] == MAX_OUT, cv          # the engine uses every slot it has

    @cocotb.test()
    async def queued_commands(dut):
        """Commands offered eagerly, memory and sink never pausing: each next command
        is taken before the previous one's last beat (its bursts follow at once), and
        beats stream at >= 0.9 a cycle over the whole run."""
        tb = Bench(dut, "queued")
        await tb.start()
        rng = tb.rng
        cmds = []
        for _ in range(max(4, int(12 * SCALE))):
            n = rng.randint(2 * MAX_BURST, 4 * MAX_BURST) if MAX_BURST < 64 else rng.randint(40, 200)
            a = rng.randrange(0, MEM_SIZE - (n + 1) * BB - PAGE)
            cmds.append((a, n, rng.getrandbits(ID_W)))
        taken = {}
        i = 0
        while i < len(cmds) or tb.exp_beats:
            got = await tb.step(cmds[i] if i < len(cmds) else None, m_ready=True)
            if "cmd" in got:
                taken[got["cmd"]] = tb.cycle
                i += 1
            assert tb.cycle < 50 * sum(n for _, n, _ in cmds), "timeout"
            if tb.errors:
                break
        tb.check()
        gaps = [tb.first_beat_cycle[k] - tb.last_beat_cycle[k - 1] - 1 for k in range(1, len(cmds))]
        win = tb.beats_taken[-1] - tb.beats_taken[0] + 1
        rate = len(tb.beats_taken) / win
        dut._log.info(f"queued_commands: {len(tb.beats_taken)} beats in {win} cycles = {rate:.3f} "
                      f"beats/cycle; idle cycles between commands {gaps}")
        for k in range(1, len(cmds)):
            assert taken[k] < tb.last_beat_cycle[k - 1], \
                f"command {k} taken at cycle {taken[k]}, after command {k - 1}'s last beat " \
                f"({tb.last_beat_cycle[k - 1]})"
        # The bursts in flight hide the memory's latency only when they hold enough beats:
        # below 16 in all, or with one burst, the rate is MAX_OUT * MAX_BURST / round trip
        # (by design).
        if MAX_OUT * MAX_BURST >= 16 and MAX_OUT > 1:
            assert max(gaps) == 0, f"idle cycles between the beats of consecutive commands: {gaps}"
            assert rate >= 0.9, f"{rate:.3f} beats a cycle"

    @cocotb.test()
    async def aborts(dut):
        """abort at random points of random command streams (AR waiting, bursts in
        flight, beats held under back-pressure, a queued command delivering) and while
        idle: no AR after it, the issued bursts' R beats drained before cmd_ready, the
        next commands read the right data."""
        tb = Bench(dut, "aborts")
        await tb.start(p_ar=0.4, p_r=0.4)
        rng = tb.rng
        rounds = max(6, int(30 * SCALE))
        for r in range(rounds):
            tb.set_pauses(*rng.choice([(0.4, 0.4), (0.0, 0.0), (0.8, 0.2), (0.1, 0.8)]))
            cmds = [random_cmd(rng, tb.model) for _ in range(rng.randint(1, 3))]
            # abort once, some cycles into the stream (or never, or while idle)
            at = {tb.cycle + rng.randint(1, 12 + 2 * min(200, sum(n for _, n, _ in cmds)))}
            await run_stream(tb, cmds, p_cmd_gap=0.2, p_stall=rng.choice([0.0, 0.3, 0.8]), abort_at=at)
            tb.check()
            # drain whatever an early abort left, then a clean command that must read right
            for _ in range(rng.randint(0, 6)):
                await tb.step(None, m_ready=True, abort=(r % 3 == 0))   # abort while idle: no effect
            await run_stream(tb, [random_cmd(rng, tb.model, errors=False)], 0.0, 0.2)
            tb.check()
        dut._log.info(f"aborts: {rounds} rounds, {tb.cmds_taken} commands, {tb.ar_raised} bursts, "
                      f"{tb.r_beats} R beats, {len(tb.beats_taken)} delivered, {tb.cycle} cycles")
        tb.check()


# ---------------------------------------------------------------------------- pytest entries

SOURCES = ["dma/dnpu_axi_rd.v"]
# (DATA_W, MAX_BURST, ADDR_W, ID_W[, MAX_OUT]): the sim profile, asic-2048, the narrowest
# beat with one-beat bursts, 256-beat bursts (ARLEN = 255: a 4 KiB page holds 512 beats of
# 64 bits) with 64-bit addresses, and zcu104 (8 bursts in flight); pynq-z2 and other shapes
# in make test-slow.
COMBOS = [(128, 16, 32, 4), (512, 64, 40, 6), (32, 1, 32, 1), (64, 256, 64, 8), (128, 16, 32, 4, 8)]
SLOW_COMBOS = [(64, 16, 32, 4), (32, 256, 32, 4), (256, 4, 32, 4), (128, 2, 32, 16), (512, 256, 40, 6),
               (256, 256, 32, 4), (64, 4, 32, 4, 1), (32, 2, 32, 4, 2), (128, 16, 32, 4, 16)]
LINT_COMBOS = COMBOS + SLOW_COMBOS


def _run(sim: str, combo, scale: float = 1.0) -> None:
    run_dma_bench("dnpu_axi_rd", "test_axi_rd", "AXIRD", SOURCES, sim, combo, scale=scale)


@pytest.mark.rtl
@pytest.mark.parametrize("combo", COMBOS, ids=combo_ids(COMBOS))
def test_axi_rd_verilator(combo):
    _run("verilator", combo)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("combo", SLOW_COMBOS, ids=combo_ids(SLOW_COMBOS))
def test_axi_rd_verilator_slow(combo):
    _run("verilator", combo, scale=4.0)


@pytest.mark.rtl
def test_axi_rd_icarus():
    _run("icarus", (64, 8, 32, 4), scale=0.3)


@pytest.mark.rtl
def test_axi_rd_lint():
    lint_dma("dnpu_axi_rd", SOURCES, LINT_COMBOS)


def test_burst_plan_model():
    """axi_mem.burst_plan, the burst split the AXI benches check against: bursts tile the range,
    <= MAX_BURST beats, none across 4 KiB."""
    rng = random.Random(3)
    for _ in range(2000):
        bb = rng.choice([4, 8, 16, 32, 64])
        mb = rng.choice([1, 2, 16, 64, 256])
        a = rng.randrange(0, 1 << 20)
        n = rng.randint(1, 3000)
        plan = burst_plan(a, n, mb, bb)
        assert sum(k for _, k in plan) == n and plan[0][0] == a - a % bb
        for (x, k), (y, _) in zip(plan, plan[1:] + [(plan[-1][0] + plan[-1][1] * bb, 0)]):
            assert 1 <= k <= mb and x // PAGE == (x + k * bb - 1) // PAGE and y == x + k * bb
