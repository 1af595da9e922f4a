"""dnpu.spec: the hardware contract, the layer everything else stands on.

`config` (hardware profiles from hw/config/*.toml), `mx` (the OCP MX codec and the
packed memory layout), `numerics` (every datapath arithmetic step, bit-exact), `isa`
(encoding, assembler, disassembler over hw/isa.toml), `csr` (the register map over
hw/csr.toml), and `generated` (the tables `dnpu.codegen` writes from the TOML files).
Nothing here imports from any other part of dnpu.
"""
