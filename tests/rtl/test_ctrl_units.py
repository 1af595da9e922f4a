"""The controller's units in hw/rtl/ctrl (dnpu_fetch, dnpu_decode, dnpu_loop_stack,
dnpu_fpu, dnpu_lsu), each linted on its own: Verilator -Wall clean with its default
parameters and with every profile's (from the generated hw/rtl/generated/dnpu_cfg_*.vh).

Their behaviour is tested through dnpu_top: test_top.py and test_top_vector.py against
the emulator, and the lockstep check (tests/test_lockstep.py)."""

from __future__ import annotations

import re

import pytest

try:  # collected by pytest as a member of the tests/rtl package
    from .cocotb_run import RTL, lint, rtl_sources
except ImportError:
    from cocotb_run import RTL, lint, rtl_sources

# unit -> (its files, then the files of the modules it instantiates; parameter -> the
# profile header's DNPU_CFG_<key>)
UNITS = {
    "dnpu_fetch": (["ctrl/dnpu_fetch.v"],
                   {"DATA_W": "AXI_DATA_WIDTH", "LINE_WORDS": "CTRL_FETCH_WORDS"}),
    "dnpu_decode": (["ctrl/dnpu_decode.v"], {}),
    "dnpu_window": (["ctrl/dnpu_window.v"], {}),
    "dnpu_loop_stack": (["ctrl/dnpu_loop_stack.v"], {"DEPTH": "CTRL_LOOP_DEPTH"}),
    "dnpu_fpu": (["ctrl/dnpu_fpu.v", "fp/dnpu_fp_cmp.v", "fp/dnpu_fp32_reci.v", "fp/dnpu_fp32_rsqrt.v",
                  "fp/dnpu_fp32_add.v", "fp/dnpu_fp32_mul.v", "fp/dnpu_fp_exp.v"],
                 {"ADD_STAGES": "PIPELINE_ADD_STAGES", "MUL_STAGES": "PIPELINE_MUL_STAGES",
                  "EXP_STAGES": "PIPELINE_EXP_STAGES"}),
    "dnpu_lsu": (["ctrl/dnpu_lsu.v", "mx/dnpu_mx_dequant.v", "mx/dnpu_mx_lane.v", "mx/dnpu_mx_quant.v",
                  "mx/dnpu_mx_enc.v", "dma/dnpu_beat_unpack.v"],
                 {"ADDR_W": "AXI_ADDR_WIDTH", "DATA_W": "AXI_DATA_WIDTH", "INT_WORDS": "SRAM_INT_WORDS",
                  "FP_WORDS": "SRAM_FP_WORDS", "VLEN": "VECTOR_VLEN", "VEC_ROWS": "SRAM_VECTOR_ROWS",
                  "MX_BLOCK": "MX_BLOCK"}),
}
PROFILES = sorted(p.stem.removeprefix("dnpu_cfg_") for p in (RTL / "generated").glob("dnpu_cfg_*.vh"))


def profile_values(profile: str) -> dict[str, int]:
    """The integer DNPU_CFG_<key> defines of a profile's generated header, by key."""
    text = (RTL / "generated" / f"dnpu_cfg_{profile}.vh").read_text()
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^`define DNPU_CFG_(\w+)\s+(\d+)\b", text, re.M)}


def test_units_cover_the_ctrl_folder():
    """Every module file in hw/rtl/ctrl but the core and the register block is linted here."""
    have = {p.stem for p in (RTL / "ctrl").glob("*.v")} - {"dnpu_core", "dnpu_csr"}
    assert have == set(UNITS)


@pytest.mark.rtl
@pytest.mark.parametrize("profile", ["defaults", *PROFILES])
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_ctrl_unit_lint(unit, profile):
    files, params = UNITS[unit]
    values = profile_values(profile) if profile != "defaults" else {}
    lint(unit, rtl_sources(*files), parameters={p: values[k] for p, k in params.items() if values})
