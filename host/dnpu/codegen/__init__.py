"""One table generates the rest: hw/isa.toml, hw/csr.toml and the hardware profiles
(hw/config/*.toml, through dnpu.spec.config) become Verilog headers, Python tables,
Markdown docs and PYNQ hardware handoffs; dnpu.spec.numerics' EXP tables become the RTL's
EXP table.

    python -m dnpu.codegen [--root DIR] [--out DIR] [--check]
    (make generate, make check-generated)

Outputs (paths relative to the repository root), by emitter:

    emit_verilog    hw/rtl/generated/dnpu_isa.vh      opcodes, fields, used-bit masks, enums
                    hw/rtl/generated/dnpu_csr.vh      CSR offsets, field bits, error causes
                    hw/rtl/generated/dnpu_cfg_<p>.vh  one per hardware profile (- becomes _)
    emit_exp_table  hw/rtl/common/dnpu_exp_table.vh   EXP's T/D tables (NUMERICS section 3)
    emit_python     host/dnpu/spec/generated/__init__.py
                    host/dnpu/spec/generated/isa_table.py  plain literals read by dnpu.spec.isa
                    host/dnpu/spec/generated/csr_table.py  plain literals read by dnpu.spec.csr
    emit_docs       docs/ISA.md, docs/CSR.md
    emit_hwh        bitstreams/<board>/dnpu.hwh       one per FPGA profile: the hardware handoff
                                                      PYNQ's Overlay reads (the NPU's AXI4-Lite
                                                      window and its register map)

The emitters read the table model (tables: isa_model, csr_model and the profiles, each
validated on load by the helpers in validate); driver runs them and writes or checks.
Every output is a pure function of its sources: no timestamps, no absolute paths, so
`--check` can compare byte for byte. A mistake in a table raises CodegenError, whose
message names the file and the key.
"""

from dnpu.codegen.csr_model import Csr, load_csr
from dnpu.codegen.driver import GENERATED_DIRS, check, generate, main, stray_files, write_files
from dnpu.codegen.emit_exp_table import EXP_TABLE_VH, emit_exp_table, exp_table_entries
from dnpu.codegen.emit_hwh import HWH_INSTANCE, PS_FAMILIES, emit_hwh, hwh_text
from dnpu.codegen.emit_verilog import profile_vh_name
from dnpu.codegen.isa_model import Isa, load_isa
from dnpu.codegen.tables import CSR_TOML, ISA_TOML, Profile, Tables, load_profiles, load_tables
from dnpu.codegen.validate import CodegenError

__all__ = ["CodegenError", "Isa", "Csr", "Profile", "Tables", "load_isa", "load_csr", "load_profiles",
           "load_tables", "generate", "write_files", "stray_files", "check", "main", "GENERATED_DIRS",
           "ISA_TOML", "CSR_TOML", "EXP_TABLE_VH", "emit_exp_table", "exp_table_entries", "emit_hwh",
           "hwh_text", "HWH_INSTANCE", "PS_FAMILIES", "profile_vh_name"]
