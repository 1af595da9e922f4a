"""dnpu_axi_wr (hw/rtl/dma/): the AXI4 write engine on its own, against cocotbext-axi's
AxiRamWrite and a Python model of its contract (the module header).

Bench (in the style of alexforencich's verilog-axi testbenches): the memory is a
cocotbext-axi AxiRamWrite on the m_axi_* ports with random pauses on AW, W and B
(set_pause_generator) and a per-beat response map: a burst with a beat in a SLVERR or
DECERR range answers that BRESP and those beats write nothing. Commands go in with random
gaps (cmd_valid held until taken), words on s_* with random s_valid (and s_valid held
high with junk when no word is owed, which must not be taken). One per-cycle monitor
(ReadOnly phase) feeds the checkers:

  * W checker: beat k of the run against the model's beat k (data of every strobed
    byte, WSTRB exactly: lanes before the first word and after the last one 0), WLAST
    on the last beat of each burst, no W beat of a burst before its AW was raised; after
    an abort every further beat has WSTRB = 0;
  * AW checker: every AW against the model's burst plan (INCR, AWSIZE = the data
    width, <= MAX_BURST beats, split at 4 KiB, AWID = cmd_id, AWLOCK/AWCACHE/AWPROT),
    payload stable while waiting, at most MAX_OUT = 4 bursts without a B response, no
    new AW after an abort;
  * completion: done once per command that was not aborted, only after every B of it,
    err = some BRESP of it was SLVERR or DECERR; cmd_ready exactly while idle; no done
    for an aborted command, every owed W beat and B response collected before
    cmd_ready; the word stream: exactly cmd_words words taken, s_ready low otherwise;
  * stall: every cycle against the header's definition (AW or W valid without ready,
    or every beat sent and a B response missing while a command runs);
  * memory: the RAM's contents after each run equal the model's (the initial random
    image plus the strobed bytes of the non-error beats).

cocotb tests (DUT parameters from AXIWR_* environment variables):
  random_commands   random 4-byte-aligned addresses at every lane (4 KiB crossings),
                    1 .. 3 pages of words, IDs, error beats; pauses on AW/W/B, random
                    cmd_valid / s_valid
  wstrb_edges       every first lane x every last lane of one beat and of two beats,
                    single words, full beats: the strobes of partial beats
  back_to_back      no pauses: a command every cycle the engine is idle, the word
                    stream at one word a cycle (the rate the core's store path gives)
  aborts            abort at random points (AW waiting, W beats owed, B responses out,
                    a partly filled beat) and while idle; the commands after it write
                    correctly
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
    from cocotbext.axi import AxiRamWrite, AxiWriteBus
except ImportError:  # pytest collection without cocotb: only the entries below matter
    cocotb = None

try:  # a member of the tests/rtl package (pytest and cocotb both import it as rtl.*)
    from .axi_mem import DECERR, OKAY, PAGE, SLVERR, burst_plan, combo_ids, lint_dma, pauses, run_dma_bench
except ImportError:  # tests/rtl on PYTHONPATH
    from axi_mem import DECERR, OKAY, PAGE, SLVERR, burst_plan, combo_ids, lint_dma, pauses, run_dma_bench

MAX_OUT = 4                       # dnpu_axi_wr's bursts without a B response

DATA_W = int(os.environ.get("AXIWR_DATA_W", "128"))
MAX_BURST = int(os.environ.get("AXIWR_MAX_BURST", "16"))
ADDR_W = int(os.environ.get("AXIWR_ADDR_W", "32"))
ID_W = int(os.environ.get("AXIWR_ID_W", "4"))
SEED = int(os.environ.get("AXIWR_SEED", "20260602"))
SCALE = float(os.environ.get("AXIWR_SCALE", "1.0"))
BB = DATA_W // 8
WPB = DATA_W // 32
MEM_SIZE = 1 << 20


# ---------------------------------------------------------------------------- model

def cmd_beats(addr: int, words: list[int], bb: int = BB) -> list[tuple[int, int, int]]:
    """(beat address, data, strobe) of each beat: word i at byte addr + 4i."""
    wpb = bb // 4
    lane0 = (addr % bb) // 4
    base = addr - addr % bb
    n = (lane0 + len(words) - 1) // wpb + 1
    out = []
    for b in range(n):
        data = strb = 0
        for ln in range(wpb):
            w = b * wpb + ln - lane0
            if 0 <= w < len(words):
                data |= words[w] << (32 * ln)
                strb |= 0xF << (4 * ln)
        out.append((base + b * bb, data, strb))
    return out


class Cmd:
    def __init__(self, addr: int, words: list[int], cid: int):
        self.addr, self.words, self.id = addr, words, cid
        self.beats = cmd_beats(addr, words)
        self.plan = burst_plan(addr, len(self.beats), MAX_BURST, BB)


# ---------------------------------------------------------------------------- cocotb side

if cocotb is not None:

    class RespRamWrite(AxiRamWrite):
        """AxiRamWrite with a per-beat response map: a strobed beat whose address maps to
        SLVERR / DECERR writes nothing and makes its burst's BRESP that code."""

        def __init__(self, *args, resp: dict[int, int], **kwargs):
            super().__init__(*args, **kwargs)
            self.resp_map = resp
            self._burst_resp = OKAY
            send = self.b_channel.send

            async def send_with_resp(b):
                b.bresp = self._burst_resp
                self._burst_resp = OKAY
                await send(b)

            self.b_channel.send = send_with_resp

        async def _write(self, address, data):
            r = self.resp_map.get(address - address % BB, OKAY)
            if r != OKAY:
                self._burst_resp = r
                return
            await super()._write(address, data)


