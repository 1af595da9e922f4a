"""dnpu.verify: every `dnpu check-*` behind one package.

`sampling` (check-sampling: NPU sampling steps vs the torch float64 reference),
`lockstep` (check-lockstep: RTL vs emulator, retire by retire, on `proggen`'s random
programs), `perf` (check-perf: the analytical model vs RTL cycles) and `generation`
(eval and check-generate: whole generations of the shipped model).
"""
