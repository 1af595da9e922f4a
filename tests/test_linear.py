"""The matrix unit in the emulator and the linear-layer path: the weight layout
(dnpu.spec.matrix), M_CFG / M_MM / M_MM_RES bit for bit against matmul.matmul_bf16 and
their faults in the order of docs/EXECUTION.md, H_LOAD_V, the compiler's tile plan (K split
over M_MM_F32 / M_MM_ACC_F32 / M_MM_ACC(_RES) included) and dnpu.ops.linear against its
PyTorch reference within the NUMERICS bound."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dnpu import ops
from dnpu.compiler import CompileError
from dnpu.compiler.linear import linear_program, plan, weight_image
from dnpu.emu import Emulator
from dnpu.spec import matmul
from dnpu.spec import config as config_mod
from dnpu.spec import isa, matrix, mx
from dnpu.spec import numerics as nm
from dnpu.spec.csr import ErrCause

PROG, XA, WA = 0x10000, 0x20000, 0x80000


def with_rows(cfg, rows: int):
    """cfg with [matrix] rows = rows (the profile's other facts unchanged)."""
    return dataclasses.replace(cfg, matrix=dataclasses.replace(cfg.matrix, rows=rows))


def with_vector_rows(cfg, rows: int):
    """cfg with [sram] vector_rows = rows: K splits at a small K (the emulator sizes its
    vector SRAM from the config)."""
    return dataclasses.replace(cfg, sram=dataclasses.replace(cfg.sram, vector_rows=rows))


@pytest.fixture(scope="module")
def mcfg():
    cfg = config_mod.load("sim")
    return cfg if cfg.matrix.rows else with_rows(cfg, 4)


SPECIALS = np.array([0x7FC0, 0x7FC1, 0xFFC0, 0x7F80, 0xFF80, 0x0000, 0x8000, 0x0001, 0x807F,
                     0x7F7F, 0xFF7F, 0x0080, 0x8080, 0x3F80, 0xBF80, 0x5F80, 0x2000], np.uint16)


def rand_bf16(rng, shape, special=0.0):
    v = nm.round_bf16(rng.standard_normal(shape) * 2.0 ** rng.integers(-8, 8, shape))
    if special:
        pick = rng.random(shape) < special
        v = np.where(pick, rng.choice(SPECIALS, shape), v)
    return v.astype(np.uint16)


# ---- the weight layout -------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(mx.FORMATS))
def test_square_order_quantizes_like_along_k(fmt):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((32, 96)) * np.exp(rng.standard_normal((32, 96)))
    packed = matrix.pack_weights(w, fmt, 32, 16)
    stride = matrix.tile_nbytes(96, fmt, 32, 16)
    assert len(packed) == 2 * stride and stride % 64 == 0
    tiles = [mx.dequantize_bf16(mx.unpack(np.frombuffer(packed[t * stride:(t + 1) * stride], np.uint8),
                                          (16 * 96,), fmt, 32)) for t in range(2)]
    back = matrix.from_square_order(np.concatenate(tiles), 32, 96, 16, 32)
    assert np.array_equal(back, matrix.quantize_weights(w, fmt, 32))


def test_square_order_rows():
    w = np.arange(32 * 64).reshape(32, 64)
    rows = matrix.weight_rows(w, 16, 32)
    assert rows.shape == (2 * 64, 16)
    assert list(rows[0]) == list(range(16)) and list(rows[1]) == list(range(16, 32))
    assert list(rows[2]) == list(range(64, 80))            # row 1 of W, its first block
    assert rows[32, 0] == 32                               # square b = 1 starts at W[0, 32]
    assert np.array_equal(matrix.from_square_order(rows.reshape(-1), 32, 64, 16, 32), w)


# ---- the emulator ---------------------------------------------------------------------------

def _emu(cfg, x_bits, w, fmt, *, res_bits=None, vd=None, vr=None, m=None, n=None, k=None, wa=WA, src_extra=""):
    M, K = x_bits.shape
    N = w.shape[0]
    vlen = cfg.vector.vlen
    emu = Emulator(cfg)
    emu.map(PROG, 0x1000)
    emu.map(XA, 0x40000)
    emu.map(WA, 0x100000)
    emu.write(XA, x_bits.astype("<u2").tobytes())
    emu.write(WA, matrix.pack_weights(w, fmt, cfg.mx.block, vlen))
    xrows = M * K // vlen
    vd = xrows + 3 if vd is None else vd
    lines = [*isa.load_imm("x1", M if m is None else m), *isa.load_imm("x2", N if n is None else n),
             *isa.load_imm("x3", K if k is None else k), "M_CFG x1, x2, x3",
             *isa.load_imm("x4", XA), *isa.load_imm("x5", xrows), "H_LOAD_V x0, x4, x5",
             *isa.load_imm("x6", wa), *isa.load_imm("x7", vd)]
    if res_bits is not None:
        vr = vd if vr is None else vr
        emu.vsram[vr:vr + M * N // vlen] = res_bits.reshape(-1, vlen)
        lines += [*isa.load_imm("x8", vr), f"M_MM_RES x7, x0, x6, x8, {fmt}"]
    else:
        lines += [f"M_MM x7, x0, x6, {fmt}"]
    lines += [src_extra, "C_HALT"]
    emu.write(PROG, isa.assemble("\n".join(lines)))
    return emu, emu.run(PROG, max_instructions=10_000), vd


@pytest.mark.parametrize("M,N,K,res,special", [(1, 16, 32, False, 0.0), (6, 32, 64, True, 0.0),
                                               (9, 48, 96, False, 0.1), (4, 16, 32, True, 0.2),
                                               (5, 16, 128, True, 0.05)])
def test_m_mm_is_matmul_bf16(mcfg, M, N, K, res, special):
    rng = np.random.default_rng(M * 1000 + N + K)
    x = rand_bf16(rng, (M, K), special)
    w = rng.standard_normal((N, K)) * np.exp(rng.standard_normal((N, K)))
    if special:
        w[rng.random((N, K)) < special / 4] = np.nan          # MX NaN blocks: 0x7FC0 weights
    r = rand_bf16(rng, (M, N), special) if res else None
    emu, rr, vd = _emu(mcfg, x, w, "e4m3", res_bits=r)
    assert rr.ok, rr
    y = emu.vsram[vd:vd + M * N // 16].reshape(M, N)
    want = matmul.matmul_bf16(x, matrix.quantize_weights(w, "e4m3", 32), residual_bits=r)
    assert np.array_equal(y, want)
    groups = -(-M // mcfg.matrix.rows)
    assert rr.bytes_read == 2 * M * K + groups * (N // 16) * mx.stream_nbytes(16 * K, "e4m3", 32)


def test_m_mm_res_in_place_and_separate_agree(mcfg):
    rng = np.random.default_rng(7)
    x, w, r = rand_bf16(rng, (3, 32), 0.0), rng.standard_normal((16, 32)), rand_bf16(rng, (3, 16))
    e1, r1, vd1 = _emu(mcfg, x, w, "e2m1", res_bits=r)
    e2, r2, vd2 = _emu(mcfg, x, w, "e2m1", res_bits=r, vr=200)
    assert r1.ok and r2.ok
    assert np.array_equal(e1.vsram[vd1:vd1 + 3], e2.vsram[vd2:vd2 + 3])


@pytest.mark.parametrize("case,cause", [
    ("no_unit", ErrCause.ILLEGAL_INSTR),
    ("n_not_vlen", ErrCause.MISALIGNED),
    ("k_not_multiple", ErrCause.MISALIGNED),
    ("x_overlap", ErrCause.SRAM_RANGE),
    ("y_past_top", ErrCause.SRAM_RANGE),
    ("r_partial_overlap", ErrCause.SRAM_RANGE),
    ("w_unmapped", ErrCause.AXI_READ),
])
def test_m_mm_faults(mcfg, case, cause):
    rng = np.random.default_rng(3)
    x, w = rand_bf16(rng, (4, 32)), rng.standard_normal((32, 32))
    cfg, kw = mcfg, {}
    if case == "no_unit":
        cfg = with_rows(mcfg, 0)
    elif case == "n_not_vlen":
        kw = {"n": 24}
    elif case == "k_not_multiple":
        kw = {"k": 48}
    elif case == "x_overlap":
        kw = {"vd": 7}
    elif case == "y_past_top":
        kw = {"vd": cfg.sram.vector_rows - 7}
    elif case == "r_partial_overlap":
        kw = {"res_bits": rand_bf16(rng, (4, 32)), "vd": 20, "vr": 21}
    elif case == "w_unmapped":
        kw = {"wa": WA + 0x100000 - 64}           # the tile runs off the mapped region
    emu, rr, _ = _emu(cfg, x, w, "e4m3", **kw)
    assert rr.status == "fault" and rr.cause == cause, rr
    assert isa.disassemble(emu.read(rr.pc, 4))[0].startswith("M_CFG" if case == "no_unit" else "M_MM")


def test_m_mm_zero_shape_and_cfg_state(mcfg):
    rng = np.random.default_rng(4)
    emu, rr, vd = _emu(mcfg, rand_bf16(rng, (2, 32)), rng.standard_normal((16, 32)), "e4m3", m=0)
    assert rr.ok and not emu.vsram[vd:vd + 2].any()
    assert emu.mshape == (0, 16, 32)
    emu.soft_reset()
    assert emu.mshape == (0, 0, 0)


def test_h_load_v_round_trip(mcfg):
    emu = Emulator(mcfg)
    emu.map(PROG, 0x1000)
    emu.map(XA, 0x1000)
    data = np.random.default_rng(5).integers(0, 1 << 16, (3, 16)).astype("<u2")
    emu.write(XA, data.tobytes())
    emu.write(PROG, isa.assemble("\n".join([*isa.load_imm("x1", XA + 4), "S_ADDI x2, x0, 3", "S_ADDI x3, x0, 9",
                                            "H_LOAD_V x3, x1, x2", "C_HALT"])))
    assert emu.run(PROG).ok
    want = np.frombuffer(emu.read(XA + 4, 96), "<u2").reshape(3, 16)
    assert np.array_equal(emu.vsram[9:12], want)


# ---- compiler and ops ---------------------------------------------------------------------

def test_plan_fits_and_names_limits(mcfg):
    rows, vlen = mcfg.sram.vector_rows, mcfg.vector.vlen
    for M, N, K in [(100, 1024, 1024), (3, 16 * 2000, 512), (7, 16, 16 * 900), (64, 64, 64)]:
        mt, nt, chunks = plan(mcfg, M, N, K)
        assert mt * (K + nt) // vlen <= rows and nt % vlen == 0 and 1 <= mt <= M
        assert mt == M or mt < mcfg.matrix.rows or mt % mcfg.matrix.rows == 0
        assert chunks == ((0, K),)
    assert len(plan(mcfg, 1, 16, vlen * rows)[2]) == 2          # one row no longer fits: K splits
    with pytest.raises(CompileError, match="sram.vector_rows = 4"):
        plan(with_vector_rows(mcfg, 4), 1, 16, 64)              # one K multiple + A + Y: 5 rows
    with pytest.raises(CompileError, match="multiple"):
        linear_program(mcfg, 2, 24, 32)
    with pytest.raises(CompileError, match="no matrix unit"):
        plan(with_rows(mcfg, 0), 2, 16, 32)


SPLIT_SHAPES = [("sim", 2, 16, 16416), ("sim", 64, 4096, 65536), ("sim", 3, 16 * 2000, 20000 // 32 * 32),
                (64, 5, 48, 1120), (64, 9, 480, 1504), (32, 13, 32, 3008), (16, 1, 16, 256)]


def _split_cfg(mcfg, which):
    return mcfg if which == "sim" else with_vector_rows(mcfg, which)


@pytest.mark.parametrize("which,M,N,K", SPLIT_SHAPES)
def test_plan_splits_k(mcfg, which, M, N, K):
    """K-split plans: chunks of whole K multiples in increasing k covering K, and the X
    chunk, the FP32 accumulators and the output rows of every tile fit the vector SRAM."""
    cfg = _split_cfg(mcfg, which)
    vlen, R = cfg.vector.vlen, cfg.matrix.rows
    km = matrix.k_multiple(vlen, cfg.mx.block)
    mt, nt, chunks = plan(cfg, M, N, K)
    assert K // vlen + 1 > cfg.sram.vector_rows and len(chunks) >= 2
    assert chunks[0][0] == 0 and chunks[-1][1] == K
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    assert all(k1 > k0 and k0 % km == 0 and k1 % km == 0 for k0, k1 in chunks)
    sizes = [k1 - k0 for k0, k1 in chunks]
    assert max(sizes) - min(sizes) <= km                        # as coarse as fits: even chunks
    assert 1 <= mt <= M and nt % vlen == 0 and vlen <= nt <= N
    assert mt * (max(sizes) // vlen + 3 * nt // vlen) <= cfg.sram.vector_rows
    # no more weight streams than whole groups of the array's rows would take
    groups = (M // mt) * -(-mt // R) + -(-(M % mt) // R)
    assert groups == -(-M // R)


@pytest.mark.parametrize("res", [False, True])
def test_split_program_order_and_weight_image(mcfg, res):
    """The program: for every M tile and N slice, M_MM_F32, M_MM_ACC_F32 ... and M_MM_ACC(_RES)
    over the chunks in order, each after its M_CFG; the weight image is the chunks' matrix
    weight layouts back to back."""
    cfg = with_vector_rows(mcfg, 64)
    M, N, K = 9, 480, 1504
    prog = linear_program(cfg, M, N, K, "e2m1", res)
    chunks = prog.k_chunks
    ops_seen = [ln.split()[0] for ln in prog.asm.splitlines() if ln.strip().startswith("M_MM")]
    last = "M_MM_ACC_RES" if res else "M_MM_ACC"
    one = ["M_MM_F32"] + ["M_MM_ACC_F32"] * (len(chunks) - 2) + [last]
    tiles, slices = -(-M // prog.mt), -(-N // prog.nt)
    assert ops_seen == one * (tiles * slices)
    assert isa.disassemble(prog.binary)[-1] == "C_HALT"
    # each tile and slice takes the chunks in increasing k, each under its own M_CFG
    seen = [ln.split()[3] for ln in prog.asm.splitlines() if ln.split()[:3] == ["#", "K", "chunk"]]
    assert seen == [f"{k0}..{k1 - 1}" for k0, k1 in chunks] * (tiles * slices)
    assert sum(t.startswith("M_CFG") for t in isa.disassemble(prog.binary)) == len(seen)
    w = np.random.default_rng(2).standard_normal((N, K))
    img = weight_image(prog, w)
    assert len(img) == prog.layout["w"][1]
    offs = prog.chunk_offsets()
    for (k0, k1), o0, o1 in zip(chunks, offs, offs[1:]):
        assert img[o0:o1] == matrix.pack_weights(w[:, k0:k1], "e2m1", cfg.mx.block, cfg.vector.vlen)
        assert (o1 - o0) % 64 == 0
    with pytest.raises(ValueError, match="padded shape"):
        weight_image(prog, w[:, :K - 32])
    # K whole: the image is W's matrix weight layout
    whole = linear_program(cfg, 2, 32, 64, "e4m3")
    w2 = w[:32, :64]
    assert weight_image(whole, w2) == matrix.pack_weights(w2, "e4m3", cfg.mx.block, cfg.vector.vlen)


def _exact_and_torch(x, w, r, y, fmt="e4m3"):
    """y equals matmul_bf16 of the quantized operands bit for bit and is within the
    NUMERICS bound of the PyTorch reference."""
    K = x.shape[1]
    Kp = -(-K // 32) * 32
    xp, wp = np.pad(x, ((0, 0), (0, Kp - K))), np.pad(w, ((0, 0), (0, Kp - K)))
    xb, wb = nm.round_bf16(xp), matrix.quantize_weights(wp, fmt, 32)
    rb = None if r is None else nm.round_bf16(r)
    assert np.array_equal(nm.round_bf16(y.astype(np.float64)), matmul.matmul_bf16(xb, wb, residual_bits=rb))
    t = ops.linear(xp, wp, fmt=fmt, backend="torch", residual=r)
    bound = matmul.matmul_error_bound(xb, wb, residual_bits=rb)
    # both are BF16 roundings of values within the bound of each other's exact sum
    assert np.all(np.abs(y.astype(np.float64) - t) <= bound + np.abs(t) * 2.0 ** -8)


@pytest.mark.parametrize("M,N,K,res", [(5, 40, 70, True), (13, 16, 32, False), (2, 16 * 70, 64, True),
                                       (1, 48, 256, False)])
def test_ops_linear_emu_vs_exact_and_torch(mcfg, M, N, K, res):
    rng = np.random.default_rng(M + N + K)
    x, w = rng.standard_normal((M, K)), rng.standard_normal((N, K))
    r = rng.standard_normal((M, N)) if res else None
    info = []
    y = ops.linear(x, w, config=mcfg, residual=r, run_info=info)
    assert y.shape == (M, N) and y.dtype == np.float32 and len(info) == 1
    _exact_and_torch(x, w, r, y)


@pytest.mark.parametrize("rows,M,N,K,res", [(64, 5, 48, 1100, True), (64, 1, 16, 2000, False),
                                            (64, 6, 40, 1000, False), (32, 7, 32, 700, True)])
def test_ops_linear_k_split_emu(mcfg, rows, M, N, K, res):
    """K split over instructions (a vector SRAM of `rows` rows): bit for bit one M_MM over
    the whole K."""
    cfg = with_vector_rows(mcfg, rows)
    rng = np.random.default_rng(M + N + K)
    # products spanning 2^20 make the order of the adds visible in the bits
    x = rng.standard_normal((M, K)) * 2.0 ** rng.integers(-10, 10, (M, K))
    w = rng.standard_normal((N, K)) * 2.0 ** rng.integers(-10, 10, (N, K))
    r = rng.standard_normal((M, N)) if res else None
    y = ops.linear(x, w, config=cfg, residual=r)
    assert len(linear_program(cfg, M, -(-N // 16) * 16, -(-K // 32) * 32, "e4m3", res).k_chunks) >= 2
    _exact_and_torch(x, w, r, y)


def test_ops_linear_errors(mcfg):
    x, w = np.ones((2, 32)), np.ones((16, 32))
    with pytest.raises(ValueError, match="K differs"):
        ops.linear(x, np.ones((16, 30)), config=mcfg)
    with pytest.raises(ValueError, match="backend"):
        ops.linear(x, w, config=mcfg, backend="gpu")
    with pytest.raises(ValueError, match="block"):
        ops.linear(x, w, config=mcfg, block=16)
    with pytest.raises(ValueError, match="float16|dtype"):
        ops.linear(x.astype(np.float16), w, config=mcfg)
    with pytest.raises(ValueError, match="no matrix unit"):
        ops.linear(x, w, config=with_rows(mcfg, 0))
    with pytest.raises(ValueError, match="vector_rows"):
        ops.linear(np.ones((1, 64)), np.ones((16, 64)), config=with_vector_rows(mcfg, 4))


# ---- the RTL (co-simulation) -------------------------------------------------------------------

def _special_operands(rng, M, N, K, special):
    x = rng.standard_normal((M, K)) * np.exp2(rng.integers(-6, 6, (M, K)))
    w = rng.standard_normal((N, K)) * np.exp2(rng.integers(-6, 6, (N, K)))
    r = rng.standard_normal((M, N))
    if special:
        vals = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-39, 3.3e38, -3.3e38, 2.0 ** -126])
        for a in (x, r):
            pick = rng.random(a.shape) < special
            a[pick] = rng.choice(vals, a.shape)[pick]
        w[rng.random(w.shape) < special / 8] = np.nan                # whole MX NaN blocks
        w[rng.random(w.shape) < special] = 0.0
    return x, w, r


def _verilator_equals_emu(cfg, x, w, r, fmt):
    """ops.linear on the co-simulation, asserted bit for bit equal to the emulator's."""
    info = []
    yv = ops.linear(x, w, fmt=fmt, config=cfg, residual=r, backend="verilator", run_info=info)
    ye = ops.linear(x, w, fmt=fmt, config=cfg, residual=r, backend="emu")
    assert np.array_equal(yv.view(np.uint32), ye.view(np.uint32))
    assert info[0].cycles > 0
    return yv


@pytest.mark.parametrize("M,N,K,res,special,fmt", [
    (1, 16, 32, False, 0.0, "e4m3"), (6, 40, 70, True, 0.0, "e2m1"), (9, 48, 96, True, 0.1, "e5m2"),
    (4, 16, 64, False, 0.2, "int8"), (3, 32, 32, True, 0.05, "e3m2"), (5, 16, 32, False, 0.05, "e2m3"),
    (2, 16 * 70, 64, True, 0.01, "e4m3")])
def test_ops_linear_verilator_equals_emu(model, M, N, K, res, special, fmt):
    cfg = config_mod.load("sim")
    assert cfg.matrix.rows, "the sim profile has a matrix unit"
    rng = np.random.default_rng(M * 7 + N + K)
    x, w, r = _special_operands(rng, M, N, K, special)
    r = r if res else None
    yv = _verilator_equals_emu(cfg, x, w, r, fmt)
    if not special:
        Kp = -(-K // 32) * 32
        xp, wp = np.pad(x, ((0, 0), (0, Kp - K))), np.pad(w, ((0, 0), (0, Kp - K)))
        t = ops.linear(xp, wp, fmt=fmt, backend="torch", residual=r)
        bound = matmul.matmul_error_bound(nm.round_bf16(xp), matrix.quantize_weights(wp, fmt, 32),
                                      residual_bits=None if r is None else nm.round_bf16(r))
        assert np.all(np.abs(yv.astype(np.float64) - t) <= bound + np.abs(t) * 2.0 ** -8)


@pytest.mark.slow             # a co-simulation build of zcu104 of its own
@pytest.mark.parametrize("M,N,K,res,fmt", [(7, 128, 96, True, "e4m3"), (4, 64, 64, False, "e2m1")])
def test_ops_linear_interleaved_pes_verilator_equals_emu(M, N, K, res, fmt):
    """zcu104's matrix unit, whose PEs interleave add_stages rows through a pipelined adder
    (partial groups, a residual): the RTL equals the emulator bit for bit."""
    cfg = config_mod.load("zcu104")
    assert cfg.matrix_slots > 1 and cfg.matrix.rows % cfg.matrix_slots == 0
    rng = np.random.default_rng(M + N + K)
    x, w, r = _special_operands(rng, M, N, K, 0.05)
    _verilator_equals_emu(cfg, x, w, r if res else None, fmt)


def test_ops_linear_k_split_verilator_equals_emu(model):
    """K just past what one instruction takes on the sim profile: M_MM_F32, M_MM_ACC_F32 and
    M_MM_ACC_RES on the RTL equal the emulator bit for bit."""
    cfg = config_mod.load("sim")
    M, N, K = 2, 16, 16 * cfg.sram.vector_rows + 32
    assert len(linear_program(cfg, M, N, K, "e4m3", True).k_chunks) >= 3
    rng = np.random.default_rng(11)
    x, w, r = _special_operands(rng, M, N, K, 0.0)
    x *= np.exp2(rng.integers(-8, 8, x.shape))
    yv = ops.linear(x, w, config=cfg, residual=r, backend="verilator")
    ye = ops.linear(x, w, config=cfg, residual=r, backend="emu")
    assert np.array_equal(yv.view(np.uint32), ye.view(np.uint32))
    _exact_and_torch(x, w, r, ye)


# ---- the cycle model ----------------------------------------------------------------------------

@pytest.mark.parametrize("profile,shape", [("sim", (16, 64, 512)), ("sim", (9, 48, 96)), ("sim", (3, 2000, 64)),
                                           ("zcu104", (5, 192, 128)), ("sim", (1, 16, 32))])
def test_matmul_cycles_steady_state_is_the_full_stream(profile, shape):
    """matmul_cycles is the stepped weight stream (to the array's last step) plus the fixed cost of
    docs/PERF.md."""
    from dnpu.perf import analytical as an

    m = an.machine(profile)
    M, N, K = shape
    G = -(-M // m.matrix_rows)
    full = an.stream_cycles(m, "e4m3", K, False, G * N // m.vlen, matrix=True)
    k = an.CONSTANTS
    overhead = (k["STREAM"][0] + m.window_cycle + k["MAT_START"][0] + m.read_latency + (M - (G - 1) * m.matrix_rows)
                + an.mm_unit_tail(m.matrix_slots) + m.decode_stage)
    assert an.matmul_cycles(m, M, N, K) == full + overhead


@pytest.mark.parametrize("profile,shape", [("sim", (8, 128, 8192)), ("zcu104", (4, 512, 16384))])
def test_matmul_cycles_extrapolation(profile, shape):
    """Beyond MATMUL_EXACT_ROWS the stream is extrapolated from its third and fourth tiles:
    within 0.1 % of stepping it whole (exact where the memory alone sets the rate)."""
    from dnpu.perf import analytical as an

    m = an.machine(profile)
    M, N, K = shape
    count = -(-M // m.matrix_rows) * N // m.vlen
    assert count * K > an.MATMUL_EXACT_ROWS
    full = an.stream_cycles(m, "e4m3", K, False, count, matrix=True)
    fixed = an.matmul_cycles(m, 1, m.vlen, K) - an.stream_cycles(m, "e4m3", K, False, 1, matrix=True)
    fixed += (M - (-(-M // m.matrix_rows) - 1) * m.matrix_rows) - 1          # the last group's rows
    assert abs(an.matmul_cycles(m, M, N, K) - (full + fixed)) <= full * 1e-3


MM_FAULTS = {   # case: (M, N, K, vx, vd, vr, weights at "w" (+ offset) or "hole"[, op]), cause
    "n_not_vlen": ((2, 24, 32, 0, 100, None, 0), ErrCause.MISALIGNED),
    "k_not_multiple": ((2, 16, 48, 0, 100, None, 0), ErrCause.MISALIGNED),
    "w_misaligned": ((2, 16, 32, 0, 100, None, 8), ErrCause.MISALIGNED),
    "x_past_top": ((4, 16, 32, 1020, 100, None, 0), ErrCause.SRAM_RANGE),
    "y_overlaps_x": ((4, 16, 32, 0, 7, None, 0), ErrCause.SRAM_RANGE),
    "r_overlaps_y": ((4, 32, 32, 0, 100, 101, 0), ErrCause.SRAM_RANGE),
    "w_unmapped": ((2, 16, 32, 0, 100, None, "hole"), ErrCause.AXI_READ),
    "w_past_top": ((2, 16, 32, 0, 100, None, "top"), ErrCause.AXI_READ),
    "zero_shape": ((0, 16, 32, 0, 100, None, "hole"), None),
    "in_place_residual": ((5, 32, 64, 0, 100, 100, 0), None),
    "bad_fmt": ((2, 16, 32, 0, 100, None, 0), ErrCause.ILLEGAL_INSTR),     # fmt code 6: no format
    # the FP32-accumulator variants: vr is A's base for M_MM_ACC(_RES); their Y is 2 rows an output row
    "f32_out": ((5, 32, 64, 0, 100, None, 0, "M_MM_F32"), None),
    "f32_overlaps_x": ((4, 16, 64, 10, 5, None, 0, "M_MM_F32"), ErrCause.SRAM_RANGE),
    "f32_past_top": ((4, 32, 32, 0, 1010, None, 0, "M_MM_F32"), ErrCause.SRAM_RANGE),
    "acc_f32_in_place": ((5, 32, 64, 0, 100, None, 0, "M_MM_ACC_F32"), None),
    "acc_from_a": ((5, 32, 64, 0, 200, 100, 0, "M_MM_ACC"), None),
    "acc_a_over_x": ((3, 16, 64, 0, 200, 2, 0, "M_MM_ACC"), None),
    "acc_y_overlaps_a": ((4, 16, 32, 0, 105, 100, 0, "M_MM_ACC"), ErrCause.SRAM_RANGE),
    "acc_a_past_top": ((4, 16, 32, 0, 100, 1020, 0, "M_MM_ACC"), ErrCause.SRAM_RANGE),
    "acc_res_in_place": ((5, 32, 64, 0, 100, 150, 0, "M_MM_ACC_RES"), None),
    "acc_res_y_overlaps_a": ((4, 16, 32, 0, 100, 93, 0, "M_MM_ACC_RES"), ErrCause.SRAM_RANGE),
}


@pytest.mark.parametrize("case", sorted(MM_FAULTS))
def test_m_mm_checks_rtl_equals_emu(model, case):
    """Each M_MM check on the RTL and the emulator: the same cause at the same PC, or the same
    rows when nothing faults."""
    import dnpu.runtime as rt

    (M, N, K, vx, vd, vr, wa, *op), cause = MM_FAULTS[case]
    cfg = config_mod.load("sim")
    rng = np.random.default_rng(9)
    w = matrix.pack_weights(rng.standard_normal((32, 64)), "e4m3", 32, 16)
    x = nm.round_bf16(rng.standard_normal(16 * 64)).astype("<u2").tobytes()
    src = ["S_LI_FP f0, 0x3F80", "S_ADDI x3, x0, 300", "V_FILL_VF x0, f0, x3",     # rows 0..299 known
           "S_LD_ARG x1, 0", "S_LD_ARG x2, 1", "S_ADDI x3, x0, 64", "H_LOAD_V x0, x1, x3",
           "S_ADDI x10, x0, 100", "H_LOAD_V x10, x1, x3",       # rows 100.. hold a residual
           *isa.load_imm("x4", M), *isa.load_imm("x5", N), *isa.load_imm("x6", K), "M_CFG x4, x5, x6",
           *isa.load_imm("x7", vx), *isa.load_imm("x8", vd), *isa.load_imm("x9", vr or 0)]
    if wa == "hole":
        src += isa.load_imm("x2", 0x100)
    elif wa == "top":
        src += isa.load_imm("x2", (1 << 32) - 64)
    else:
        src += [f"S_ADDI x2, x2, {wa}"]
    op = op[0] if op else ("M_MM_RES" if vr is not None else "M_MM")
    mm = f"{op} x8, x7, x2, x9, e4m3" if vr is not None else f"{op} x8, x7, x2, e4m3"
    words = isa.assemble_words("\n".join(src + [mm, "S_ADDI x10, x0, 1", "C_HALT"]))
    if case == "bad_fmt":                      # the assembler refuses it: patch the word
        words[-3] |= 6 << isa.INSTRS["M_MM"].operands[-1].field.lsb
    prog = b"".join(w.to_bytes(4, "little") for w in words)
    seen = {}
    for backend in ("emu", "verilator"):
        with rt.open(backend, config=cfg) as dev:
            bx, bw, bp = dev.alloc(len(x)), dev.alloc(len(w)), dev.alloc(len(prog))
            bx.write(x)
            bw.write(w)
            bp.write(prog)
            try:
                dev.run(bp.addr, args=[bx.addr, bw.addr], windows="all")    # AXI_READ, not WINDOW
                out = dev.alloc(2 * 16 * 300)
                dump = isa.assemble("S_LD_ARG x1, 0\nS_ADDI x2, x0, 300\nH_STORE_V x0, x1, x2\nC_HALT")
                bp.write(dump)
                dev.run(bp.addr, args=[out.addr])
                seen[backend] = ("halted", out.read(2 * 16 * 300))
            except rt.DeviceError as e:
                seen[backend] = (e.err_cause, e.err_pc - bp.addr)
    assert seen["emu"][0] == (cause or "halted"), seen["emu"]
    assert seen["verilator"] == seen["emu"]
