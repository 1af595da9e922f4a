"""dnpu.emu: every instruction, every fault cause, loops, budget, trace, MX streams, speed."""

from __future__ import annotations

import dataclasses
import math
import struct

import ml_dtypes
import numpy as np
import pytest

from dnpu.spec import matmul
from dnpu.spec import config, isa, mx
from dnpu import emu
from dnpu.compiler import FLOWS
from dnpu.spec import numerics as N
from dnpu.spec.csr import ErrCause
from dnpu.verify.proggen import absent_instructions

CFG = config.load("sim")
VLEN = CFG.vector.vlen
PROG = 0x1000                 # programs live here
DATA = 0x10000                # and data here
MEM = 0x40000                 # bytes mapped from PROG
EXERCISED: set[str] = set()
RAN: set[str] = set()          # the tests of this file that ran in this process
# Every test here on one xdist worker, in file order: test_zz_... checks what they all ran.
pytestmark = pytest.mark.xdist_group("test_emu")


@pytest.fixture(autouse=True)
def _ran(request):
    yield
    RAN.add(request.node.originalname or request.node.name)


def new(cfg=CFG) -> emu.Emulator:
    e = emu.Emulator(cfg)
    e.map(PROG, MEM)
    return e


def run(src: str, e: emu.Emulator | None = None, args=(), **kw) -> tuple[emu.Emulator, emu.RunResult]:
    """Assemble src (C_HALT appended), load it at PROG and run it."""
    e = e or new()
    e.write(PROG, isa.assemble(src + "\nC_HALT\n"))
    res = e.run(PROG, args=args, **kw)
    EXERCISED.update(res.op_counts)
    return e, res


def ok(src: str, e=None, **kw):
    e, res = run(src, e, **kw)
    assert res.status == "halted", str(res)
    return e, res


def fault(src: str, cause: ErrCause, index: int, e=None, **kw) -> emu.RunResult:
    """Run src and check it faults with cause at instruction number index (0-based)."""
    e, res = run(src, e, **kw)
    assert res.status == "fault", str(res)
    assert res.cause == cause, str(res)
    assert res.pc == PROG + 4 * index and e.err_pc == res.pc, str(res)
    assert e.read_csr("ERR_PC") == res.pc and e.read_csr("ERR_CAUSE") == int(cause)
    assert e.read_csr("STATUS") == 0b100
    return res


def f32(x: float) -> int:
    return int(np.float32(x).view(np.uint32))


def bf(x) -> np.ndarray:
    return N.round_bf16(np.asarray(x, np.float64))


def li(reg: str, value: int) -> str:
    """Load any 32-bit constant into an x register: always S_LUI + S_ADDI, so the fault
    indices the tests give count two instructions for it."""
    return "\n".join(isa.load_imm(reg, value, always_two=True))


# ---- the handler table -------------------------------------------------------------------------

def test_a_handler_for_every_instruction():
    assert set(emu.HANDLERS) == set(isa.INSTRS)
    e = emu.Emulator(CFG)
    for name, meth in emu.HANDLERS.items():
        assert callable(getattr(e, meth))


def test_import_check_fails_loudly(monkeypatch):
    monkeypatch.delitem(emu.HANDLERS, "V_EXP_V")
    with pytest.raises(ImportError, match="V_EXP_V"):
        emu._check_handlers()
    monkeypatch.setitem(emu.HANDLERS, "V_EXP_V", "_v_exp_v")
    monkeypatch.setitem(emu.HANDLERS, "V_NOT_AN_OP", "_v_exp_v")
    with pytest.raises(ImportError, match="V_NOT_AN_OP"):
        emu._check_handlers()


# ---- scalar int ----------------------------------------------------------------------------

def test_scalar_int():
    e, res = ok("""
        S_ADDI x1, x0, -5          # 0xFFFFFFFB
        S_ADDI x2, x0, 7
        S_ADD  x3, x1, x2          # 2 (wraps)
        S_SUB  x4, x2, x1          # 12
        S_SUB  x5, x1, x2          # -12
        S_MUL  x6, x1, x2          # -35 low bits
        S_MIN  x7, x1, x2          # signed: -5
        S_MAX  x8, x1, x2          # 7
        S_SLT  x9, x1, x2          # 1
        S_SLT  x10, x2, x1         # 0
        S_SLLI x11, x1, 4          # 0xFFFFFFB0
        S_SRLI x12, x1, 28         # 0xF (logical)
        S_LUI  x13, 0x1FFFFF       # 0xFFFFF800
        S_ADDI x0, x0, 99          # x0 stays 0
        S_LD_ARG x14, 3
        S_LD_ARG x15, 7
    """, args=[0, 0, 0, 0xDEADBEEF, 0, 0, 0, 123])
    x = e.x
    M = 0xFFFFFFFF
    assert list(x[:14]) == [0, -5 & M, 7, 2, 12, -12 & M, -35 & M, -5 & M, 7, 1, 0, 0xFFFFFFB0, 0xF,
                            0xFFFFF800]
    assert x[14] == 0xDEADBEEF and x[15] == 123
    assert res.class_counts["scalar_int"] == 16


def test_int_sram_scalar_access():
    e, _ = ok("""
        S_ADDI x1, x0, 100
        S_ADDI x2, x0, -77
        S_ST_INT x2, x1, 5          # INT[105]
        S_ST_INT x1, x1, -100       # INT[0] = 100
        S_LD_INT x3, x1, 5
        S_LD_INT x4, x0, 0
    """)
    assert e.intsram[105] == (-77 & 0xFFFFFFFF) and e.intsram[0] == 100
    assert e.x[3] == (-77 & 0xFFFFFFFF) and e.x[4] == 100


# ---- scalar FP ---------------------------------------------------------------------------------

def test_scalar_fp_arithmetic():
    e = new()
    e.fpsram[0:4] = [f32(1.5), f32(-2.25), f32(3.0), 0x00000001]
    e, _ = ok("""
        S_LD_FP f0, x0, 0
        S_LD_FP f1, x0, 1
        S_ADD_FP f2, f0, f1
        S_SUB_FP f3, f0, f1
        S_MUL_FP f4, f0, f1
        S_MAX_FP f5, f0, f1
        S_LD_FP f6, x0, 3           # a subnormal: moved as is
        S_ADD_FP f7, f6, f6         # read as +0
        S_ADDI x1, x0, 10
        S_ST_FP f2, x1, 0
        S_ST_FP f6, x1, 1
    """, e)
    f = e.f
    assert [hex(v) for v in f] == [hex(v) for v in [f32(1.5), f32(-2.25), f32(-0.75), f32(3.75),
                                                    f32(-3.375), f32(1.5), 1, 0]]
    assert e.fpsram[10] == f32(-0.75) and e.fpsram[11] == 1


def test_scalar_fp_exp_reci_rsqrt_li_sel_lt():
    e, _ = ok("""
        S_LI_FP f0, 0x3F80          # 1.0
        S_LI_FP f1, 0xFF80          # -inf
        S_LI_FP f2, 0x7FC0          # NaN
        S_EXP_FP f3, f0
        S_RECI_FP f4, f3
        S_EXP_FP f5, f1             # 0
        S_RECI_FP f6, f5            # +inf
        S_LT_FP x1, f1, f0          # -inf < 1: 1
        S_LT_FP x2, f0, f2          # 1 < NaN: 1 (NaN above every number)
        S_LT_FP x3, f2, f0          # 0
        S_LT_FP x4, f2, f2          # 0
        S_ADDI x5, x0, 1
        S_SEL_FP f7, f0, f1, x5     # f0
        S_SEL_FP f1, f0, f2, x0     # f2 (x0 = 0)
        S_RSQRT_FP f2, f3           # 1/sqrt(e)
    """)
    f = e.f
    assert f[3] == int(N.exp_f32(np.uint32(f32(1.0))))
    assert f[4] == int(N.reci_f32(np.uint32(f[3])))
    assert f[5] == 0 and f[6] == 0x7F800000
    assert list(e.x[1:5]) == [1, 1, 0, 0]
    assert f[7] == f32(1.0) and f[1] == 0x7FC00000
    assert f[2] == int(N.rsqrt_f32(np.uint32(f[3])))
    x3 = float(np.uint32(f[3]).view(np.float32))
    assert abs(float(np.uint32(f[2]).view(np.float32)) * np.sqrt(x3) - 1) < 2 ** -24


def test_s_map_v_fp_narrows_and_pads():
    e = new()
    vals = [1.0, 1 + 2.0 ** -8, 3.4e38, -2.0 ** -130, 65504.0]
    e.fpsram[3:3 + len(vals) + 16] = np.concatenate([[f32(v) for v in vals], np.arange(16) + f32(1.0)])
    e.vsram[5:8] = 0x1234
    e.fpsram[3 + 3] = 0x80000005            # a subnormal: DAZ, -0
    ok("""
        S_ADDI x1, x0, 5
        S_ADDI x2, x0, 3
        S_ADDI x3, x0, 21           # 21 elements: 2 rows, the second padded with -inf
        S_MAP_V_FP x1, x2, x3
    """, e)
    src = e.fpsram[3:24]
    want = np.full(32, 0xFF80, np.uint16)
    want[:21] = N.narrow_f32(src)
    assert (e.vsram[5:7].reshape(-1) == want).all()
    assert e.vsram[5, 1] == 0x3F80 and e.vsram[5, 2] == 0x7F80 and e.vsram[5, 3] == 0x8000
    assert (e.vsram[7] == 0x1234).all()     # untouched


# ---- vector ------------------------------------------------------------------------------------

def vec_setup(rng, rows=6):
    e = new()
    a = rng.normal(0, 4, (rows, VLEN))
    b = rng.normal(0, 4, (rows, VLEN))
    a[0, :4] = [np.inf, -np.inf, np.nan, 2.0 ** -120]
    b[0, :4] = [-np.inf, 1.0, 3.0, 2.0 ** -120]
    e.vsram[10:10 + rows] = bf(a)
    e.vsram[20:20 + rows] = bf(b)
    e.vsram[5, 3] = 0x0001                  # a BF16 subnormal in a source: read as +0
    return e


@pytest.mark.parametrize("name,op", [("V_ADD_VV", N.add), ("V_SUB_VV", N.sub), ("V_MUL_VV", N.mul)])
def test_vv(name, op):
    e = vec_setup(np.random.default_rng(1))
    A, B = e.vsram[10:16].copy(), e.vsram[20:26].copy()
    ok(f"""
        S_ADDI x1, x0, 30
        S_ADDI x2, x0, 10
        S_ADDI x3, x0, 20
        S_ADDI x4, x0, 6
        {name} x1, x2, x3, x4
        {name} x2, x2, x3, x4       # in place
    """, e)
    want = N.bf16_bits(op(N.bf16_value(A), N.bf16_value(B), "bf16"))
    assert (e.vsram[30:36] == want).all() and (e.vsram[10:16] == want).all()
    # row 0 lane 0: inf (op) -inf
    assert e.vsram[30, 0] == {"V_ADD_VV": 0x7FC0, "V_SUB_VV": 0x7F80, "V_MUL_VV": 0xFF80}[name]


