"""The matrix unit's weight layout and shape rules (docs/MX.md "Matrix weight layout",
docs/EXECUTION.md "The matrix unit").

M_MM multiplies X [M, K] (BF16 rows in vector SRAM) by W [N, K] streamed from memory.
W is cut into column tiles of `cols` = VLEN weight rows; a tile is one packed MX stream
of `cols * K` elements in *square order*: for each MX block column b (K / block of
them), the block `W[n, b*block:(b+1)*block]` of every row n of the tile in increasing n.
Each MX block is therefore a run of `block` consecutive k of one weight row (quantized
along K, as `torch.nn.Linear` weights are), and the decoder's rows arrive square by
square: `cols` rows x `block` k, exactly what the array consumes in `block` cycles.
Tiles follow each other at a stride of `mx.packed_nbytes(cols * K)` (a multiple of 64).
"""

from __future__ import annotations

import numpy as np

from dnpu.spec import mx

__all__ = ["k_multiple", "tile_nbytes", "square_order", "from_square_order", "weight_rows", "pack_weights",
           "quantize_weights", "acc_to_rows", "acc_from_rows", "ShapeError", "check_shape"]


class ShapeError(ValueError):
    """A linear-layer shape the profile's matrix unit cannot run as given."""


def k_multiple(vlen: int, block: int) -> int:
    """K must be a multiple of this: whole vector-SRAM rows of X and whole MX blocks of W."""
    return max(vlen, block)


def tile_nbytes(k: int, fmt: str, block: int, cols: int) -> int:
    """Bytes from one weight tile to the next (the tile's packed stream, 64-byte padded)."""
    return mx.packed_nbytes(cols * k, fmt, block)


def square_order(w: np.ndarray, cols: int, block: int) -> np.ndarray:
    """[N, K] -> [N / cols, cols * K]: each tile's elements in square order."""
    n, k = w.shape
    if n % cols or k % block:
        raise ShapeError(f"weights [{n}, {k}]: N must be a multiple of {cols} and K of {block}")
    t = w.reshape(n // cols, cols, k // block, block).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(t).reshape(n // cols, cols * k)


def from_square_order(flat: np.ndarray, n: int, k: int, cols: int, block: int) -> np.ndarray:
    """Inverse of square_order: the tiles' elements (flat, tile after tile) as W [N, K]."""
    t = np.asarray(flat).reshape(n // cols, k // block, cols, block).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(t).reshape(n, k)


def quantize_weights(w, fmt: str, block: int) -> np.ndarray:
    """The BF16 bits the NPU multiplies by: W [N, K] MX-quantized along K, then
    `dnpu.mx.dequantize_bf16` (what the MX decoder gives)."""
    q = mx.quantize(w, fmt, block)
    return mx.dequantize_bf16(q)


def weight_rows(w_bits: np.ndarray, vlen: int, block: int) -> np.ndarray:
    """The decoder's output for one M_MM group: [N / vlen * K, vlen] BF16 bits, tile after
    tile (the order the array takes them in)."""
    return square_order(np.asarray(w_bits, np.uint16), vlen, block).reshape(-1, vlen)


def pack_weights(w, fmt: str, block: int, cols: int) -> bytes:
    """W [N, K] (float32 / float64 / bfloat16, as `dnpu.mx.quantize` takes) in the matrix
    weight layout: the tiles' packed streams back to back. Quantizing in square order
    gives the blocks, scales and codes of quantizing W along K."""
    arr = w.detach().cpu().numpy() if hasattr(w, "detach") else np.asarray(w)
    if arr.ndim != 2:
        raise ShapeError(f"weights must be [N, K], got shape {arr.shape}")
    tiles = square_order(arr, cols, block)
    out = bytearray()
    for t in tiles:
        out += mx.pack(mx.quantize(t, fmt, block))
    return bytes(out)


def acc_to_rows(acc_bits, vlen: int) -> np.ndarray:
    """FP32 accumulators [M, N] (uint32 bits) as the vector-SRAM rows M_MM_F32 writes:
    [2 * M * N / vlen, vlen] uint16; for row i and tile j of vlen outputs, the row of bits
    31:16 at 2 * (i * N / vlen + j) and the row of bits 15:0 right after it."""
    a = np.asarray(acc_bits, np.uint32)
    m, n = a.shape
    t = a.reshape(m * n // vlen, 1, vlen)
    hi = (t >> np.uint32(16)).astype(np.uint16)
    lo = (t & np.uint32(0xFFFF)).astype(np.uint16)
    return np.concatenate([hi, lo], axis=1).reshape(-1, vlen)


def acc_from_rows(rows, m: int, n: int) -> np.ndarray:
    """Inverse of acc_to_rows: the [M, N] uint32 FP32 bits held by 2 * M * N / vlen rows."""
    r = np.asarray(rows, np.uint16)
    vlen = r.shape[1]
    t = r.reshape(m * n // vlen, 2, vlen).astype(np.uint32)
    return ((t[:, 0] << np.uint32(16)) | t[:, 1]).reshape(m, n)


def check_shape(cfg, m: int, n: int, k: int) -> None:
    """ShapeError naming the rule when M_MM cannot take [M, K] x [N, K]^T on profile cfg."""
    if not cfg.matrix.rows:
        raise ShapeError(f"profile {cfg.name} has no matrix unit ([matrix] rows = 0)")
    vlen, block = cfg.vector.vlen, cfg.mx.block
    if m < 1 or n < 1 or k < 1:
        raise ShapeError(f"shape M={m}, N={n}, K={k}: every dimension must be at least 1")
    if n % vlen:
        raise ShapeError(f"N = {n} must be a multiple of vector.vlen = {vlen} on profile {cfg.name}")
    km = k_multiple(vlen, block)
    if k % km:
        raise ShapeError(f"K = {k} must be a multiple of max(vector.vlen, mx.block) = {km} "
                         f"on profile {cfg.name}")
