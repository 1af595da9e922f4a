"""dnpu.model: the LLaDA network, its Hugging Face checkpoint loader, tokenizers, tasks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from dnpu.model import (  # noqa: E402
    CheckpointError,
    LLaDA,
    LLaDAConfig,
    Tokenizer,
    char_tokenizer_json,
    get_task,
    load,
    load_tokenizer,
)

CFG = {"d_model": 32, "n_heads": 4, "n_kv_heads": 4, "n_layers": 2, "mlp_hidden_size": 48, "vocab_size": 64,
       "embedding_size": 64, "mask_token_id": 1, "eos_token_id": 0, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
       "max_sequence_length": 64, "weight_tying": False, "include_bias": False, "activation_type": "silu",
       "architectures": ["LLaDAModelLM"], "model_type": "llada"}


def llada_tensors(cfg: dict, seed: int = 0) -> dict:
    """Random weights under LLaDA's checkpoint key names, built from the names (not from
    dnpu's module), so the test pins the layout the loader must read."""
    g = torch.Generator().manual_seed(seed)
    d, f, E = cfg["d_model"], cfg["mlp_hidden_size"], cfg["embedding_size"]
    hd = d // cfg["n_heads"]
    kvd = cfg["n_kv_heads"] * hd
    t = {"model.transformer.wte.weight": (E, d), "model.transformer.ln_f.weight": (d,),
         "model.transformer.ff_out.weight": (E, d)}
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        t.update({p + "q_proj.weight": (d, d), p + "k_proj.weight": (kvd, d), p + "v_proj.weight": (kvd, d),
                  p + "attn_out.weight": (d, d), p + "ff_proj.weight": (f, d), p + "up_proj.weight": (f, d),
                  p + "ff_out.weight": (d, f), p + "attn_norm.weight": (d,), p + "ff_norm.weight": (d,)})
    out = {}
    for k, shape in t.items():
        if len(shape) == 1:
            out[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[k] = torch.randn(shape, generator=g) * (0.5 if k.endswith("wte.weight") else 0.2)
    return out


def write_ckpt(path, cfg=CFG, tensors=None, tokenizer=True):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(cfg))
    safetensors_torch.save_file(tensors if tensors is not None else llada_tensors(cfg), str(path / "model.safetensors"))
    if tokenizer:
        (path / "tokenizer.json").write_text(json.dumps(char_tokenizer_json(64)))
    return path


@pytest.fixture
def ckpt(tmp_path):
    return write_ckpt(tmp_path / "rand")


