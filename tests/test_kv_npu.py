"""The KV cache on the NPU (dnpu.compiler.forward.KvStep): a refresh stores every layer's
keys and values in device memory, a dual step reads them back; both bit for bit the NumPy
reference (dnpu.model.npu.reference_forward / reference_cache), on the emulator."""

import numpy as np
import pytest

from dnpu import runtime
from dnpu.compiler import CompileError
from dnpu.compiler.forward import KvStep, forward_program, head_layout, kv_layout
from dnpu.model import load
from dnpu.model.npu import NpuForward, forward_shape, reference_cache, reference_forward
from dnpu.spec import config, mx

T, S, L = 16, 8, 4


@pytest.fixture(scope="module")
def tiny():
    model, tok = load(None, dtype="bf16")
    return model, NpuForward.compile(model, T)


@pytest.mark.parametrize("fmt", ["baos-e2m1", "bf16"])
def test_refresh_then_dual_step_equal_the_reference(tiny, fmt):
    model, fw = tiny
    rng = np.random.default_rng(1)
    ids = rng.integers(2, 64, T)
    ids2 = ids.copy()
    ids2[S:S + L] = rng.integers(2, 64, L)               # the block moved on since the refresh
    with runtime.open("emu") as dev:
        r = fw.step(dev, ids, S, L, 1, k=1, logits=True, kv=KvStep("refresh", fmt))
        d = fw.step(dev, ids2, S, L, 1, k=2, logits=True, kv=KvStep("dual", fmt, S, L))
        stored = fw.cache(dev, fmt).read(kv_layout(fw.config, fw.program.shape, fmt)[1])
    ref, used = reference_forward(model, ids, kv=KvStep("refresh", fmt))
    assert np.array_equal(r[3], ref[S:S + L])
    cache = reference_cache(used, model.config, fmt)
    ref2, _ = reference_forward(model, ids2, kv=KvStep("dual", fmt, S, L), cache=cache)
    assert np.array_equal(d[3], ref2)
    full, _ = reference_forward(model, ids2)
    assert not np.array_equal(ref2, full[S:S + L])        # the cache is what the dual step read
    # layer 0, head 0's keys as stored: the padded head's rows, BF16 or H_STORE_MX's stream
    cfg = fw.config
    hd = model.config.head_dim
    hdp, hhp = head_layout(cfg, hd)
    k = used[0][0][:, :hd]
    if fmt.startswith("baos-"):                           # the smoothed keys are stored, s and u after all
        from dnpu.compiler.kvcache import kv_shift_offset
        from dnpu.model import kvquant
        from dnpu.spec import numerics as nm
        k, r, u = kvquant.baos_encode(k)
        shape = fw.program.shape
        at = 2 * shape.n_layers * shape.n_heads * kv_layout(cfg, shape, fmt)[0]
        s_ = np.full(hhp, 0x3F80, np.uint16)          # a zero pair keeps the scale 1
        s_[:hd // 2] = nm.reci_bf16(r)
        u_ = np.zeros(hdp, np.uint16)
        u_[:hd // 2], u_[hhp:hhp + hd // 2] = u[:hd // 2], u[hd // 2:]
        assert bytes(stored[at:at + 2 * hhp]) == s_.astype("<u2").tobytes()
        at += kv_shift_offset(cfg, shape)
        assert bytes(stored[at:at + 2 * hdp]) == u_.astype("<u2").tobytes()
    k0 = np.zeros((T, hdp), np.uint16)
    k0[:, :hd // 2] = k[:, :hd // 2]
    k0[:, hhp:hhp + hd // 2] = k[:, hd // 2:hd]
    if fmt == "bf16":
        want = k0.astype("<u2").tobytes()
    else:
        import ml_dtypes
        store = fmt.removeprefix("baos-")
        want = mx.pack(mx.quantize(k0.reshape(-1).view(ml_dtypes.bfloat16), store, cfg.mx.block))
        want = want[:mx.stream_nbytes(T * hdp, store, cfg.mx.block)]
    assert bytes(stored[:len(want)]) == want


def test_prefix_step_computes_the_block_and_all_after_it(tiny):
    """A prefix cache's later step is the dual program over [S, T): the block's tokens from
    the first L of its logits, bit for bit the reference over the same range."""
    model, fw = tiny
    rng = np.random.default_rng(2)
    ids = rng.integers(2, 64, T)
    ids2 = ids.copy()
    ids2[S:] = rng.integers(2, 64, T - S)
    kv = KvStep("dual", "e4m3", S, T - S)
    with runtime.open("emu") as dev:
        fw.step(dev, ids, S, L, 1, k=1, kv=KvStep("refresh", "e4m3"))
        d = fw.step(dev, ids2, S, L, 1, k=2, logits=True, kv=kv)
        with pytest.raises(ValueError, match="begin with the block"):
            fw.step(dev, ids2, S + 1, L, 1, k=1, kv=kv)
    _, used = reference_forward(model, ids, kv=KvStep("refresh", "e4m3"))
    ref, _ = reference_forward(model, ids2, kv=kv, cache=reference_cache(used, model.config, "e4m3"))
    assert ref.shape[0] == T - S and np.array_equal(d[3], ref[:L])


def test_kv_steps_share_the_weights_image_and_check_their_shape():
    cfg = config.load("sim")
    model, _ = load(None, dtype="bf16")
    shape = forward_shape(model.config, T)
    plain = forward_program(cfg, shape)
    dual = forward_program(cfg, shape, kv=KvStep("dual", "e4m3", S, L))
    assert dual.weight_layout == plain.weight_layout and dual.rows == (S, L) and plain.rows == (0, T)
    assert len(dual.kernel.binary) != len(plain.kernel.binary)
    for bad, what in ((KvStep("prefix"), "mode"), (KvStep("refresh", "fp4"), "KV format"),
                      (KvStep("dual", "e4m3", 14, 4), "not inside")):
        with pytest.raises(CompileError, match=what):
            forward_program(cfg, shape, kv=bad)


def test_generate_on_the_npu_with_a_dual_cache():
    """forward='npu' with kv_cache='dual' generates (refresh, then dual steps) and refuses
    what the NPU does not run."""
    from dnpu import generate

    model, tok = load(None, dtype="bf16")
    ids = [tok.encode("123+456="), tok.encode("905+017=")]
    kw = dict(gen_length=8, block_length=4, steps=8, sampler="emu", forward="npu", kv_cache="dual")
    log: list = []
    out = generate(model, ids, kv_format="baos-e4m3", step_log=log, **kw)
    assert out.shape == (2, 16)
    assert tok.decode(out[0, 8:12].tolist()) == "0579"
    assert [r.block for r in log] == [0] * 4 + [1] * 4
    with pytest.raises(ValueError, match="temperature 0"):
        generate(model, ids, temperature=0.5, **kw)
    pre = generate(model, ids, kv_format="bf16", **(kw | {"kv_cache": "prefix"}))
    assert tok.decode(pre[0, 8:12].tolist()) == "0579"


def test_kv_traffic_is_the_cache_layout():
    from dnpu.compiler.forward import kv_traffic

    cfg = config.load("sim")
    model, _ = load(None, dtype="bf16")
    shape = forward_shape(model.config, T)
    c = model.config
    hdp = head_layout(cfg, c.head_dim)[0]
    per = 2 * c.n_layers * c.n_heads
    assert kv_traffic(cfg, shape, KvStep("refresh", "bf16")) == (per * 2 * T * hdp, 0)
    assert kv_traffic(cfg, shape, KvStep("dual", "e2m1", S, L)) == (0, per * mx.stream_nbytes(T * hdp, "e2m1"))
    assert kv_traffic(cfg, shape, None) == (0, 0)
    stride, total = kv_layout(cfg, shape, "e2m1")
    assert stride % 64 == 0 and stride >= mx.stream_nbytes(T * hdp, "e2m1") and total == per * stride
