"""dnpu_ooc, the out-of-context wrapper of dnpu_top that scripts/ecp5_pnr.py places and
routes: Verilator -Wall clean with the NPU under it, for the ECP5 profile it is built for
and a board profile (its port widths follow the profile header)."""

from __future__ import annotations

import pytest

from dnpu.codegen.rtl import profile_define, rtl_sources

from conftest import REPO

try:  # collected by pytest as a member of the tests/rtl package
    from .cocotb_run import lint
except ImportError:
    from cocotb_run import lint


@pytest.mark.rtl
@pytest.mark.parametrize("profile", ["ecp5", "pynq-z2"])
def test_ooc_wrapper_lint(profile):
    lint("dnpu_ooc", [REPO / s for s in rtl_sources(REPO)], defines={profile_define(profile): None})