def reference_forward(w: dict, cfg: dict, ids: torch.Tensor) -> torch.Tensor:
    """LLaDA's forward written out directly from the architecture facts, float64."""
    w = {k: v.double() for k, v in w.items()}
    d, H, Hkv = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    hd = d // H
    B, T = ids.shape

    def rms(x, wt):
        return wt * x / torch.sqrt((x * x).mean(-1, keepdim=True) + cfg["rms_norm_eps"])

    inv = cfg["rope_theta"] ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]  # [T, 1, hd/2] against [B, T, H, hd/2]

    def rope(x):  # rotate-half: pairs (i, i + hd/2)
        a, b = x[..., :hd // 2], x[..., hd // 2:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

    x = w["model.transformer.wte.weight"][ids]
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        h = rms(x, w[p + "attn_norm.weight"])
        q = (h @ w[p + "q_proj.weight"].T).view(B, T, H, hd)
        k = (h @ w[p + "k_proj.weight"].T).view(B, T, Hkv, hd).repeat_interleave(H // Hkv, dim=2)
        v = (h @ w[p + "v_proj.weight"].T).view(B, T, Hkv, hd).repeat_interleave(H // Hkv, dim=2)
        s = torch.einsum("bqhd,bkhd->bhqk", rope(q), rope(k)) / math.sqrt(hd)  # no causal mask
        a = torch.einsum("bhqk,bkhd->bqhd", s.softmax(-1), v).reshape(B, T, d)
        x = x + a @ w[p + "attn_out.weight"].T
        h = rms(x, w[p + "ff_norm.weight"])
        gate = h @ w[p + "ff_proj.weight"].T
        x = x + (gate * torch.sigmoid(gate) * (h @ w[p + "up_proj.weight"].T)) @ w[p + "ff_out.weight"].T
    return rms(x, w["model.transformer.ln_f.weight"]) @ w["model.transformer.ff_out.weight"].T


# --------------------------------------------------------------------------- loading


def test_load_random_checkpoint_matches_reference(ckpt):
    model, tok = load(ckpt, device="cpu")
    assert model.config.mask_token_id == 1 and tok.mask_token_id == 1 and tok.eos_token_id == 0
    ids = torch.randint(0, 64, (2, 11), generator=torch.Generator().manual_seed(3))
    out = model(ids)
    assert out.shape == (2, 11, 64) and out.dtype == torch.float32
    ref = reference_forward(llada_tensors(CFG), CFG, ids)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


def test_grouped_kv_heads_match_reference(tmp_path):
    cfg = CFG | {"n_kv_heads": 2}
    model, _ = load(write_ckpt(tmp_path / "gqa", cfg), device="cpu")
    ids = torch.randint(0, 64, (1, 9), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(model(ids).double(), reference_forward(llada_tensors(cfg), cfg, ids),
                               rtol=1e-4, atol=1e-4)


def test_attention_is_bidirectional(ckpt):
    model, _ = load(ckpt, device="cpu")
    ids = torch.randint(2, 64, (1, 8), generator=torch.Generator().manual_seed(5))
    ids2 = ids.clone()
    ids2[0, -1] = 1 if int(ids[0, -1]) != 1 else 2
    assert not torch.allclose(model(ids)[0, 0], model(ids2)[0, 0]), "a later token must change earlier logits"


def test_bf16_load_close_to_fp32(ckpt):
    m32, _ = load(ckpt, device="cpu")
    m16, _ = load(ckpt, device="cpu", dtype="bf16")
    assert m16.dtype == torch.bfloat16
    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(m16(ids).float(), m32(ids), rtol=0.1, atol=0.15)


def test_missing_tensor_is_named(tmp_path):
    t = llada_tensors(CFG)
    del t["model.transformer.blocks.1.up_proj.weight"]
    with pytest.raises(CheckpointError, match=r"missing tensors: model\.transformer\.blocks\.1\.up_proj\.weight"):
        load(write_ckpt(tmp_path / "m", tensors=t), device="cpu")


def test_extra_and_misshaped_tensors_are_named(tmp_path):
    t = llada_tensors(CFG)
    t["model.transformer.blocks.0.q_proj.bias"] = torch.zeros(32)
    t["model.transformer.blocks.0.k_proj.weight"] = torch.zeros(16, 32)
    with pytest.raises(CheckpointError) as e:
        load(write_ckpt(tmp_path / "x", tensors=t), device="cpu")
    msg = str(e.value)
    assert "unexpected tensors: model.transformer.blocks.0.q_proj.bias" in msg
    assert "model.transformer.blocks.0.k_proj.weight: (16, 32), expected (32, 32)" in msg


def test_sharded_checkpoint_and_bad_config(tmp_path):
    t = llada_tensors(CFG)
    d = tmp_path / "sharded"
    d.mkdir()
    keys = sorted(t)
    safetensors_torch.save_file({k: t[k] for k in keys[:5]}, str(d / "model-00001-of-00002.safetensors"))
    safetensors_torch.save_file({k: t[k] for k in keys[5:]}, str(d / "model-00002-of-00002.safetensors"))
    (d / "config.json").write_text(json.dumps(CFG))
    (d / "tokenizer.json").write_text(json.dumps(char_tokenizer_json()))
    model, _ = load(d, device="cpu")
    assert model(torch.zeros(1, 3, dtype=torch.int64)).shape == (1, 3, 64)

    bad = tmp_path / "badcfg"
    write_ckpt(bad, cfg={k: v for k, v in CFG.items() if k != "n_layers"}, tensors=t)
    with pytest.raises(ValueError, match="n_layers"):
        load(bad, device="cpu")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "nowhere")


def test_forward_rejects_bad_ids(ckpt):
    model, _ = load(ckpt, device="cpu")
    with pytest.raises(ValueError, match="int64"):
        model(torch.zeros(1, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        model(torch.full((1, 4), 64, dtype=torch.int64))


# --------------------------------------------------------------------------- KV caches


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_prefix_and_dual_cache_with_fresh_kv_equal_full_forward(tmp_path, kv_heads):
    model, _ = load(write_ckpt(tmp_path / "c", CFG | {"n_kv_heads": kv_heads}), device="cpu")
    ids = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(7))
    full, kv = model(ids, return_kv=True)
    assert len(kv) == 2 and kv[0].k.shape == (2, kv_heads, 16, 8)
    s, e = 6, 10
    prefix = model(ids[:, s:], kv=kv, start=s)  # block and everything after it
    dual = model(ids[:, s:e], kv=kv, start=s)  # block only
    torch.testing.assert_close(prefix, full[:, s:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dual, full[:, s:e], rtol=1e-5, atol=1e-5)


def test_cache_keys_are_stored_before_rope(ckpt):
    model, _ = load(ckpt, device="cpu")
    ids = torch.randint(0, 64, (1, 6), generator=torch.Generator().manual_seed(8))
    _, kv = model(ids, return_kv=True)
    blk = model.model.transformer.blocks[0]
    with torch.no_grad():
        k_plain = blk.k_proj(blk.attn_norm(model.model.transformer.wte(ids)))
    torch.testing.assert_close(kv[0].k.transpose(1, 2).reshape(1, 6, 32), k_plain)


def test_dual_cache_splices_fresh_block(tmp_path):
    """A dual-cache forward must use the block's fresh K/V, not the cached ones. In a
    one-layer model a position's K/V depend on its own token only, so a cache filled
    while the block was all masks must give exactly the logits of a fresh cache."""
    cfg = CFG | {"n_layers": 1}
    model, _ = load(write_ckpt(tmp_path / "one", cfg), device="cpu")
    ids = torch.randint(2, 64, (1, 12), generator=torch.Generator().manual_seed(9))
    stale = ids.clone()
    stale[0, 4:8] = 1
    _, kv_stale = model(stale, return_kv=True)
    full = model(ids)
    torch.testing.assert_close(model(ids[:, 4:8], kv=kv_stale, start=4), full[:, 4:8], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(ids[:, 4:], kv=kv_stale, start=4), full[:, 4:], rtol=1e-5, atol=1e-5)
    # In a deeper model the frozen prefix/suffix K/V saw the stale block: an approximation.
    model2, _ = load(write_ckpt(tmp_path / "two", CFG), device="cpu")
    _, kv2 = model2(stale, return_kv=True)
    assert not torch.allclose(model2(ids[:, 4:8], kv=kv2, start=4), model2(ids)[:, 4:8], atol=1e-3)


def test_cache_position_errors(ckpt):
    model, _ = load(ckpt, device="cpu")
    ids = torch.zeros(1, 8, dtype=torch.int64)
    _, kv = model(ids, return_kv=True)
    with pytest.raises(ValueError, match="outside the cached sequence"):
        model(ids[:, :4], kv=kv, start=6)
    with pytest.raises(ValueError, match="needs a kv cache"):
        model(ids, start=2)


# --------------------------------------------------------------------------- tokenizer


TEXTS = ["123+456=", "0579", "", "a b?", "(1,2): x*y-z/3."]


def test_char_tokenizer_json_loads_with_tokenizers_package_and_fallback(tmp_path):
    p = tmp_path / "tokenizer.json"
    p.write_text(json.dumps(char_tokenizer_json(64)))
    py = load_tokenizer(p, prefer_hf=False)
    assert py.backend == "python" and py.vocab_size == 64 and py.vocab_size % 64 == 0
    tokenizers = pytest.importorskip("tokenizers")
    hf = load_tokenizer(p)
    assert hf.backend == "tokenizers"
    assert tokenizers.Tokenizer.from_file(str(p)).get_vocab_size() == 64
    for text in TEXTS:
        assert hf.encode(text) == py.encode(text)
        assert hf.decode(hf.encode(text)) == text == py.decode(py.encode(text))
    ids = hf.encode("12") + [hf.eos_token_id]
    assert hf.decode(ids) == py.decode(ids) == "12<|endoftext|>"
    assert hf.decode(ids, skip_special_tokens=True) == py.decode(ids, skip_special_tokens=True) == "12"


def test_tokenizer_rejects_unknown_text():
    tok = Tokenizer(char_tokenizer_json())
    with pytest.raises(ValueError, match=r"\['#'\]"):
        tok.encode("1#2")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([999])
    with pytest.raises(ValueError, match="needs the `tokenizers` package"):
        Tokenizer({"model": {"type": "BPE", "vocab": {"ab": 0}}})


# --------------------------------------------------------------------------- tasks


def test_addition_task_layout_and_split():
    task = get_task("add3")
    tok = Tokenizer(char_tokenizer_json())
    assert task.prompt(7, 45) == "007+045=" and task.answer(999, 999) == "1998" and task.gen_length == 8
    prompts, ans = task.encode_batch(tok, [7, 999], [45, 999])
    assert prompts[0].tolist() == tok.encode("007+045=")
    assert tok.decode(ans[1]) == "1998" + "<|endoftext|>" * 4
    held = task.heldout(200, seed=1)
    assert len(set(held)) == 200 and all(task.is_heldout(a, b) for a, b in held)
    a, b = task.sample_train(np.random.default_rng(0), 5000)
    assert not task.is_heldout(a, b).any()
    assert task.score(tok, 7, 45, tok.encode("0052") + [0, 0, 5]) and not task.score(tok, 7, 45, tok.encode("052"))
    with pytest.raises(ValueError, match="unknown task"):
        get_task("mul3")


def test_config_validation():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        LLaDAConfig(d_model=30, n_heads=4, n_layers=1, mlp_hidden_size=8, vocab_size=64, mask_token_id=1,
                    eos_token_id=0)
    cfg = LLaDAConfig.from_dict(CFG | {"unknown_key": 1})
    assert cfg.extra["unknown_key"] == 1 and LLaDAConfig.from_dict(json.loads(cfg.to_json())).d_model == 32
    assert LLaDA(cfg).expected_shapes()["model.transformer.ff_out.weight"] == (64, 32)