@pytest.mark.parametrize("name,op", [("V_ADD_VF", N.add), ("V_SUB_VF", N.sub), ("V_MUL_VF", N.mul)])
def test_vf(name, op):
    e = vec_setup(np.random.default_rng(2))
    A = e.vsram[10:16].copy()
    e.fpsram[0] = f32(1.0 / 3.0)            # an FP32 scalar with 24 significant bits
    ok(f"""
        S_LD_FP f3, x0, 0
        S_ADDI x1, x0, 30
        S_ADDI x2, x0, 10
        S_ADDI x4, x0, 6
        {name} x1, x2, f3, x4
    """, e)
    s = float(np.float32(1.0 / 3.0))
    want = N.bf16_bits(op(N.bf16_value(A), s, "bf16"))    # one rounding from the exact result
    assert (e.vsram[30:36] == want).all()


def test_v_exp_v_and_fill():
    e = new()
    e.vsram[0:4096 // VLEN] = np.arange(4096, dtype=np.uint16).reshape(-1, VLEN) * 16
    e.set_f(2, f32(-3.3e38))
    ok("""
        S_ADDI x1, x0, 256
        S_ADDI x2, x0, 256
        V_EXP_V x1, x0, x2
        S_ADDI x3, x0, 600
        S_ADDI x4, x0, 3
        V_FILL_VF x3, f2, x4
    """, e)
    assert (e.vsram[256:512] == N.exp_bf16(e.vsram[0:256])).all()
    assert (e.vsram[600:603] == int(N.narrow_f32(np.uint32(f32(-3.3e38))))).all()
    assert e.vsram[600, 0] == 0xFF78


def test_v_amax_vv_and_v_invpow2_v():
    """BAOS's two instructions (docs/NUMERICS.md section 16): the larger magnitude's bits,
    NaN above Inf, -0 to +0, subnormals kept; 2^-E from the exponent field, clamped, 1.0
    for zero, subnormal, Inf and NaN."""
    a = np.array([0x3F80, 0xC000, 0x8000, 0x0001, 0x7F80, 0xFFC1, 0x4040, 0x7F7F] * (VLEN // 8), np.uint16)
    b = np.array([0xBFC0, 0x3F80, 0x0000, 0x8002, 0x7FC0, 0x7F80, 0xC040, 0x0080] * (VLEN // 8), np.uint16)
    e = new()
    e.vsram[1] = a
    e.vsram[2] = b
    e, res = ok(f"""
        S_ADDI x1, x0, 1
        S_ADDI x2, x0, 2
        S_ADDI x3, x0, 5
        S_ADDI x4, x0, 1
        V_AMAX_VV x3, x1, x2, x4
        S_ADDI x5, x0, 6
        S_ADDI x6, x0, 2
        V_INVPOW2_V x5, x1, x6
    """, e)
    want = [0x3FC0, 0x4000, 0x0000, 0x0002, 0x7FC0, 0x7FC1, 0x4040, 0x7F7F] * (VLEN // 8)
    assert e.vsram[5].tolist() == want
    #        1.0      -2.0    -0      sub     Inf     NaN     3.0     max     | 1.5  1.0  +0  -sub  NaN  Inf  -3.0  2^-126
    want6 = [0x3F80, 0x3F00, 0x3F80, 0x3F80, 0x3F80, 0x3F80, 0x3F00, 0x0080] * (VLEN // 8)
    want7 = [0x3F80, 0x3F80, 0x3F80, 0x3F80, 0x3F80, 0x3F80, 0x3F00, 0x7E80] * (VLEN // 8)
    assert e.vsram[6].tolist() == want6 and e.vsram[7].tolist() == want7
    assert res.op_counts["V_AMAX_VV"] == 1 and res.op_counts["V_INVPOW2_V"] == 1


def test_v_reci_v():
    """Every 8th BF16 pattern through V_RECI_V: numerics.reci_bf16, which is RECI rounded to
    FP32 then narrowed (NUMERICS 4.2); then in place on the first rows."""
    e = new()
    allbits = np.arange(0, 65536, 8, dtype=np.uint16).reshape(-1, VLEN)
    e.vsram[0:512] = allbits
    ok("""
        S_ADDI x1, x0, 512
        S_ADDI x2, x0, 512
        V_RECI_V x1, x0, x2
        S_ADDI x3, x0, 3
        V_RECI_V x0, x0, x3             # in place
    """, e)
    want = N.reci_bf16(allbits[:512])
    assert (e.vsram[512:1024] == want).all()
    assert (e.vsram[0:3] == want[0:3]).all()
    assert e.vsram[512, 0] == 0x7F80 and e.vsram[512, 1] == 0x7F80          # 1/+0, 1/subnormal (8)
    one_third = N.reci_bf16(np.uint16(0x4040))                             # 1/3
    assert int(one_third) == int(N.narrow_f32(N.reci_f32(np.uint32(0x40400000))))


def test_reductions():
    rng = np.random.default_rng(3)
    e = new()
    v = rng.normal(0, 2, (8, VLEN))
    v[3, 7] = v.max() + 1
    v[6, 2] = v[3, 7]                       # a later tie: the lower index wins
    e.vsram[40:48] = bf(v)
    ok("""
        S_ADDI x1, x0, 40
        S_ADDI x2, x0, 8
        V_RED_MAX f1, x1, x2
        V_RED_MAX_IDX f2, x5, x1, x2
        V_RED_SUM f3, x1, x2
        S_ADDI x1, x0, 44
        S_ADDI x2, x0, 4
        V_RED_MAX_IDX f4, x6, x1, x2   # rows 44..47: index counted from row 44
    """, e)
    m, idx = N.red_max_idx(e.vsram[40:48].reshape(-1))
    assert e.f[1] == m == e.f[2] and e.x[5] == idx == 3 * VLEN + 7
    assert e.f[3] == N.red_sum(e.vsram[40:48])
    assert e.f[4] == m and e.x[6] == (6 - 4) * VLEN + 2


def test_topk_thresh_select():
    e = new()
    conf = [0.5, -np.inf, 0.9, 0.5, np.nan, 0.1, -0.0, 0.0]
    e.fpsram[100:108] = [f32(c) if c == c else 0x7FC00000 for c in conf]
    e.intsram[0:8] = 7                      # mask area to be overwritten by TOPK
    e.intsram[20:28] = [0, 0, 0, 0, 0, 1, 0, 0]
    e.intsram[40:48] = np.arange(8) + 1000
    e.intsram[60:68] = np.arange(8) + 2000
    e.fpsram[200] = f32(0.5)
    e.intsram[300] = 3
    ok("""
        S_ADDI x1, x0, 0
        S_ADDI x2, x0, 100
        S_LD_INT x3, x0, 300        # k = 3
        S_ADDI x4, x0, 8
        V_TOPK_MASK x1, x2, x3, x4
        S_ADDI x5, x0, 20
        S_LD_FP f1, x0, 200
        V_THRESH_MASK x5, x2, f1, x4
        S_ADDI x6, x0, 40
        S_ADDI x7, x0, 60
        V_SELECT_INT x7, x5, x6, x4
    """, e)
    assert list(e.intsram[0:8]) == [1, 0, 1, 0, 1, 0, 0, 0]           # NaN, 0.9, first 0.5
    assert list(e.intsram[20:28]) == [1, 0, 1, 1, 1, 1, 0, 0]         # >= 0.5, or kept 1
    sel = np.where(e.intsram[20:28] != 0, np.arange(8) + 1000, np.arange(8) + 2000)
    assert (e.intsram[60:68] == sel).all()


def test_mask_fp_writes_the_fill_where_the_mask_is_zero():
    e = new()
    vals = np.array([0.5, 0.25, 2.0, -1.0, 0.75, 3.0], np.float32).view(np.uint32)
    e.fpsram[10:16] = vals
    e.intsram[100:106] = np.array([1, 0, 7, 0, 0, -1], np.int64) & 0xFFFFFFFF
    before = e.fpsram.copy()
    ok("""
        S_LI_FP f3, 0xFF80          # -inf
        S_ADDI x1, x0, 10
        S_ADDI x2, x0, 100
        S_ADDI x4, x0, 6
        V_MASK_FP x1, x2, f3, x4
    """, e)
    want = before.copy()
    want[[11, 13, 14]] = 0xFF800000                                    # where the mask is 0
    assert (e.fpsram == want).all()
    # n = 0 checks nothing; a range past the FP or the int SRAM faults SRAM_RANGE
    FW, IW = CFG.sram.fp_words, CFG.sram.int_words
    ok(f"{li('x1', FW + 9)}\nV_MASK_FP x1, x1, f3, x0", e)
    fault(f"{li('x1', FW - 2)}\nS_ADDI x4, x0, 3\nV_MASK_FP x1, x0, f3, x4", ErrCause.SRAM_RANGE, 3, e)
    fault(f"{li('x2', IW - 2)}\nS_ADDI x4, x0, 3\nV_MASK_FP x0, x2, f3, x4", ErrCause.SRAM_RANGE, 3, e)


def test_topk_mask_v_ranks_bf16_vector_elements():
    # Values that differ in FP32 but tie once narrowed to BF16: the lowest index wins the tie.
    e = new()
    vals = np.array([0.5, 0.9, 0.90001, -np.inf, 0.1, 0.95, 0.2, 0.3] + [0.0] * (2 * VLEN - 8))
    e.vsram[3:5] = N.round_bf16(vals).reshape(2, VLEN)
    assert N.round_bf16(np.array([0.9]))[0] == N.round_bf16(np.array([0.90001]))[0]
    e.intsram[10:10 + 2 * VLEN] = 7
    ok(f"""
        S_ADDI x1, x0, 10
        S_ADDI x2, x0, 3
        S_ADDI x3, x0, 2
        S_ADDI x4, x0, {VLEN + 4}
        V_TOPK_MASK_V x1, x2, x3, x4
    """, e)
    want = np.zeros(VLEN + 4, np.int32)
    want[[1, 5]] = 1                        # 0.95, then the first of the tied 0.9s
    assert (e.intsram[10:14 + VLEN] == want).all()
    assert (e.intsram[14 + VLEN:10 + 2 * VLEN] == 7).all()  # beyond n: untouched


# ---- memory ---------------------------------------------------------------------------------------

def test_load_store_words_and_vectors():
    e = new()
    words = np.arange(10, dtype="<u4") * 0x01010101
    e.write(DATA, words.tobytes())
    e.vsram[3:5] = (np.arange(2 * VLEN, dtype=np.uint16) + 0xA000).reshape(2, VLEN)
    e, res = ok(f"""
        {li("x1", DATA)}
        {li("x2", DATA + 0x100)}
        S_ADDI x3, x0, 10
        S_ADDI x4, x0, 50
        H_LOAD_INT x4, x1, x3
        H_LOAD_FP x4, x1, x3
        H_STORE_INT x4, x2, x3
        S_ADDI x5, x2, 64
        H_STORE_FP x4, x5, x3
        S_ADDI x5, x2, 128
        S_ADDI x6, x0, 3
        S_ADDI x7, x0, 2
        H_STORE_V x6, x5, x7
    """, e)
    assert (e.intsram[50:60] == words).all() and (e.fpsram[50:60] == words).all()
    assert e.read(DATA + 0x100, 40) == words.tobytes()
    assert e.read(DATA + 0x140, 40) == words.tobytes()
    assert e.read(DATA + 0x180, 4 * VLEN) == (np.arange(2 * VLEN, dtype="<u2") + 0xA000).tobytes()
    assert res.bytes_read == 80 and res.bytes_written == 80 + 4 * VLEN
    assert res.class_counts["memory"] == 5


def test_load_v_round_trip():
    """H_LOAD_V reads n rows of BF16 (any bit pattern), row-major, lane 0 first: the
    layout H_STORE_V writes; from any word address, up to the SRAM's top."""
    R = CFG.sram.vector_rows
    rng = np.random.default_rng(5)
    raw = rng.integers(0, 256, 2 * VLEN * 40 + 64, dtype=np.uint8).tobytes()
    e = new()
    e.write(DATA, raw)
    e.vsram[:] = 0x1234
    e, res = ok(f"""
        {li("x1", DATA + 4)}
        {li("x2", DATA + 0x4000)}
        S_ADDI x3, x0, 7
        S_ADDI x4, x0, 100
        H_LOAD_V x4, x1, x3              # 7 rows from a word (not a beat) address
        {li("x5", R - 33)}
        S_ADDI x6, x0, 33
        H_LOAD_V x5, x1, x6              # the SRAM's last 33 rows
        H_STORE_V x4, x2, x3
    """, e, trace=True)
    want = np.frombuffer(raw[4:4 + 2 * VLEN * 33], "<u2").reshape(33, VLEN)
    assert (e.vsram[100:107] == want[:7]).all() and (e.vsram[R - 33:] == want).all()
    assert (e.vsram[99] == 0x1234).all() and (e.vsram[107] == 0x1234).all()
    assert e.read(DATA + 0x4000, 2 * VLEN * 7) == raw[4:4 + 2 * VLEN * 7]
    assert res.bytes_read == 2 * VLEN * 40 and res.bytes_written == 2 * VLEN * 7
    loads = [t for t in res.trace if t.text.startswith("H_LOAD_V")]
    assert [t.writes for t in loads] == [{"V": (100, 7)}, {"V": (R - 33, 33)}]
    assert res.op_counts["H_LOAD_V"] == 2 and res.class_counts["memory"] == 3


def test_matrix_instructions():
    """M_CFG sets the shape (kept across programs, cleared by SOFT_RESET); M_MM and M_MM_RES
    (in place) write matmul_bf16 of the vector-SRAM rows and the MX-decoded weight tiles
    (tests/test_linear.py has the shapes, specials and faults)."""
    from dnpu.spec import matrix

    assert CFG.matrix.rows, "the sim profile has a matrix unit"
    rng = np.random.default_rng(11)
    M, NO, K = CFG.matrix.rows + 1, 2 * VLEN, max(VLEN, CFG.mx.block)
    w = rng.standard_normal((NO, K))
    e = new()
    e.write(DATA, matrix.pack_weights(w, "e2m1", CFG.mx.block, VLEN))
    x = N.round_bf16(rng.standard_normal((M * K // VLEN, VLEN)))
    r = N.round_bf16(rng.standard_normal((M * NO // VLEN, VLEN)))
    e.vsram[0:len(x)] = x
    e.vsram[200:200 + len(r)] = r
    e, res = ok(f"""
        {li("x1", M)}
        {li("x2", NO)}
        {li("x3", K)}
        M_CFG x1, x2, x3
        {li("x4", DATA)}
        S_ADDI x5, x0, 100
        M_MM x5, x0, x4, e2m1
        S_ADDI x6, x0, 200
        M_MM_RES x6, x0, x4, x6, e2m1
    """, e, trace=True)
    wq = matrix.quantize_weights(w, "e2m1", CFG.mx.block)
    y = matmul.matmul_bf16(x.reshape(M, K), wq)
    assert (e.vsram[100:100 + M * NO // VLEN].reshape(M, NO) == y).all()
    yr = matmul.matmul_bf16(x.reshape(M, K), wq, residual_bits=r.reshape(M, NO))
    assert (e.vsram[200:200 + M * NO // VLEN].reshape(M, NO) == yr).all()
    assert [t.writes for t in res.trace if t.text.startswith("M_MM")] == [{"V": (100, M * NO // VLEN)},
                                                                         {"V": (200, M * NO // VLEN)}]
    assert e.mshape == (M, NO, K) and res.class_counts["matrix"] == 3
    e.soft_reset()
    assert e.mshape == (0, 0, 0)


def test_matrix_k_split():
    """M_MM_F32 over K_0, M_MM_ACC_F32 over K_1 and M_MM_ACC(_RES) over K_2 give M_MM(_RES)
    of the whole K bit for bit (docs/NUMERICS.md section 11), the FP32 accumulators in
    between being matmul_bf16(out="f32") in the hi/lo row layout."""
    from dnpu.spec import matrix

    rng = np.random.default_rng(12)
    km = matrix.k_multiple(VLEN, CFG.mx.block)
    M, NO, K = CFG.matrix.rows + 1, 2 * VLEN, 3 * km
    # products spanning 2^20 make the order of the adds visible in the bits
    w = rng.standard_normal((NO, K)) * 2.0 ** rng.integers(-10, 10, (NO, K))
    x = N.round_bf16(rng.standard_normal((M, K)) * 2.0 ** rng.integers(-10, 10, (M, K)))
    r = N.round_bf16(rng.standard_normal((M, NO)))
    wq = matrix.quantize_weights(w, "e4m3", CFG.mx.block)
    e = new()
    for c in range(3):
        e.write(DATA + c * 0x10000, matrix.pack_weights(w[:, c * km:(c + 1) * km], "e4m3", CFG.mx.block, VLEN))
        e.vsram[c * 64:c * 64 + M * km // VLEN] = x[:, c * km:(c + 1) * km].reshape(-1, VLEN)
    yrows = M * NO // VLEN
    e.vsram[600:600 + yrows] = r.reshape(-1, VLEN)
    e, res = ok(f"""
        {li("x1", M)}
        {li("x2", NO)}
        {li("x3", km)}
        M_CFG x1, x2, x3
        {li("x4", DATA)}
        {li("x7", DATA + 0x10000)}
        {li("x8", DATA + 0x20000)}
        {li("x5", 300)}
        M_MM_F32 x5, x0, x4, e4m3
        {li("x9", 64)}
        {li("x10", 128)}
        M_MM_ACC_F32 x5, x9, x7, e4m3
        {li("x11", 400)}
        M_MM_ACC x11, x10, x8, x5, e4m3
        {li("x12", 600)}
        M_MM_ACC_RES x12, x10, x8, x5, e4m3
    """, e, trace=True)
    acc2 = matmul.matmul_bf16(x[:, :2 * km], wq[:, :2 * km], out="f32")
    assert (matrix.acc_from_rows(e.vsram[300:300 + 2 * yrows], M, NO) == acc2).all()
    assert (e.vsram[300:300 + 2 * yrows] == matrix.acc_to_rows(acc2, VLEN)).all()
    assert (e.vsram[400:400 + yrows].reshape(M, NO) == matmul.matmul_bf16(x, wq)).all()
    assert (e.vsram[600:600 + yrows].reshape(M, NO) == matmul.matmul_bf16(x, wq, residual_bits=r)).all()
    assert [t.writes for t in res.trace if t.text.startswith("M_MM")] == [
        {"V": (300, 2 * yrows)}, {"V": (300, 2 * yrows)}, {"V": (400, yrows)}, {"V": (600, yrows)}]
    # Y over the accumulators it reads, A over X: SRAM_RANGE
    for text in ("M_MM_ACC x5, x10, x8, x5, e4m3", "M_MM_F32 x0, x0, x4, e4m3",
                 "M_MM_ACC_F32 x9, x9, x7, e4m3", f"{li('x13', CFG.sram.vector_rows - 1)}\nM_MM_F32 x13, x10, x4, e4m3",
                 f"{li('x13', CFG.sram.vector_rows - 1)}\nM_MM_ACC x11, x10, x8, x13, e4m3"):
        prog = f"{li('x1', M)}\n{li('x2', NO)}\n{li('x3', km)}\nM_CFG x1, x2, x3\n{li('x4', DATA)}\n" \
               f"{li('x5', 300)}\n{li('x8', DATA)}\n{li('x9', 64)}\n{li('x10', 128)}\n{li('x11', 400)}\n{li('x7', DATA)}\n{text}"
        fault(prog, ErrCause.SRAM_RANGE, len(isa.assemble(prog)) // 4 - 1)


def test_matrix_weights_from_vector_sram():
    """M_MM_V / M_MM_V_RES multiply by BF16 weight rows in vector SRAM (row n of W at
    V[vw + n*K/VLEN]), specials included, as matmul_bf16 of those bits; W may overlap X but
    not Y; shape and range checks as M_MM (docs/EXECUTION.md)."""
    from dnpu.spec import matrix

    rng = np.random.default_rng(13)
    km = matrix.k_multiple(VLEN, CFG.mx.block)
    M, NO, K = CFG.matrix.rows + 1, 2 * VLEN, 2 * km
    x = N.round_bf16(rng.standard_normal((M, K)))
    w = rng.integers(0, 1 << 16, (NO, K)).astype(np.uint16)       # every pattern: NaN, Inf, subnormal
    w[:, ::3] = N.round_bf16(rng.standard_normal((NO, (K + 2) // 3)))
    r = N.round_bf16(rng.standard_normal((M, NO)))
    yrows, wrows = M * NO // VLEN, NO * K // VLEN
    e = new()
    e.vsram[0:M * K // VLEN] = x.reshape(-1, VLEN)
    e.vsram[100:100 + wrows] = w.reshape(-1, VLEN)
    e.vsram[500:500 + yrows] = r.reshape(-1, VLEN)
    e, res = ok(f"""
        {li("x1", M)}
        {li("x2", NO)}
        {li("x3", K)}
        M_CFG x1, x2, x3
        {li("x4", 100)}
        {li("x5", 400)}
        M_MM_V x5, x0, x4
        {li("x6", 500)}
        M_MM_V_RES x6, x0, x4, x6
        M_MM_V x6, x4, x4                      # W overlapping X: both only read
    """, e, trace=True)
    assert (e.vsram[400:400 + yrows].reshape(M, NO) == matmul.matmul_bf16(x, w)).all()
    assert [t.writes for t in res.trace if t.text.startswith("M_MM")] == [{"V": (400, yrows)}, {"V": (500, yrows)},
                                                                         {"V": (500, yrows)}]
    assert (e.vsram[500:500 + yrows].reshape(M, NO) == matmul.matmul_bf16(w[:M], w)).all()   # X = W's first rows
    e2, _ = ok(f"{li('x1', M)}\n{li('x2', NO)}\n{li('x3', K)}\nM_CFG x1, x2, x3\n{li('x4', 100)}\n"
               f"{li('x6', 500)}\nM_MM_V_RES x6, x0, x4, x6", new_with(x, w, r))
    assert (e2.vsram[500:500 + yrows].reshape(M, NO) == matmul.matmul_bf16(x, w, residual_bits=r)).all()
    base = f"{li('x1', M)}\n{li('x2', NO)}\n{li('x3', K)}\nM_CFG x1, x2, x3\n{li('x4', 100)}\n"
    top = CFG.sram.vector_rows
    for text, cause in ((f"{li('x5', 100 + wrows - 1)}\nM_MM_V x5, x0, x4", ErrCause.SRAM_RANGE),  # Y over W
                        (f"{li('x4', top - wrows + 1)}\n{li('x5', 400)}\nM_MM_V x5, x0, x4", ErrCause.SRAM_RANGE),
                        (f"{li('x3', K + VLEN // 2)}\nM_CFG x1, x2, x3\n{li('x5', 400)}\nM_MM_V x5, x0, x4",
                         ErrCause.MISALIGNED),
                        (f"{li('x5', 400)}\n{li('x6', 401)}\nM_MM_V_RES x5, x0, x4, x6", ErrCause.SRAM_RANGE)):
        prog = base + text
        fault(prog, cause, len(isa.assemble(prog)) // 4 - 1)


def new_with(x, w, r) -> emu.Emulator:
    e = new()
    e.vsram[0:x.size // VLEN] = x.reshape(-1, VLEN)
    e.vsram[100:100 + w.size // VLEN] = w.reshape(-1, VLEN)
    e.vsram[500:500 + r.size // VLEN] = r.reshape(-1, VLEN)
    return e


def test_v_trans():
    """V_TRANS copies one VLEN x VLEN block transposed, bit for bit (NaN payloads too), with
    any source and destination strides (0 included); overlapping spans and spans past the
    SRAM fault SRAM_RANGE before anything is written."""
    rng = np.random.default_rng(14)
    for ss, ds in ((1, 1), (3, 2), (0, 5), (2, 0)):
        e = new()
        e.vsram[:] = rng.integers(0, 1 << 16, e.vsram.shape).astype(np.uint16)
        before = e.vsram.copy()
        src = before[10 + ss * np.arange(VLEN)]
        e, res = ok(f"S_ADDI x1, x0, 400\nS_ADDI x2, x0, 10\nS_ADDI x3, x0, {ss}\nS_ADDI x4, x0, {ds}\n"
                    "V_TRANS x1, x2, x3, x4", e, trace=True)
        dst = 400 + ds * np.arange(VLEN)
        want = before.copy()
        for rr in range(VLEN):
            want[dst[rr]] = src[:, rr]
        assert (e.vsram == want).all(), (ss, ds)
        assert res.trace[-2].writes == {"V": (400, (VLEN - 1) * ds + 1)}
    top = CFG.sram.vector_rows
    for vd, vs, ss, ds in ((0, VLEN - 1, 1, 1), (VLEN - 1, 0, 1, 1), (40, 0, 3, 1), (0, 40, 1, 3),
                           (top - VLEN + 1, 0, 1, 1), (0, top - 2 * VLEN + 2, 2, 1), (0, 100, 1 << 20, 1)):
        e = new()
        before = e.vsram.copy()
        prog = f"{li('x1', vd)}\n{li('x2', vs)}\n{li('x3', ss)}\n{li('x4', ds)}\nV_TRANS x1, x2, x3, x4"
        fault(prog, ErrCause.SRAM_RANGE, len(isa.assemble(prog)) // 4 - 1, e)
        assert (e.vsram == before).all()


def test_load_v_faults():
    """H_LOAD_V checks in H_LOAD_INT's order: n = 0 retires with no check, MISALIGNED,
    SRAM_RANGE (before memory is read), then the read: AXI_READ for an unmapped range or
    one past the top of the address space."""
    R = CFG.sram.vector_rows
    end = PROG + MEM
    fault(f"{li('x1', DATA + 2)}\nS_ADDI x2, x0, 1\nH_LOAD_V x0, x1, x2", ErrCause.MISALIGNED, 3)
    # misaligned and out of range: alignment first
    fault(f"{li('x1', DATA + 1)}\n{li('x3', R)}\nS_ADDI x2, x0, 1\nH_LOAD_V x3, x1, x2",
          ErrCause.MISALIGNED, 5)
    fault(f"{li('x1', DATA)}\n{li('x3', R - 2)}\nS_ADDI x2, x0, 3\nH_LOAD_V x3, x1, x2",
          ErrCause.SRAM_RANGE, 5)
    fault(f"{li('x1', DATA)}\n{li('x3', 0xFFFFFFFF)}\nS_ADDI x2, x0, 2\nH_LOAD_V x3, x1, x2",
          ErrCause.SRAM_RANGE, 5)                                  # vd + n wraps 2^32: still out
    # out of range and unmapped: the SRAM range first
    fault(f"{li('x1', 0x100)}\n{li('x3', R)}\nS_ADDI x2, x0, 1\nH_LOAD_V x3, x1, x2",
          ErrCause.SRAM_RANGE, 5)
    # the read: a range running off the mapped memory, unmapped, past the top
    e = new()
    e.vsram[:] = 7
    res = fault(f"{li('x1', end - 2 * VLEN)}\nS_ADDI x2, x0, 2\nH_LOAD_V x0, x1, x2", ErrCause.AXI_READ, 3, e)
    assert (e.vsram == 7).all() and res.bytes_read == 0              # the emulator writes nothing
    fault(f"{li('x1', 0x100)}\nS_ADDI x2, x0, 1\nH_LOAD_V x0, x1, x2", ErrCause.AXI_READ, 3)
    fault(f"{li('x1', 0xFFFFFFFC)}\nS_ADDI x2, x0, 1\nH_LOAD_V x0, x1, x2", ErrCause.AXI_READ, 3)
    # n = 0: nothing checked, nothing written, retires
    e = new()
    e, res = ok(f"{li('x1', 0xFFFFFFF1)}\nH_LOAD_V x1, x1, x0", e)
    assert res.op_counts["H_LOAD_V"] == 1 and not e.vsram.any() and res.bytes_read == 0


def test_instructions_the_profile_lacks_are_illegal():
    """With [matrix] rows = 0 (the sim profile) every matrix-unit instruction faults
    ILLEGAL_INSTR at its PC, whatever its operands; a profile with a matrix unit has them."""
    absent = absent_instructions(CFG)
    assert absent == ({n for n, i in isa.INSTRS.items() if i.cls == "matrix"} if not CFG.matrix.rows else set())
    for name in sorted(absent):
        ins = isa.INSTRS[name]
        word = isa.encode(name, *[0 if o.kind != "mxfmt" else 3 for o in ins.operands])
        e = new()
        e.write(PROG, struct.pack("<II", isa.encode("C_NOP"), word))
        res = e.run(PROG)
        assert (res.status, res.cause, res.pc) == ("fault", ErrCause.ILLEGAL_INSTR, PROG + 4), name
    with_matrix = dataclasses.replace(CFG, matrix=dataclasses.replace(CFG.matrix, rows=CFG.vector.vlen))
    assert not absent_instructions(with_matrix)


@pytest.mark.parametrize("fmt", list(mx.FORMATS))
def test_prefetch_equals_dequantize_bf16(fmt):
    rng = np.random.default_rng(list(mx.FORMATS).index(fmt))
    ge = mx.group_elements(fmt, CFG.mx.block)
    n_el = 3 * ge
    x = (rng.normal(0, 1, n_el) * np.repeat(2.0 ** rng.integers(-140, 120, n_el // 32), 32)
         ).astype(np.float32)
    x[ge + 40] = np.nan                    # a NaN block
    q = mx.quantize(x, fmt, CFG.mx.block)
    buf = mx.pack(q)
    e = new()
    e.write(DATA, buf)
    rows = n_el // VLEN
    grp_rows = ge // VLEN
    e, res = ok(f"""
        {li("x1", DATA)}
        S_ADDI x2, x0, {rows}
        S_ADDI x3, x0, 0
        H_PREFETCH_V x3, x1, x2, {fmt}
        {li("x4", DATA + mx.group_nbytes(fmt, CFG.mx.block))}
        S_ADDI x5, x0, {grp_rows}
        S_ADDI x6, x0, {rows}
        H_PREFETCH_V x6, x4, x5, {fmt}     # stream from the second group on
    """, e)
    want = mx.dequantize_bf16(q).reshape(rows, VLEN)
    assert (e.vsram[:rows] == want).all()
    assert (e.vsram[rows:rows + grp_rows] == want[grp_rows:2 * grp_rows]).all()
    assert (want.reshape(-1)[ge + 32:ge + 64] == 0x7FC0).all()
    gb = mx.group_nbytes(fmt, CFG.mx.block)
    assert res.bytes_read == 3 * gb + gb


@pytest.mark.parametrize("fmt", ["e4m3", "e2m1", "e3m2"])
def test_prefetch_of_a_partial_group(fmt):
    # 5 blocks: a stream that ends inside its first group is read only as far as it goes.
    rng = np.random.default_rng(3)
    block = CFG.mx.block
    x = rng.normal(0, 4, 5 * block).astype(np.float32)
    q = mx.quantize(x, fmt, block)
    e = new()
    e.write(DATA, mx.pack(q))
    rows = x.size // VLEN
    e, res = ok(f"{li('x1', DATA)}\nS_ADDI x2, x0, {rows}\nH_PREFETCH_V x0, x1, x2, {fmt}", e)
    assert (e.vsram[:rows] == mx.dequantize_bf16(q).reshape(rows, VLEN)).all()
    block_bytes = (mx.group_nbytes(fmt, block) - mx.GROUP_BLOCKS) // mx.GROUP_BLOCKS
    assert res.bytes_read == mx.GROUP_BLOCKS + 5 * block_bytes


@pytest.mark.parametrize("fmt", list(mx.FORMATS))
@pytest.mark.parametrize("blocks", [5, 16, 37])
def test_store_mx_writes_the_packed_stream(fmt, blocks):
    """H_STORE_MX writes the first stream_nbytes of pack(quantize(rows)) (a partial last
    group's header whole, its codes as far as its blocks go) and not one byte more; the
    stream reads back through H_PREFETCH_V as dequantize_bf16(quantize(rows))."""
    rng = np.random.default_rng(blocks)
    block = CFG.mx.block
    n_el = blocks * block
    rows = n_el // VLEN
    x = (rng.normal(0, 1, n_el) * np.repeat(2.0 ** rng.integers(-130, 120, blocks), block)).astype(np.float32)
    bits = N.round_bf16(x.astype(np.float64))
    bits[3] = 0x8000                                  # -0.0
    bits[block + 1] = 0x0005                          # a BF16 subnormal, not flushed
    if blocks > 5:
        bits[2 * block + 7] = 0x7F80                  # +Inf: a NaN block
    e = new()
    e.vsram[10:10 + rows] = bits.reshape(rows, VLEN)
    nbytes = mx.stream_nbytes(n_el, fmt, block)
    e.write(DATA, b"\xAA" * (nbytes + 256))
    e, res = ok(f"""
        {li("x1", DATA)}
        S_ADDI x2, x0, {rows}
        S_ADDI x3, x0, 10
        H_STORE_MX x3, x1, x2, {fmt}
        S_ADDI x4, x0, 200
        H_PREFETCH_V x4, x1, x2, {fmt}
    """, e)
    q = mx.quantize(bits.view(ml_dtypes.bfloat16), fmt, block)
    want = mx.pack(q)[:nbytes]
    got = e.read(DATA, nbytes + 256)
    assert got[:nbytes] == want and got[nbytes:] == b"\xAA" * 256
    assert res.bytes_written == nbytes
    assert (e.vsram[200:200 + rows] == mx.dequantize_bf16(q).reshape(rows, VLEN)).all()
    if blocks > 5:
        assert want[2] == mx.SCALE_NAN


def test_store_mx_faults():
    """ILLEGAL_INSTR (fmt), n = 0 retires, MISALIGNED, SRAM_RANGE, AXI_WRITE, in that order."""
    R = CFG.sram.vector_rows
    rows = CFG.mx.block // VLEN
    ok("H_STORE_MX x1, x0, x0, e4m3")                                            # n = 0
    fault(f"{li('x1', DATA + 8)}\nS_ADDI x2, x0, {rows}\nH_STORE_MX x0, x1, x2, e4m3", ErrCause.MISALIGNED, 3)
    if CFG.mx.block > VLEN:
        fault(f"{li('x1', DATA)}\nS_ADDI x2, x0, 1\nH_STORE_MX x0, x1, x2, e4m3", ErrCause.MISALIGNED, 3)
    fault(f"{li('x1', DATA + 8)}\n{li('x3', R - rows + 1)}\nS_ADDI x2, x0, {rows}\n"
          f"H_STORE_MX x3, x1, x2, e4m3", ErrCause.MISALIGNED, 5)                # MISALIGNED before SRAM_RANGE
    fault(f"{li('x1', DATA)}\n{li('x3', R - rows + 1)}\nS_ADDI x2, x0, {rows}\nH_STORE_MX x3, x1, x2, e4m3",
          ErrCause.SRAM_RANGE, 5)
    fault(f"{li('x1', 0x80000000)}\n{li('x3', R - rows + 1)}\nS_ADDI x2, x0, {rows}\n"
          f"H_STORE_MX x3, x1, x2, e4m3", ErrCause.SRAM_RANGE, 5)                # SRAM_RANGE before AXI_WRITE
    fault(f"{li('x1', 0x80000000)}\nS_ADDI x2, x0, {rows}\nH_STORE_MX x0, x1, x2, e4m3", ErrCause.AXI_WRITE, 3)
    fault(f"{li('x1', PROG + MEM - 16)}\nS_ADDI x2, x0, {rows}\nH_STORE_MX x0, x1, x2, e4m3",
          ErrCause.AXI_WRITE, 3)                                                  # runs off the mapped region


def fused_slow(bits: np.ndarray, vlen: int) -> tuple[int, int]:
    """The documented H_SAMPLE_FUSED algorithm, element by element."""
    vals = [float(v) for v in N.bf16_value(bits)]
    scal = lambda a: float(a)          # noqa: E731
    m, s, idx = -math.inf, 0.0, 0
    for k in range(len(vals) // vlen):
        chunk = vals[k * vlen:(k + 1) * vlen]
        c, ci = chunk[0], 0
        for j in range(1, vlen):
            if N.gt(chunk[j], c):
                c, ci = chunk[j], j
        mp = c if N.gt(c, m) else m
        if N.gt(c, m):
            idx = k * vlen + ci
        lanes = [scal(N.exp_values(N.sub(l, mp))) for l in chunk]
        while len(lanes) > 1:
            lanes = [scal(N.add(lanes[i], lanes[i + 1])) for i in range(0, len(lanes), 2)]
        resc = scal(N.exp_values(N.sub(m, mp)))
        s = scal(N.add(scal(N.mul(s, resc)), lanes[0]))
        m = mp
    return idx, int(N.f32_bits(s))


@pytest.mark.parametrize("fmt", ["e4m3", "e2m1", "int8", "e5m2"])
def test_sample_fused_vs_slow_reference(fmt):
    rng = np.random.default_rng(11)
    ge = mx.group_elements(fmt, CFG.mx.block)
    V = 2 * ge
    rows_per = V // VLEN
    logits = [np.sort(rng.normal(0, 3, V)),               # ascending: a rescale every chunk
              rng.normal(0, 8, V),
              np.where(rng.random(V) < 0.5, 4.0, 4.0 - 2.0 ** -3)]    # ties across chunks
    nanrow = rng.normal(0, 1, V)
    nanrow[700] = np.nan
    logits.append(nanrow)
    q = mx.quantize(np.stack(logits).astype(np.float32), fmt, CFG.mx.block)
    stride = mx.packed_nbytes(V, fmt, CFG.mx.block)
    bufs = [mx.pack(mx.MXArray(fmt, q.block, (V,), q.scales[r], q.codes[r])) for r in range(4)]
    e = new()
    for r, b in enumerate(bufs):
        e.write(DATA + r * stride, b)
    e.vsram[:] = 0x5555
    src = [f"{li('x1', DATA)}", f"S_ADDI x2, x0, {rows_per}", f"{li('x3', stride)}"]
    for r in range(4):
        src += [f"H_SAMPLE_FUSED x{4 + r}, f{r}, x1, x2, {fmt}", "S_ADD x1, x1, x3"]
    e, res = ok("\n".join(src), e)
    deq = mx.dequantize_bf16(q)
    for r in range(4):
        want = fused_slow(deq[r], VLEN)
        assert (int(e.x[4 + r]), int(e.f[r])) == want, r
        assert want == N.fused_sample(deq[r], VLEN)
    assert int(e.x[7]) == int(np.flatnonzero(np.isnan(N.bf16_value(deq[3])))[0]) and e.f[3] == N.F32_NAN
    assert (e.vsram == 0x5555).all()                        # nothing written to vector SRAM
    assert res.bytes_read == 4 * 2 * mx.group_nbytes(fmt, CFG.mx.block)


def _fused_n_setup(fmt: str, count: int, V: int, seed: int = 12):
    """count packed logits rows of V elements at DATA, one every packed_nbytes (the
    compiler's row stride): (emulator, quantized rows, stride)."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(0, 4, (count, V))
    rows[0, 5:9] = rows[0].max() + 1.0                    # a tie for the argmax
    if count > 2:
        rows[2, 17] = np.nan
    q = mx.quantize(rows.astype(np.float32), fmt, CFG.mx.block)
    stride = mx.packed_nbytes(V, fmt, CFG.mx.block)
    assert stride % mx.PACK_ALIGN == 0
    e = new()
    for p in range(count):
        e.write(DATA + p * stride, mx.pack(mx.MXArray(fmt, q.block, (V,), q.scales[p], q.codes[p])))
    return e, q, stride


@pytest.mark.parametrize("fmt,V", [("e4m3", 1024), ("e2m1", 512), ("e3m2", 96), ("int8", 32)])
def test_sample_fused_n_equals_fused_then_reci(fmt, V):
    count = 5
    e, q, stride = _fused_n_setup(fmt, count, V)
    e.intsram[:] = 0x77
    e.fpsram[:] = 0x77
    rows = V // VLEN
    dst = 9
    e, res = ok(f"{li('x1', DATA)}\nS_ADDI x2, x0, {rows}\nS_ADDI x3, x0, {count}\nS_ADDI x4, x0, {dst}\n"
                f"H_SAMPLE_FUSED_N x4, x1, x2, x3, {fmt}", e)
    deq = mx.dequantize_bf16(q)
    for p in range(count):
        idx, s = N.fused_sample(deq[p], VLEN)
        assert int(e.intsram[dst + p]) == idx, p
        assert int(e.fpsram[dst + p]) == int(N.reci_f32(s)), p
    assert (e.intsram[:dst] == 0x77).all() and (e.intsram[dst + count:] == 0x77).all()
    assert (e.fpsram[:dst] == 0x77).all() and (e.fpsram[dst + count:] == 0x77).all()
    assert res.trace is None or True
    # the same as H_SAMPLE_FUSED + S_RECI_FP per position, through the trace's writes
    e2 = new()
    e2.write(DATA, e.read(DATA, count * stride))
    src = [li("x1", DATA), f"S_ADDI x2, x0, {rows}", li("x3", stride)]
    for p in range(count):
        src += [f"H_SAMPLE_FUSED x5, f1, x1, x2, {fmt}", "S_RECI_FP f2, f1", f"S_ST_FP f2, x0, {p}",
                f"S_ST_INT x5, x0, {p}", "S_ADD x1, x1, x3"]
    e2, _ = ok("\n".join(src), e2)
    assert (e2.intsram[:count] == e.intsram[dst:dst + count]).all()
    assert (e2.fpsram[:count] == e.fpsram[dst:dst + count]).all()


def test_sample_fused_n_faults():
    fmt, V, count = "e4m3", 512, 4
    rows = V // VLEN
    IW, FW = CFG.sram.int_words, CFG.sram.fp_words
    pre = f"{li('x1', DATA)}\nS_ADDI x2, x0, {rows}\nS_ADDI x3, x0, {count}\n"
    # fmt past the formats: illegal (even with count = 0)
    fmtf = isa.FIELDS["fmt"]
    w = isa.encode("H_SAMPLE_FUSED_N", 1, 2, 3, 0, 0) | (((1 << fmtf.width) - 1) << fmtf.lsb)
    e = new()
    e.write(PROG, np.array([w], "<u4").tobytes() + isa.assemble("C_HALT"))
    r = e.run(PROG)
    assert (r.status, r.cause, r.pc) == ("fault", ErrCause.ILLEGAL_INSTR, PROG)
    # n = 0 / count = 0: no checks (unmapped, misaligned, out of range), nothing written
    e = new()
    e, res = ok(f"{li('x1', 0xFFFFFFF1)}\n{li('x4', IW + 5)}\nS_ADDI x2, x0, 3\n"
                f"H_SAMPLE_FUSED_N x4, x1, x0, x2, e4m3\nH_SAMPLE_FUSED_N x4, x1, x2, x0, e4m3", e)
    assert (e.intsram == 0).all() and (e.fpsram == 0).all() and res.instret == 8
    # MISALIGNED before SRAM_RANGE; SRAM_RANGE (int or FP) before any stream
    fault(f"{li('x1', DATA + 8)}\n{li('x4', IW)}\nS_ADDI x2, x0, {rows}\nS_ADDI x3, x0, 1\n"
          f"H_SAMPLE_FUSED_N x4, x1, x2, x3, e4m3", ErrCause.MISALIGNED, 6)
    fault(f"{li('x1', DATA)}\nS_ADDI x2, x0, 1\nS_ADDI x3, x0, 1\n"
          f"H_SAMPLE_FUSED_N x0, x1, x2, x3, e4m3", ErrCause.MISALIGNED, 4)       # n*VLEN < block
    for dst, cnt in ((FW - 3, 4), (IW - 1, 2), (0, FW + 1)):
        e = new()
        fault(f"{li('x1', 0xFFFFFF00)}\nS_ADDI x2, x0, {rows}\n{li('x3', cnt)}\n{li('x4', dst)}\n"
              f"H_SAMPLE_FUSED_N x4, x1, x2, x3, e4m3", ErrCause.SRAM_RANGE, 7, e)
        assert (e.intsram == 0).all() and (e.fpsram == 0).all()
    # AXI_READ at position p: unmapped (position 2 runs off the mapped memory) ...
    e, q, stride = _fused_n_setup(fmt, 2, V)
    base = PROG + MEM - 2 * stride - stride // 2
    e.write(base, e.read(DATA, 2 * stride))
    e.intsram[:] = 0x55
    e.fpsram[:] = 0x55
    res = fault(f"{li('x1', base)}\nS_ADDI x2, x0, {rows}\nS_ADDI x3, x0, {count}\nS_ADDI x4, x0, 3\n"
                f"H_SAMPLE_FUSED_N x4, x1, x2, x3, {fmt}", ErrCause.AXI_READ, 5, e)
    deq = mx.dequantize_bf16(q)
    for p in range(2):                                      # positions 0, 1 written
        idx, s = N.fused_sample(deq[p], VLEN)
        assert (int(e.intsram[3 + p]), int(e.fpsram[3 + p])) == (idx, int(N.reci_f32(s)))
    assert (e.intsram[5:] == 0x55).all() and (e.fpsram[5:] == 0x55).all()
    assert (e.intsram[:3] == 0x55).all() and "position 2" in res.message
    # ... and past the top of the address space (position 1), position 0 written
    e = emu.Emulator(CFG)
    e.map(PROG, MEM)
    top = (1 << 32) - mx.packed_nbytes(V, fmt, CFG.mx.block) - 64
    e.map(top, (1 << 32) - top)
    e.write(PROG, isa.assemble(f"{li('x1', top)}\nS_ADDI x2, x0, {rows}\nS_ADDI x3, x0, 3\n"
                               f"H_SAMPLE_FUSED_N x0, x1, x2, x3, {fmt}\nC_HALT"))
    r = e.run(PROG)
    assert (r.status, r.cause, r.pc) == ("fault", ErrCause.AXI_READ, PROG + 16)
    assert "position 1" in r.message and "top" in r.message
    idx, s = N.fused_sample(np.zeros(V, np.uint16), VLEN)
    assert (int(e.intsram[0]), int(e.fpsram[0])) == (idx, int(N.reci_f32(s))) and e.fpsram[1] == 0
    EXERCISED.add("H_SAMPLE_FUSED_N")


# ---- loops ---------------------------------------------------------------------------------------

def test_loops_nested_zero_same_end():
    e0 = new()
    e0.set_x(9, 4)
    e, res = ok("""
        S_ADDI x3, x0, 4
        C_LOOP x3, @once
          S_ADDI x8, x8, 1
          S_ADDI x3, x3, 100            # the count was read once: no effect
        once:
        C_LOOPI 3, @outer               # 3 x
          S_ADDI x1, x1, 1
          C_LOOP x9, @outer             #   x9 = 4 x, ends with the outer loop
            S_ADDI x2, x2, 1
        outer:
        C_LOOPI 0, @skip                # count 0: skipped
          S_ADDI x4, x4, 1
        skip:
        C_LOOPI 2, @e2
          S_ADDI x5, x5, 1
          C_LOOPI 0, @e2                # count 0 at the end of an enclosing body:
            S_ADDI x6, x6, 1            # the enclosing loop still loops
        e2:
        C_LOOPI 2, @e3
          C_LOOPI 2, @e3
            C_LOOPI 2, @e3
              C_LOOPI 2, @e3            # depth 4 = ctrl.loop_depth, four ends at once
                S_ADDI x7, x7, 1
        e3:
    """, e0)
    x = e.x
    assert (x[1], x[2]) == (3, 12) and x[4] == 0 and (x[5], x[6]) == (2, 0) and x[7] == 16
    assert x[8] == 4 and x[3] == 404
    # retired: every loop instruction execution and every body instruction
    assert res.op_counts["C_LOOPI"] == 1 + 1 + (1 + 2) + (1 + 2 + 4 + 8)
    assert res.op_counts["C_LOOP"] == 1 + 3


def test_loop_faults():
    fault("C_LOOPI 3, 0\nC_NOP", ErrCause.LOOP_OVERFLOW, 0)
    fault("""C_LOOPI 2, @e
               C_LOOPI 2, @e
                 C_LOOPI 2, @e
                   C_LOOPI 2, @e
                     C_LOOPI 2, @e
                       C_NOP
             e:""", ErrCause.LOOP_OVERFLOW, 4)
    fault("""C_LOOPI 2, 2
               C_NOP
               C_LOOPI 2, 2           # sticks out of the enclosing body
               C_NOP
               C_NOP""", ErrCause.LOOP_OVERFLOW, 2)
    # depth is checked only for a push: a count-0 loop at full depth is fine
    ok("""C_LOOPI 1, @e
            C_LOOPI 1, @e
              C_LOOPI 1, @e
                C_LOOPI 1, @e
                  C_LOOPI 0, 1
                  C_NOP
          e:""")


def test_budget_stop_and_resume():
    e, res = run("""
        C_LOOPI 1000, @e
          S_ADDI x1, x1, 1
        e:
    """, max_instructions=101)
    assert res.status == "budget" and res.cause == ErrCause.NONE
    assert res.instret == 101 and e.x[1] == 100 and res.pc == PROG + 4
    assert e.read_csr("STATUS") & 1                        # still busy
    res2 = e.resume(max_instructions=10_000)
    assert res2.status == "halted" and e.x[1] == 1000 and res2.instret == 1000 - 100 + 1
    with pytest.raises(emu.EmuError):
        e.resume()


# ---- faults --------------------------------------------------------------------------------------

def test_illegal_instruction():
    e = new()
    words = [isa.encode("S_ADDI", 1, 0, 1), 0x00000000]
    e.write(PROG, struct.pack("<2I", *words))
    res = e.run(PROG)
    assert res.cause == ErrCause.ILLEGAL_INSTR and res.pc == PROG + 4 and e.x[1] == 1
    assert res.instret == 1
    for bad in (isa.encode("C_NOP") | 1 << 20,                    # a stray bit
                isa.encode("S_ADD_FP", 0, 1, 2) | 1 << 10,        # f register 8..15
                isa.encode("H_PREFETCH_V", 1, 2, 3, "e4m3") | 6 << 23,   # no such mxfmt
                0x62, 0x7F):                                        # reserved opcodes
        e = new()
        e.write(PROG, struct.pack("<I", bad))
        res = e.run(PROG)
        assert (res.status, res.cause, res.pc) == ("fault", ErrCause.ILLEGAL_INSTR, PROG), hex(bad)


def test_mx_format_not_in_profile_is_illegal():
    cfg = dataclasses.replace(CFG, mx=dataclasses.replace(CFG.mx, formats=("e4m3",)))
    fault("S_ADDI x1, x0, 1\nH_SAMPLE_FUSED x1, f0, x0, x0, e2m1", ErrCause.ILLEGAL_INSTR, 1, new(cfg))
    fault("H_PREFETCH_V x1, x0, x0, int8", ErrCause.ILLEGAL_INSTR, 0, new(cfg))
    ok("H_PREFETCH_V x1, x0, x0, e4m3", new(cfg))              # n = 0: nothing
    fault("H_STORE_MX x1, x0, x0, e2m1", ErrCause.ILLEGAL_INSTR, 0, new(cfg))  # before n = 0


def test_sram_range():
    R, FW, IW = CFG.sram.vector_rows, CFG.sram.fp_words, CFG.sram.int_words
    res = fault(f"""
        {li("x1", R - 3)}
        S_ADDI x2, x0, 3
        V_EXP_V x1, x1, x2              # rows R-3..R-1: fine
        S_ADDI x2, x0, 4
        V_EXP_V x0, x1, x2              # source row R: out
    """, ErrCause.SRAM_RANGE, 5)
    assert "vector" in res.message
    fault(f"{li('x1', R - 1)}\nS_ADDI x2, x0, 2\nV_ADD_VV x1, x0, x0, x2", ErrCause.SRAM_RANGE, 3)
    fault(f"{li('x1', FW)}\nS_LD_FP f0, x1, 0", ErrCause.SRAM_RANGE, 2)
    fault(f"{li('x1', FW)}\nS_LD_FP f0, x1, -1\nS_ST_FP f0, x1, 0", ErrCause.SRAM_RANGE, 3)
    fault("S_LD_INT x2, x0, -1", ErrCause.SRAM_RANGE, 0)
    fault(f"S_ST_INT x2, x0, {IW}", ErrCause.SRAM_RANGE, 0)
    fault(f"{li('x1', FW - 16)}\nS_ADDI x2, x0, 17\nS_MAP_V_FP x0, x1, x2", ErrCause.SRAM_RANGE, 3)
    fault(f"{li('x1', R - 1)}\nS_ADDI x2, x0, 17\nS_MAP_V_FP x1, x0, x2", ErrCause.SRAM_RANGE, 3)
    fault(f"{li('x1', IW - 2)}\nS_ADDI x2, x0, 3\nV_SELECT_INT x0, x0, x1, x2", ErrCause.SRAM_RANGE, 3)
    fault(f"{li('x1', FW - 2)}\nS_ADDI x2, x0, 3\nV_TOPK_MASK x0, x1, x2, x2", ErrCause.SRAM_RANGE, 3)
    fault(f"{li('x1', R)}\nS_ADDI x2, x0, 1\nV_RED_SUM f0, x1, x2", ErrCause.SRAM_RANGE, 3)
    # a wrapped-around range is out too
    fault(f"{li('x1', 0xFFFFFFFF)}\nS_ADDI x2, x0, 2\nV_FILL_VF x1, f0, x2", ErrCause.SRAM_RANGE, 3)
    # loads: the SRAM destination is checked before memory is read
    e = new()
    fault(f"{li('x1', DATA)}\n{li('x2', IW)}\nS_ADDI x3, x0, 1\nH_LOAD_INT x2, x1, x3",
          ErrCause.SRAM_RANGE, 5, e)


def test_misaligned():
    fault(f"{li('x1', DATA + 2)}\nS_ADDI x2, x0, 1\nH_LOAD_INT x0, x1, x2", ErrCause.MISALIGNED, 3)
    fault(f"{li('x1', DATA + 1)}\nS_ADDI x2, x0, 1\nH_STORE_FP x0, x1, x2", ErrCause.MISALIGNED, 3)
    fault(f"{li('x1', DATA + 2)}\nS_ADDI x2, x0, 1\nH_STORE_V x0, x1, x2", ErrCause.MISALIGNED, 3)
    # MX streams: group starts at a beat, whole MX blocks
    ge_rows = mx.group_elements("e4m3", CFG.mx.block) // VLEN
    fault(f"{li('x1', DATA + 8)}\nS_ADDI x2, x0, {ge_rows}\nH_PREFETCH_V x0, x1, x2, e4m3",
          ErrCause.MISALIGNED, 3)
    fault(f"{li('x1', DATA)}\nS_ADDI x2, x0, {ge_rows - 1}\nH_SAMPLE_FUSED x3, f0, x1, x2, e4m3",
          ErrCause.MISALIGNED, 3)
    # misaligned beats out-of-range: alignment is checked first
    fault(f"{li('x1', DATA + 8)}\n{li('x3', CFG.sram.vector_rows)}\nS_ADDI x2, x0, {ge_rows}\n"
          f"H_PREFETCH_V x3, x1, x2, e4m3", ErrCause.MISALIGNED, 5)
    # the program counter
    e = new()
    e.write(PROG, isa.assemble("C_HALT"))
    res = e.run(PROG + 2)
    assert (res.status, res.cause, res.pc) == ("fault", ErrCause.MISALIGNED, PROG + 2)


def test_axi_errors():
    # fetch beyond the mapped memory
    e = emu.Emulator(CFG)
    e.map(PROG, 8)
    e.write(PROG, isa.assemble("C_NOP\nC_NOP"))
    res = e.run(PROG)
    assert (res.cause, res.pc, res.instret) == (ErrCause.AXI_READ, PROG + 8, 2)
    res = emu.Emulator(CFG).run(0x100)
    assert (res.cause, res.pc) == (ErrCause.AXI_READ, 0x100)
    # data reads: the whole range must be mapped
    end = PROG + MEM
    fault(f"{li('x1', end - 8)}\nS_ADDI x2, x0, 3\nH_LOAD_FP x0, x1, x2", ErrCause.AXI_READ, 3)
    ge_rows = mx.group_elements("e2m1", CFG.mx.block) // VLEN
    fault(f"{li('x1', end - 256)}\nS_ADDI x2, x0, {ge_rows}\nH_PREFETCH_V x0, x1, x2, e2m1",
          ErrCause.AXI_READ, 3)
    fault(f"{li('x1', end - 256)}\nS_ADDI x2, x0, {ge_rows}\nH_SAMPLE_FUSED x5, f1, x1, x2, e2m1",
          ErrCause.AXI_READ, 3)
    # writes
    e = new()
    e.intsram[:4] = 9
    res = fault(f"{li('x1', end - 8)}\nS_ADDI x2, x0, 3\nH_STORE_INT x0, x1, x2", ErrCause.AXI_WRITE, 3, e)
    assert e.read(end - 8, 8) == bytes(8)                   # the emulator writes nothing
    assert res.bytes_written == 0
    fault(f"{li('x1', 0x80000000)}\nS_ADDI x2, x0, 1\nH_STORE_V x0, x1, x2", ErrCause.AXI_WRITE, 3)


def test_fault_leaves_registers_and_n_zero_does_nothing():
    e = new()
    e.set_f(3, 0x12345678)
    res = fault(f"""
        S_ADDI x1, x0, 7
        {li('x2', CFG.sram.vector_rows)}
        V_RED_MAX_IDX f3, x1, x2, x1     # row R..: out of range; f3, x1 unchanged
    """, ErrCause.SRAM_RANGE, 3, e)
    assert e.x[1] == 7 and e.f[3] == 0x12345678 and res.instret == 3
    # n = 0: no checks, no writes, still retires
    e, res = ok(f"""
        {li('x1', 0xFFFFFFF1)}
        S_ADDI x6, x0, 5
        V_RED_MAX_IDX f3, x6, x1, x0
        V_RED_SUM f3, x1, x0
        H_PREFETCH_V x1, x1, x0, e4m3
        H_SAMPLE_FUSED x6, f3, x1, x0, e2m3
        H_LOAD_INT x1, x1, x0
        H_STORE_V x1, x1, x0
        S_MAP_V_FP x1, x1, x0
        V_TOPK_MASK x1, x1, x1, x0
    """, e)
    assert e.x[6] == 5 and e.f[3] == 0x12345678 and res.instret == 12


# ---- results: trace, counts; host API ----------------------------------------------------------

def test_trace_contents():
    e = new()
    e.fpsram[0] = f32(2.0)
    e, res = ok(f"""
        S_ADDI x1, x0, 3
        S_LD_FP f1, x0, 0
        V_FILL_VF x1, f1, x1
        S_ST_INT x1, x0, 9
        {li('x2', DATA)}
        H_STORE_V x1, x2, x1
        V_RED_MAX_IDX f2, x4, x1, x1
        C_NOP
    """, e, trace=True)
    tr = res.trace
    assert [t.text.split()[0] for t in tr] == ["S_ADDI", "S_LD_FP", "V_FILL_VF", "S_ST_INT", "S_LUI",
                                              "S_ADDI", "H_STORE_V", "V_RED_MAX_IDX", "C_NOP", "C_HALT"]
    assert [t.pc for t in tr] == [PROG + 4 * k for k in range(10)]
    assert tr[0].writes == {"x1": 3} and tr[0].text == "S_ADDI x1, x0, 3"
    assert tr[0].word == isa.encode("S_ADDI", 1, 0, 3)
    assert tr[1].writes == {"f1": f32(2.0)}
    assert tr[2].writes == {"V": (3, 3)}
    assert tr[3].writes == {"INT": (9, 1)}
    assert tr[6].writes == {"M": (DATA, 3 * 2 * VLEN)}
    assert tr[7].writes == {"f2": f32(2.0), "x4": 0}
    assert tr[8].writes == {} and tr[9].writes == {}
    assert res.instret == 10 and res.fetch_bytes == 40
    assert res.class_counts == dict.fromkeys(isa.CLASSES, 0) | {"control": 2, "scalar_int": 4, "scalar_fp": 1,
                                                                "vector": 2, "memory": 1}
    assert res.op_counts["S_ADDI"] == 2
    assert e.read_csr("INSTRET") == 10 and e.read_csr("STATUS") == 0b010
    assert e.read_csr("ID") == 0x444E5055 and e.read_csr("CONFIG_HASH") == CFG.config_hash32


def test_host_memory_api():
    e = emu.Emulator(CFG)
    with pytest.raises(emu.EmuError):
        e.write(0x100, b"abc")
    e.write(0x100, b"abc", auto_map=True)
    e.map(0x103, 5)
    e.map(0x200, 16)
    e.map(0x108, 0x100 - 8)                 # bridges the two: one region
    assert e.mem.regions() == [(0x100, 0x110)]
    assert e.read(0x100, 8) == b"abc" + bytes(5)
    with pytest.raises(emu.EmuError):
        e.read(0x20C, 8)
    e.map(0x1_0000 - 4, 8)                  # across a page boundary
    e.write(0x1_0000 - 4, bytes(range(8)))
    assert e.read(0x1_0000 - 4, 8) == bytes(range(8))
    with pytest.raises(emu.EmuError):
        e.map(0xFFFFFFF0, 32)


def test_state_persists_and_soft_reset():
    e, _ = ok("S_ADDI x3, x0, 42\nS_LI_FP f2, 0x4000")
    e, _ = ok("S_ADDI x4, x3, 1", e)
    assert e.x[4] == 43 and e.f[2] == 0x40000000
    e.soft_reset()
    assert not e.x.any() and not e.f.any() and e.read_csr("STATUS") == 0


def test_internal_error_is_reported(monkeypatch):
    e = new()
    monkeypatch.setattr(e, "_bound", dict(e._bound, C_NOP=lambda a: 1 // 0))
    e.write(PROG, isa.assemble("C_NOP\nC_HALT"))
    res = e.run(PROG)
    assert res.status == "internal" and "ZeroDivisionError" in res.message


def _random_operand(rng, o: isa.Operand) -> int:
    if o.kind == "uimm" and o.field.name == "len":
        return int(rng.integers(0, 5))
    if o.kind == "uimm" and o.field.name == "count":
        return int(rng.integers(0, 4))
    if o.kind == "imm" and rng.random() < 0.8:
        return int(rng.integers(-8, 64))
    return int(rng.integers(o.lo, o.hi + 1)) if o.kind != "mxfmt" else int(rng.integers(0, 6))


def test_random_programs_never_raise():
    """Random words, and random legal instructions on random register values: every run ends
    halted, faulted or on its budget, never with a Python exception."""
    rng = np.random.default_rng(12)
    names = sorted(isa.INSTRS)
    e = new()
    e.write(DATA, rng.integers(0, 256, 8192, dtype=np.uint8).tobytes())
    interesting = [0, 1, 2, 3, 16, 32, 64, 100, 1023, 1024, 2047, 2048, DATA, DATA + 4, DATA + 16,
                   PROG + MEM - 4, 0xFFFFFFFF, 0x80000000]
    statuses = set()
    for trial in range(120):
        if trial < 20:
            words = rng.integers(0, 1 << 32, 64, dtype=np.uint64).astype(np.uint32)
        else:
            prog = []
            for _ in range(24):
                ins = isa.INSTRS[names[rng.integers(len(names))]]
                prog.append(isa.encode(ins.name, *[_random_operand(rng, o) for o in ins.operands]))
            words = np.array(prog + [isa.encode("C_HALT")], np.uint32)
        for i in range(1, 16):
            e.set_x(i, interesting[rng.integers(len(interesting))] if rng.random() < 0.7
                    else int(rng.integers(0, 1 << 32)))
        for i in range(8):
            e.set_f(i, int(rng.integers(0, 1 << 32)))
        e.write(PROG, words.astype("<u4").tobytes())
        res = e.run(PROG, max_instructions=500)
        assert res.status in ("halted", "fault", "budget"), res.message
        statuses.add(res.cause if res.status == "fault" else res.status)
    assert {"halted", ErrCause.ILLEGAL_INSTR, ErrCause.SRAM_RANGE} <= statuses


# ---- a whole sampling step: both flows, bit-exact against numerics, and fast ------------------

def sampling_program(L: int, V: int, stride: int, fmt: str, flow: str) -> str:
    rows = V // VLEN
    body = {"phased": f"""    H_PREFETCH_V x0, x1, x10, {fmt}
    V_RED_MAX_IDX f0, x14, x0, x10
    V_SUB_VF x0, x0, f0, x10
    V_EXP_V x0, x0, x10
    V_RED_SUM f1, x0, x10
""", "fused": f"    H_SAMPLE_FUSED x14, f1, x1, x10, {fmt}\n"}[flow]
    return f"""
S_LD_ARG x1, 0
S_LD_ARG x2, 1
S_LD_ARG x3, 2
{li("x8", stride)}
S_ADDI x10, x0, {rows}
S_ADDI x9, x0, {L}
S_ADDI x13, x0, 0
C_LOOP x9, @end
{body}    S_RECI_FP f2, f1
    S_ST_FP f2, x13, 0
    S_ST_INT x14, x13, 0
    S_ADD x1, x1, x8
    S_ADDI x13, x13, 1
end:
H_STORE_FP x0, x2, x9
H_STORE_INT x0, x3, x9
"""


def sampling_emulator(flow: str, data_path: bool = True, L: int = 32, V: int = 4096, fmt: str = "e4m3"):
    """An emulator holding sampling_program and its packed logits (one 30.0 at [5, 77]):
    (emulator, args, the quantized logits)."""
    rng = np.random.default_rng(13)
    logits = rng.normal(0, 3, (L, V)).astype(np.float32)
    logits[5, 77] = 30.0
    q = mx.quantize(logits, fmt, CFG.mx.block)
    stride = mx.packed_nbytes(V, fmt, CFG.mx.block)
    e = emu.Emulator(CFG, data_path=data_path)
    e.map(PROG, 0x1000)
    e.map(0x100000, L * stride + 0x1000)
    e.write(0x100000, mx.pack(q))
    e.write(PROG, isa.assemble(sampling_program(L, V, stride, fmt, flow) + "C_HALT\n"))
    return e, [0x100000, 0x100000 + L * stride, 0x100000 + L * stride + 4 * L], q


@pytest.mark.parametrize("flow", FLOWS)
def test_sampling_step_bit_exact(flow):
    L, V, fmt = 32, 4096, "e4m3"
    e, args, q = sampling_emulator(flow, L=L, V=V, fmt=fmt)
    out_p, out_i = args[1:]
    res = e.run(PROG, args=args)
    EXERCISED.update(res.op_counts)
    assert res.status == "halted", str(res)
    deq = mx.dequantize_bf16(q)
    fn = {"phased": N.phased_confidence, "fused": N.fused_confidence}[flow]
    idx, p = fn(deq, VLEN)
    assert np.frombuffer(e.read(out_i, 4 * L), "<u4").tolist() == idx.tolist()
    assert np.frombuffer(e.read(out_p, 4 * L), "<u4").tolist() == p.tolist()
    assert idx[5] == 77
    v = N.bf16_value(deq)
    p_ref = 1 / np.exp(v - v.max(axis=1, keepdims=True)).sum(axis=1)
    bound = N.p_rel_error_bound(V, VLEN, flow)
    assert np.all(np.abs(p.view(np.float32) - p_ref) <= bound * p_ref)
    groups = V // mx.group_elements(fmt, CFG.mx.block)
    assert res.bytes_read == L * groups * mx.group_nbytes(fmt, CFG.mx.block)


# ---- without the data path; the per-instruction callback; values from data --------------------

def _executed(e: emu.Emulator, args) -> tuple[emu.RunResult, list]:
    seen = []
    res = e.run(PROG, args=args, on_exec=lambda pc, name, a, x: seen.append((pc, name, a, tuple(x), e.x_data)))
    return res, seen


@pytest.mark.parametrize("flow", FLOWS)
def test_without_the_data_path_the_same_instructions_run(flow):
    """data_path=False runs the same dynamic instruction stream on the same x values (the
    program computes none from data it then reads), with the same counts and bytes, and
    writes no SRAM or memory."""
    full, args, _ = sampling_emulator(flow)
    bare, _, _ = sampling_emulator(flow, data_path=False)
    res, seen = _executed(full, args)
    res_b, seen_b = _executed(bare, args)
    assert res.status == res_b.status == "halted"
    assert [s[:2] for s in seen] == [s[:2] for s in seen_b]
    for (pc, name, a, x, xd), (_, _, _, xb, xdb) in zip(seen, seen_b):
        assert xd == xdb, (hex(pc), name)
        assert [v for i, v in enumerate(x) if not xd >> i & 1] == [v for i, v in enumerate(xb) if not xd >> i & 1]
    for k in ("instret", "class_counts", "op_counts", "bytes_read", "bytes_written", "fetch_bytes"):
        assert getattr(res, k) == getattr(res_b, k), k
    assert res.bytes_read > 0 and not bare.vsram.any() and not bare.fpsram.any() and not bare.intsram.any()
    assert not any(bare.read(args[1], 8 * 32)) and any(full.read(args[1], 8 * 32))
    assert not bare.f.any()


def test_without_the_data_path_faults_are_the_same():
    """Checks need operands only: each fault of the fault tests happens there too."""
    progs = [("S_ADDI x1, x0, 2\nS_ADDI x2, x0, 1\nH_LOAD_INT x0, x1, x2", ErrCause.MISALIGNED, 2),
             ("S_ADDI x1, x0, 1000\nS_ADDI x2, x0, 100\nV_EXP_V x1, x0, x2", ErrCause.SRAM_RANGE, 2),
             (f"{li('x1', 0x90000)}\nS_ADDI x2, x0, 1\nH_STORE_INT x0, x1, x2", ErrCause.AXI_WRITE, 3),
             (f"{li('x1', 0x90000)}\nS_ADDI x2, x0, 2\nH_PREFETCH_V x0, x1, x2, e4m3", ErrCause.AXI_READ, 3)]
    for src, cause, index in progs:
        for dp in (True, False):
            e = emu.Emulator(CFG, data_path=dp)
            e.map(PROG, MEM)
            fault(src, cause, index, e)


def test_x_data_marks_values_computed_from_data():
    e, res = ok("""
        S_LD_ARG x1, 0
        S_LD_INT x2, x0, 0
        S_ADDI x3, x2, 1
        S_ADD x4, x3, x1
        S_LUI x5, 3
        S_LT_FP x6, f0, f1
        S_MAX x7, x1, x5
        S_ADDI x2, x0, 4
        S_ADDI x10, x0, 1
        V_RED_MAX_IDX f2, x8, x0, x10
    """, args=[5])
    assert e.x_data == sum(1 << r for r in (3, 4, 6, 8))
    e.set_x(4, 7)
    assert e.x_data == sum(1 << r for r in (3, 6, 8))
    e.soft_reset()
    assert e.x_data == 0


def test_on_exec_sees_each_instruction_before_it_executes():
    e = new()
    e.write(PROG, isa.assemble("C_LOOPI 3, 1\nS_ADDI x1, x1, 2\nC_HALT"))
    e.set_x(1, 10)
    seen = []
    res = e.run(PROG, on_exec=lambda pc, name, a, x: seen.append((pc - PROG, name, a.get("rs1"), x[1])))
    assert res.status == "halted" and res.instret == 5
    assert seen == [(0, "C_LOOPI", None, 10), (4, "S_ADDI", 1, 10), (4, "S_ADDI", 1, 12), (4, "S_ADDI", 1, 14),
                    (8, "C_HALT", None, 16)]

    class Stop(Exception):
        pass

    def stop(pc, name, a, x):
        if name == "S_ADDI":
            raise Stop(pc)
    with pytest.raises(Stop):
        e.run(PROG, on_exec=stop)
    assert e.x[1] == 16 and e.read_csr("STATUS") == 1 and e.pc == PROG + 4   # not executed, still BUSY


# ---- keep last: every instruction of the ISA ran somewhere in this file ------------------------

def test_zz_every_instruction_exercised():
    others = {n for n in globals() if n.startswith("test_") and n != "test_zz_every_instruction_exercised"}
    if not others <= RAN:
        pytest.skip("only meaningful when every test of this file ran before it in this process "
                    f"(missing: {len(others - RAN)}; run the whole file, or xdist with --dist loadgroup)")
    # (the profile's absent instructions fault ILLEGAL_INSTR: test_instructions_the_profile_lacks_are_illegal)
    missing = sorted(set(isa.INSTRS) - EXERCISED - absent_instructions(CFG))
    assert not missing, f"instructions no test executed: {missing}"