class Bench:
    def __init__(self, dut, tag: str):
        self.dut = dut
        self.rng = random.Random(SEED + sum(map(ord, tag)))
        self.mem = bytearray(self.rng.randbytes(MEM_SIZE))   # the model's memory image
        self.resp: dict[int, int] = {}
        self.errors: list[str] = []
        self.trace: deque = deque(maxlen=24)
        self.cover: Counter = Counter()        # what the stimulus reached
        self.cycle = 0
        self.cmd: Cmd | None = None            # command being executed (taken, not done/aborted)
        self.cmds_taken = 0
        self.cmds_done = 0
        self.words_taken = 0                   # of self.cmd
        self.exp_w: deque = deque()            # (addr, data, strb) of W beats to come
        self.plan: deque = deque()             # (addr, beats, id) of AWs to come
        self.aw_lens: deque = deque()          # beats of each raised AW, for WLAST
        self.aw_pending = None
        self.aw_raised = 0
        self.aw_beats = 0
        self.w_beats = 0
        self.w_in_burst = 0                    # beats of the current W burst sent
        self.w_bursts = 0                      # W bursts completed
        self.b_count = 0
        self.cmd_b0 = 0                        # b_count when self.cmd's first AW was raised
        self.cmd_aw0 = 0                       # aw_raised when self.cmd was taken
        self.cmd_err = False                   # expected err of self.cmd
        self.aborted = False
        self.abort_cycle = -1
        self.abort_cut = None
        self.w_taken: list[int] = []
        self.s_taken: list[int] = []
        self.cmd_words_at: list[int] = []      # cycles self.cmd's words were taken
        self.word_windows: list[tuple[int, int]] = []   # (words, cycles) of each done command

    async def start(self, p_aw=0.0, p_w=0.0, p_b=0.0):
        dut = self.dut
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst_n.value = 0
        for s in ("cmd_valid", "cmd_addr", "cmd_words", "cmd_id", "s_valid", "s_data", "abort",
                  "cmd_beat", "bt_valid", "bt_data"):
            getattr(dut, s).value = 0
        self.ram = RespRamWrite(AxiWriteBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst_n,
                                reset_active_level=False, size=MEM_SIZE, resp=self.resp)
        self.ram.write(0, bytes(self.mem))
        self.set_pauses(p_aw, p_w, p_b)
        for _ in range(4):
            await RisingEdge(dut.clk)
        dut.rst_n.value = 1
        await RisingEdge(dut.clk)

    def set_pauses(self, p_aw: float, p_w: float, p_b: float):
        for ch, p in ((self.ram.aw_channel, p_aw), (self.ram.w_channel, p_w), (self.ram.b_channel, p_b)):
            ch.set_pause_generator(pauses(random.Random(self.rng.getrandbits(32)), p) if p else None)
            if not p:
                ch.pause = False

    def err(self, msg: str):
        if len(self.errors) < 30:
            self.errors.append(f"cycle {self.cycle}: {msg}")
        if len(self.errors) == 1:
            self.errors.append("trace (cycle: cmd v/r, abort, s v/r, AW v/r, W v/r/last strb, B v, "
                               "done/err/stall, aw_raised w_beats b_count):\n  " + "\n  ".join(self.trace))

    def check(self):
        assert not self.errors, "\n".join(self.errors)

    def words_owed(self) -> int:
        return 0 if (self.cmd is None or self.aborted) else len(self.cmd.words) - self.words_taken

    async def step(self, cmd: Cmd | None, word: int | None, abort: bool = False) -> dict:
        """Drive this cycle (cmd offered or not; word on s_* or None: s_valid low, or junk
        with s_valid high when no word is owed), then monitor."""
        dut = self.dut
        await RisingEdge(dut.clk)
        self.cycle += 1
        dut.cmd_valid.value = int(cmd is not None)
        if cmd is not None:
            dut.cmd_addr.value = cmd.addr
            dut.cmd_words.value = len(cmd.words)
            dut.cmd_id.value = cmd.id
        else:
            dut.cmd_addr.value = self.rng.getrandbits(ADDR_W)
            dut.cmd_words.value = self.rng.getrandbits(32)
        dut.s_valid.value = int(word is not None)
        dut.s_data.value = word if word is not None else self.rng.getrandbits(32)
        dut.abort.value = int(abort)
        await ReadOnly()
        return self.monitor(cmd, word, abort)

    def monitor(self, cmd: Cmd | None, word: int | None, abort: bool) -> dict:
        dut = self.dut
        c = self.cycle
        v = lambda s: bool(getattr(dut, s).value)          # noqa: E731
        cmd_ready, s_ready = v("cmd_ready"), v("s_ready")
        awvalid, awready = v("m_axi_awvalid"), v("m_axi_awready")
        wvalid, wready = v("m_axi_wvalid"), v("m_axi_wready")
        bvalid, bready = v("m_axi_bvalid"), v("m_axi_bready")
        done, err_o, stall = v("done"), v("err"), v("stall")
        self.trace.append(
            f"{c}: cmd {int(cmd is not None)}/{int(cmd_ready)} ab {int(abort)} "
            f"s {int(word is not None)}/{int(s_ready)} "
            f"AW {int(awvalid)}/{int(awready)} W {int(wvalid)}/{int(wready)}/{dut.m_axi_wlast.value} "
            f"{dut.m_axi_wstrb.value} B {int(bvalid)} {int(done)}/{int(err_o)}/{int(stall)} "
            f"{self.aw_raised} {self.w_beats} {self.b_count}")
        got = {}
        w_before, b_before, aw_pend_before = self.w_beats, self.b_count, self.aw_pending
        active = self.cmd is not None and not self.aborted

        # -- stall, against the header's definition
        all_raised = active and not self.plan and self.aw_raised - self.cmd_aw0 == len(self.cmd.plan)
        exp_stall = ((awvalid and not awready) or (wvalid and not wready)
                     or (all_raised and not awvalid and w_before == self.aw_beats and b_before < self.aw_raised))
        if stall != exp_stall:
            self.err(f"stall {int(stall)}, expected {int(exp_stall)}")

        # -- AW
        if awvalid:
            aw = (dut.m_axi_awaddr.value.to_unsigned(), dut.m_axi_awlen.value.to_unsigned() + 1,
                  dut.m_axi_awid.value.to_unsigned(), dut.m_axi_awsize.value.to_unsigned(),
                  dut.m_axi_awburst.value.to_unsigned(), int(dut.m_axi_awlock.value),
                  dut.m_axi_awcache.value.to_unsigned(), dut.m_axi_awprot.value.to_unsigned())
            if self.aw_pending is not None:
                if aw != self.aw_pending:
                    self.err(f"AW payload changed while waiting for AWREADY: {self.aw_pending} -> {aw}")
            else:
                self.aw_raised += 1
                self.aw_beats += aw[1]
                self.aw_lens.append(aw[1])
                if self.abort_cut is not None and c > self.abort_cut:
                    self.err(f"AW raised {c - self.abort_cut + 1} cycles after abort: {aw}")
                addr, n, wid = aw[:3]
                if aw[3:] != ((BB.bit_length() - 1), 1, 0, 3, 0):
                    self.err(f"AW size/burst/lock/cache/prot {aw[3:]}")
                if not 1 <= n <= MAX_BURST:
                    self.err(f"AW of {n} beats (MAX_BURST {MAX_BURST})")
                if addr % BB or addr // PAGE != (addr + n * BB - 1) // PAGE:
                    self.err(f"AW 0x{addr:X}+{n} beats: unaligned or crosses 4 KiB")
                if not self.plan:
                    self.err(f"AW 0x{addr:X}+{n} id {wid} that no command asked for")
                else:
                    want = self.plan.popleft()
                    if (addr, n, wid) != want:
                        self.err(f"AW (addr, beats, id) = (0x{addr:X}, {n}, {wid}), expected "
                                 f"(0x{want[0]:X}, {want[1]}, {want[2]})")
            self.aw_pending = None if awready else aw
        elif self.aw_pending is not None:
            self.err("AWVALID dropped before AWREADY")
            self.aw_pending = None
        if self.aw_raised - self.b_count > MAX_OUT:
            self.err(f"{self.aw_raised - self.b_count} bursts without a B response (MAX_OUT {MAX_OUT})")

        # -- W
        if wvalid and wready:
            data = dut.m_axi_wdata.value.to_unsigned()
            strb = dut.m_axi_wstrb.value.to_unsigned()
            last = v("m_axi_wlast")
            if self.w_bursts >= self.aw_raised:
                self.err(f"W beat of burst {self.w_bursts} before its AW was raised ({self.aw_raised} raised)")
            blen = self.aw_lens[0] if self.aw_lens else None
            self.w_in_burst += 1
            if blen is not None and last != (self.w_in_burst == blen):
                self.err(f"WLAST {int(last)} on beat {self.w_in_burst} of a {blen}-beat burst")
            if blen is None or self.w_in_burst >= blen:
                self.w_in_burst = 0
                self.w_bursts += 1
                if self.aw_lens:
                    self.aw_lens.popleft()
            self.w_beats += 1
            self.w_taken.append(c)
            if self.aborted:
                if strb:
                    self.err(f"W beat after abort with WSTRB 0x{strb:X}")
            elif not self.exp_w:
                self.err("W beat that no command owes")
            else:
                addr, want, wstrb = self.exp_w.popleft()
                mask = sum(0xFF << (8 * i) for i in range(BB) if strb >> i & 1)
                if strb != wstrb or (data & mask) != (want & mask):
                    self.err(f"W beat at 0x{addr:X}: strb 0x{strb:X} data 0x{data & mask:0{BB * 2}X}, "
                             f"expected strb 0x{wstrb:X} data 0x{want & mask:0{BB * 2}X}")
                elif self.resp.get(addr, OKAY) == OKAY:
                    for i in range(BB):
                        if strb >> i & 1:
                            self.mem[addr + i] = (data >> (8 * i)) & 0xFF

        # -- B
        if bvalid:
            if not bready:
                self.err("BREADY low (the engine keeps it high)")
            self.b_count += 1
            if self.b_count > self.aw_raised:
                self.err("B response before its AW")
            br = dut.m_axi_bresp.value.to_unsigned()
            self.cover[("bresp", br)] += 1
            if br >> 1 and active:
                self.cmd_err = True

        # -- words
        if word is not None and s_ready:
            if self.words_owed() <= 0:
                self.err(f"word 0x{word:08X} taken with none owed")
            else:
                if word != self.cmd.words[self.words_taken]:
                    self.err("bench: word offered out of order")
                self.words_taken += 1
                self.s_taken.append(c)
                self.cmd_words_at.append(c)
                got["word"] = True

        # -- done / err
        if done:
            if not active:
                self.err(f"done without a running command (aborted={self.aborted})")
            else:
                nb = len(self.cmd.plan)
                if b_before - self.cmd_b0 < nb:
                    self.err(f"done after {b_before - self.cmd_b0} of {nb} B responses")
                if self.words_taken != len(self.cmd.words):
                    self.err(f"done after {self.words_taken} of {len(self.cmd.words)} words")
                if self.exp_w:
                    self.err(f"done with {len(self.exp_w)} W beats unsent")
                if err_o != self.cmd_err:
                    self.err(f"err {int(err_o)} at done, expected {int(self.cmd_err)}")
                self.cmds_done += 1
                w = self.cmd_words_at
                self.word_windows.append((len(w), w[-1] - w[0] + 1))
                self.cmd = None
                got["done"] = True

        # -- cmd_ready exactly while idle: no command taken and not done, not draining
        # after an abort (done, when it pulses, already finds the engine idle)
        if self.aborted and c > self.abort_cycle:
            if cmd_ready:
                if w_before != self.aw_beats or b_before != self.aw_raised or aw_pend_before is not None:
                    self.err(f"cmd_ready after abort with {self.aw_beats - w_before} W beats and "
                             f"{self.aw_raised - b_before} B responses owed")
                self.aborted = False
                self.cmd = None
        elif cmd_ready != (self.cmd is None):
            self.err(f"cmd_ready {int(cmd_ready)} while {'idle' if self.cmd is None else 'a command runs'}")
        elif cmd_ready and (w_before != self.aw_beats or b_before != self.aw_raised):
            self.err(f"idle with {self.aw_beats - w_before} W beats and {self.aw_raised - b_before} B owed")

        # -- command taken
        if cmd is not None and cmd_ready:
            if abort:
                self.err("bench: command offered in an abort cycle")
            self.cmd = cmd
            self.cmds_taken += 1
            self.words_taken = 0
            self.cmd_words_at = []
            self.cmd_err = False
            self.cmd_b0 = self.b_count
            self.cmd_aw0 = self.aw_raised
            self.exp_w.extend(cmd.beats)
            self.plan.extend((a, n, cmd.id) for a, n in cmd.plan)
            self.cover["page crossings"] += sum(1 for a, _ in cmd.plan[1:] if a % PAGE == 0)
            self.cover["longest burst"] = max(self.cover["longest burst"], max(n for _, n in cmd.plan))
            self.cover[("first lane", (cmd.addr % BB) // 4)] += 1
            self.cover[("last lane", ((cmd.addr % BB) // 4 + len(cmd.words) - 1) % WPB)] += 1
            self.abort_cut = None
            got["cmd"] = True

        # -- abort
        if abort and not cmd_ready:
            self.aborted = True
            self.abort_cycle = c
            self.abort_cut = c + 1
            self.exp_w.clear()
        if self.abort_cut is not None and c > self.abort_cut:
            self.plan.clear()
        got["cmd_ready"] = cmd_ready
        return got

    def check_memory(self):
        ram = self.ram.read(0, MEM_SIZE)
        if ram != self.mem:
            bad = [i for i in range(MEM_SIZE) if ram[i] != self.mem[i]]
            self.err(f"memory differs from the model at {len(bad)} bytes, first "
                     + ", ".join(f"0x{i:X}: 0x{ram[i]:02X} (model 0x{self.mem[i]:02X})" for i in bad[:8]))


# ---------------------------------------------------------------------------- stimulus

def random_cmd(rng: random.Random, resp: dict[int, int], errors: bool = True) -> Cmd:
    """A command of random kind, sized in beats: a few bursts, a few beats, or a page
    and a bit; any start lane; often a few beats before a 4 KiB boundary; maybe a
    few error beats in its range."""
    kind = rng.random()
    if kind < 0.45:
        nb = rng.randint(1, min(3 * MAX_BURST + 1, 64))
    elif kind < 0.85:
        nb = rng.randint(1, 3)
    else:
        nb = rng.randint(PAGE // BB, PAGE // BB + min(MAX_BURST, 64))
    n = max(1, nb * WPB - rng.randrange(WPB))
    if rng.random() < 0.5:
        page = rng.randrange(1, MEM_SIZE // PAGE - 4)
        a = page * PAGE - rng.randint(1, min(2 * MAX_BURST * WPB, PAGE // 4)) * 4
    else:
        a = rng.randrange(0, MEM_SIZE - 4 * n - 2 * PAGE)
    a -= a % 4
    words = [rng.getrandbits(32) for _ in range(n)]
    c = Cmd(a, words, rng.getrandbits(ID_W))
    if errors and rng.random() < 0.25:
        for _ in range(rng.randint(1, 2)):
            resp[rng.choice(c.beats)[0]] = rng.choice((SLVERR, DECERR))
    return c


async def run_stream(tb: Bench, cmds: list[Cmd], p_cmd_gap: float, p_idle: float,
                     abort_at: set[int] | None = None, junk: float = 0.5):
    """Offer cmds in order (held until taken, random gaps), words with random s_valid;
    abort on the cycles in abort_at. Until every command is done (or aborted) and idle."""
    rng = tb.rng
    i = 0
    offering = False
    word_held = None
    budget = 500 + sum(len(c.words) for c in cmds) * int(4 + 60 * max(p_idle, p_cmd_gap))
    start = tb.cycle
    while i < len(cmds) or tb.cmd is not None or tb.aborted:
        if tb.cycle - start > budget:
            tb.err(f"timeout: {i}/{len(cmds)} commands taken, {tb.cmds_done} done, "
                   f"{tb.words_owed()} words owed, {len(tb.exp_w)} W beats owed")
            break
        ab = abort_at is not None and (tb.cycle + 1) in abort_at
        if not offering and i < len(cmds) and tb.cmd is None and not tb.aborted and rng.random() >= p_cmd_gap:
            offering = True
        cmd = cmds[i] if (offering and not ab) else None
        owed = tb.words_owed()
        if owed > 0:
            nxt = tb.cmd.words[tb.words_taken]
            word = nxt if (word_held is not None or rng.random() >= p_idle) else None
        else:
            word = rng.getrandbits(32) if rng.random() < junk else None
        got = await tb.step(cmd, word, abort=ab)
        word_held = word if (owed > 0 and word is not None and "word" not in got) else None
        if "cmd" in got:
            i += 1
            offering = False
        if tb.errors:
            break
    tb.check_memory()


if cocotb is not None:

    @cocotb.test()
    async def random_commands(dut):
        """Random commands (every start lane, 4 KiB crossings, 1 word .. 3 pages, error
        beats), random pauses on AW/W/B, random cmd_valid gaps and s_valid."""
        tb = Bench(dut, "random")
        await tb.start()
        n_cmds = max(8, int(60 * SCALE))
        for p_aw, p_w, p_b, p_gap, p_idle in [(0.3, 0.3, 0.3, 0.3, 0.3), (0.0, 0.0, 0.0, 0.0, 0.0),
                                              (0.7, 0.1, 0.5, 0.6, 0.1), (0.1, 0.7, 0.1, 0.1, 0.6)]:
            tb.set_pauses(p_aw, p_w, p_b)
            cmds = [random_cmd(tb.rng, tb.resp) for _ in range(n_cmds // 4)]
            await run_stream(tb, cmds, p_gap, p_idle)
            tb.check()
        dut._log.info(f"random_commands: {tb.cmds_done} commands, {len(tb.s_taken)} words, {tb.w_beats} W beats, "
                      f"{tb.aw_raised} bursts, {tb.cycle} cycles; cover {dict(tb.cover)}")
        assert tb.cmds_done == 4 * (n_cmds // 4)
        cv = tb.cover
        assert cv[("bresp", SLVERR)] and cv[("bresp", DECERR)] and cv["page crossings"], cv
        assert cv["longest burst"] == min(MAX_BURST, PAGE // BB), cv

    @cocotb.test()
    async def wstrb_edges(dut):
        """Every first lane with every length up to two beats (so every last lane, in
        one beat and across two), at a page start, mid-page and just before a 4 KiB
        boundary; mild pauses."""
        tb = Bench(dut, "wstrb")
        await tb.start(0.2, 0.2, 0.2)
        cmds = []
        for base in (0x3000, 0x5000 + 7 * BB, 0x9000 - BB):
            for lane0 in range(WPB):
                lens = range(1, 2 * WPB - lane0 + 1)
                if WPB > 4:         # wide beats: the edges and a few others
                    lens = sorted({n for n in (1, 2, WPB - lane0 - 1, WPB - lane0, WPB - lane0 + 1,
                                               2 * WPB - lane0 - 1, 2 * WPB - lane0,
                                               tb.rng.randint(1, 2 * WPB - lane0)) if n >= 1})
                for n in lens:
                    a = base + 4 * lane0
                    cmds.append(Cmd(a, [tb.rng.getrandbits(32) for _ in range(n)], tb.rng.getrandbits(ID_W)))
        await run_stream(tb, cmds, 0.2, 0.2)
        tb.check()
        dut._log.info(f"wstrb_edges: {tb.cmds_done} commands, {tb.w_beats} W beats")
        assert tb.cmds_done == len(cmds)
        for lane in range(WPB):
            assert tb.cover[("first lane", lane)] and tb.cover[("last lane", lane)], (lane, tb.cover)

    @cocotb.test()
    async def back_to_back(dut):
        """No pauses anywhere: each command taken the cycle the engine is idle, words
        at one a cycle while the AXI side keeps up (>= 0.9 words a cycle over each
        command's word window, a beat every WPB words)."""
        tb = Bench(dut, "b2b")
        await tb.start()
        rng = tb.rng
        cmds = [Cmd(rng.randrange(0, MEM_SIZE - 2 * PAGE - 4096) & ~3,
                    [rng.getrandbits(32) for _ in range(rng.randint(4 * WPB, 40 * WPB))],
                    rng.getrandbits(ID_W)) for _ in range(max(3, int(8 * SCALE)))]
        await run_stream(tb, cmds, 0.0, 0.0, junk=0.0)
        tb.check()
        assert tb.cmds_done == len(cmds)
        rates = [w / n for w, n in tb.word_windows]
        dut._log.info(f"back_to_back: words a cycle within each command {[f'{r:.3f}' for r in rates]}; "
                      f"{len(tb.s_taken)} words in {tb.cycle} cycles in all")
        assert min(rates) >= 0.9, f"words a cycle within a command: {rates}"

    @cocotb.test()
    async def aborts(dut):
        """abort at random points of random commands (AW waiting, W beats owed, B
        responses out, a partly filled beat) and while idle; the next command writes
        correctly."""
        tb = Bench(dut, "aborts")
        await tb.start()
        rng = tb.rng
        rounds = max(6, int(30 * SCALE))
        for r in range(rounds):
            tb.set_pauses(*rng.choice([(0.4, 0.4, 0.4), (0.0, 0.0, 0.0), (0.8, 0.2, 0.2), (0.1, 0.8, 0.6)]))
            c = random_cmd(rng, tb.resp)
            at = {tb.cycle + rng.randint(1, 10 + 2 * min(300, len(c.words)))}
            await run_stream(tb, [c], 0.2, rng.choice([0.0, 0.3, 0.8]), abort_at=at)
            tb.check()
            for _ in range(rng.randint(0, 4)):
                await tb.step(None, None, abort=(r % 3 == 0))        # abort while idle: no effect
            await run_stream(tb, [random_cmd(rng, tb.resp, errors=False)], 0.0, 0.2)
            tb.check()
        dut._log.info(f"aborts: {rounds} rounds, {tb.cmds_taken} commands taken, {tb.cmds_done} done, "
                      f"{tb.aw_raised} bursts, {tb.w_beats} W beats, {tb.cycle} cycles")


# ---------------------------------------------------------------------------- pytest entries

SOURCES = ["dma/dnpu_axi_wr.v"]
# (DATA_W, MAX_BURST, ADDR_W, ID_W): the sim profile, asic-2048, one-beat bursts of
# 64-bit beats, 256-beat bursts (AWLEN = 255: a 4 KiB page holds 512 beats of 64 bits)
# with 64-bit addresses; pynq-z2 and other shapes in make test-slow. DATA_W >= 64 (the
# module header; 32-bit beats do not elaborate).
COMBOS = [(128, 16, 32, 4), (512, 64, 40, 6), (64, 1, 32, 1), (64, 256, 64, 8)]
SLOW_COMBOS = [(64, 16, 32, 4), (256, 256, 32, 4), (128, 2, 32, 16), (512, 256, 40, 6), (256, 4, 32, 4)]
LINT_COMBOS = COMBOS + SLOW_COMBOS


def _run(sim: str, combo, scale: float = 1.0) -> None:
    run_dma_bench("dnpu_axi_wr", "test_axi_wr", "AXIWR", SOURCES, sim, combo, scale=scale)


@pytest.mark.rtl
@pytest.mark.parametrize("combo", COMBOS, ids=combo_ids(COMBOS))
def test_axi_wr_verilator(combo):
    _run("verilator", combo)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("combo", SLOW_COMBOS, ids=combo_ids(SLOW_COMBOS))
def test_axi_wr_verilator_slow(combo):
    _run("verilator", combo, scale=4.0)


@pytest.mark.rtl
def test_axi_wr_icarus():
    _run("icarus", (64, 8, 32, 4), scale=0.3)


@pytest.mark.rtl
def test_axi_wr_lint():
    lint_dma("dnpu_axi_wr", SOURCES, LINT_COMBOS)


def test_cmd_beats_model():
    """The model's beats: strobes tile exactly the command's bytes, data in place."""
    rng = random.Random(5)
    for _ in range(2000):
        bb = rng.choice([8, 16, 32, 64])
        a = rng.randrange(0, 1 << 16) & ~3
        words = [rng.getrandbits(32) for _ in range(rng.randint(1, 40))]
        img = {}
        for addr, data, strb in cmd_beats(a, words, bb):
            assert addr % bb == 0 and strb
            for i in range(bb):
                if strb >> i & 1:
                    img[addr + i] = (data >> (8 * i)) & 0xFF
        want = {a + i: b for i, b in enumerate(b"".join(w.to_bytes(4, "little") for w in words))}
        assert img == want
