import pytest

from dnpu import compiler
from dnpu.spec import config, isa, mx
from dnpu.compiler import CompileError

SIM = config.load("sim")


def mnemonics(prog):
    return [isa.decode(int.from_bytes(prog.binary[i:i + 4], "little")).name
            for i in range(0, len(prog.binary), 4)]


@pytest.mark.parametrize("mode", compiler.MODES)
@pytest.mark.parametrize("flow", compiler.FLOWS)
def test_program_size_does_not_grow_with_the_shape(mode, flow):
    small = compiler.sampling_program(SIM, 1, 4, 512, mode, flow)
    big = compiler.sampling_program(SIM, 4, 64, 8192, mode, flow)
    assert len(small.binary) == len(big.binary)  # hardware loops, nothing unrolled
    names = mnemonics(big)
    # phased: the batch-row loop around the position loop; fused: the tile loop around the
    # per-row commit loop (the confidences are masked by one V_MASK_FP a tile)
    if flow == "fused":
        assert names.count("C_LOOPI") == 2 and names.count("C_LOOP") == 0
        assert names.count("V_MASK_FP") == 1 and "S_SEL_FP" not in names
    else:
        assert names.count("C_LOOPI") == 1 and names.count("C_LOOP") == 1
    assert names[-1] == "C_HALT"


def test_phased_flow_is_the_papers_instruction_sequence():
    names = mnemonics(compiler.sampling_program(SIM, 2, 8, 1024, "topk", "phased"))
    order = ["H_PREFETCH_V", "V_RED_MAX_IDX", "V_SUB_VF", "V_EXP_V", "V_RED_SUM", "S_RECI_FP",
             "S_MAP_V_FP", "V_TOPK_MASK_V", "V_SELECT_INT"]
    pos = [names.index(n) for n in order]
    assert pos == sorted(pos)
    assert "H_SAMPLE_FUSED" not in names and "V_TOPK_MASK" not in names


def test_fused_flow_streams_once():
    names = mnemonics(compiler.sampling_program(SIM, 2, 8, 1024, "threshold", "fused"))
    assert names.count("H_SAMPLE_FUSED_N") == 1                 # once per tile of rows (in the tile loop)
    assert "H_SAMPLE_FUSED" not in names and "S_RECI_FP" not in names  # the reciprocal is in it
    assert "H_PREFETCH_V" not in names and "V_EXP_V" not in names
    assert "V_THRESH_MASK" in names and "V_TOPK_MASK" in names  # FP32 ranking
    assert "S_MAP_V_FP" not in names and "V_TOPK_MASK_V" not in names


@pytest.mark.parametrize("prof,B,L,mode,G", [
    ("sim", 2, 8, "topk", 2), ("sim", 4, 64, "topk", 4), ("sim", 64, 32, "topk", 8),
    ("sim", 12, 45, "threshold", 6), ("sim", 7, 100, "topk", 1), ("pynq-z2", 3, 200, "threshold", 1),
])
def test_fused_flow_tiles_the_batch(prof, B, L, mode, G):
    cfg = config.load(prof)
    assert compiler.tile_rows(cfg, B, L, mode) == G
    n = G * L
    assert 4 * n + (G if mode == "topk" else 0) <= cfg.sram.int_words and n + 1 <= cfg.sram.fp_words
    prog = compiler.sampling_program(cfg, B, L, 512, mode, "fused")
    assert f"C_LOOPI {B // G}, @tile_end" in prog.asm and f"C_LOOPI {G}, @row_end" in prog.asm


def test_fused_flow_takes_more_rows_than_one_tile_holds():
    # 1900 values of k do not fit next to a row's positions; the fused flow loads k a tile at a time
    compiler.sampling_program(SIM, 1900, 64, 512, "topk", "fused")
    with pytest.raises(CompileError, match="int SRAM words"):
        compiler.sampling_program(SIM, 1900, 64, 512, "topk", "phased")


def test_layout_is_aligned_and_disjoint():
    prog = compiler.sampling_program(SIM, 3, 17, 96, "topk", "fused", fmt="e2m1")
    spans = sorted((b.offset, b.offset + b.nbytes) for b in prog.layout.values())
    for (s0, e0), (s1, _) in zip(spans, spans[1:]):
        assert e0 <= s1
    assert all(b.offset % compiler.ALIGN == 0 for b in prog.layout.values())
    assert prog.row_stride == mx.packed_nbytes(96, "e2m1", SIM.mx.block)
    assert prog.layout["logits"].nbytes == 3 * 17 * prog.row_stride
    base = 0x40000
    assert prog.args(base)[0] == base + prog.layout["logits"].offset
    assert len(prog.args(base)) == len(compiler.ARG_ORDER)


def test_sim_profile_takes_the_promised_shapes():
    for mode in compiler.MODES:
        for flow in compiler.FLOWS:
            compiler.sampling_program(SIM, 4, 64, 8192, mode, flow)
            compiler.sampling_program(SIM, 1, 1, 32, mode, flow)


def test_llada_vocabulary_on_the_board_profile_uses_a_32_bit_constant():
    cfg = config.load("pynq-z2")
    prog = compiler.sampling_program(cfg, 1, 32, 126464, "topk", "phased")
    assert prog.row_stride > 1 << 16
    assert "S_LUI" in mnemonics(prog)


@pytest.mark.parametrize("args,fragment", [
    ((2, 8, 100), "V = 100: must be a multiple of the MX block (32) and of VLEN (16)"),
    ((2, 8, 16), "V = 16: must be a multiple of the MX block (32)"),
    ((2, 600, 512), "int SRAM words > sram.int_words = 2048"),
    ((1, 8, 32768, "topk", "phased"), "sram.vector_rows = 1024"),
    ((1, 64, 16384, "topk", "phased"), "1024 + 4 rows > sram.vector_rows"),
    ((1, 8, 512, "greedy"), "mode 'greedy'"),
    ((1, 8, 512, "topk", "twopass"), "flow 'twopass'"),
    ((0, 8, 512), "B = 0: must be a positive integer"),
])
def test_unsupported_shapes_name_the_limit(args, fragment):
    with pytest.raises(CompileError) as e:
        compiler.sampling_program(SIM, *args)
    assert fragment in str(e.value)


def test_fused_flow_is_not_limited_by_vector_sram():
    compiler.sampling_program(SIM, 1, 8, 32768, "topk", "fused")


def test_unknown_format_for_the_profile():
    with pytest.raises(CompileError, match="MX format 'fp8'"):
        compiler.sampling_program(SIM, 1, 8, 512, fmt="fp8")
