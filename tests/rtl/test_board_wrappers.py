"""The ECP5 board wrappers of dnpu_uart_top (hw/boards/*/dnpu_*.v, built by
scripts/ecp5_build.py): Verilator -Wall clean with the serial top under them. The PLL is
generated at build time (ecppll), so the lint runs the oscillator branch, with both active
levels of the reset button and the LEDs."""

from __future__ import annotations

import pytest

from dnpu.codegen.rtl import SERIAL_TOP, profile_define, rtl_sources

from conftest import REPO

try:  # collected by pytest as a member of the tests/rtl package
    from .cocotb_run import lint
except ImportError:
    from cocotb_run import lint

WRAPPERS = sorted((REPO / "hw" / "boards").glob("*/dnpu_*.v"))


@pytest.mark.rtl
@pytest.mark.parametrize("active_high", [1, 0])
@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda p: p.stem)
def test_board_wrapper_lint(wrapper, active_high):
    lint(wrapper.stem, [REPO / s for s in rtl_sources(REPO, top=SERIAL_TOP)] + [wrapper],
         parameters={"USE_PLL": 0, "RST_ACTIVE_HIGH": active_high, "LED_ACTIVE_HIGH": active_high},
         defines={profile_define("ecp5"): None})
