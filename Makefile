# dnpu: the two commands a user needs are `make demo` and `make test`.
# Both install what they need first (scripts/setup.sh is idempotent).

VENV ?= .venv
RUN  := VENV=$(VENV) scripts/venv-run
# pytest-xdist workers (one per core by default); `make test PYTEST_WORKERS=0` runs serially.
# loadgroup keeps the tests marked xdist_group together on one worker.
PYTEST_WORKERS ?= auto
XDIST := -n $(PYTEST_WORKERS) --dist loadgroup
PY   := $(RUN) python

.PHONY: help setup demo test test-slow test-pynq test-wheel lint synth pnr-ecp5 bitstream bitstream-ecp5 check-generated generate bench-mx clean

help:
	@echo "make demo             install, then run the most complete demo that exists"
	@echo "make test             install, check generated files, run the test suite (what CI runs)"
	@echo "make test-slow        the long regressions (pytest -m slow)"
	@echo "make test-wheel       build the wheel, install it into fresh venvs (without extras, with torch), run dnpu outside the tree"
	@echo "make test-pynq        the generated .hwh files read by the real pynq (own venv, cached; slow tier)"
	@echo "make lint             verilator --lint-only -Wall on every RTL block (zero warnings)"
	@echo "make synth            Yosys resource estimate and LUT levels of the pynq-z2 build (xc7z020)"
	@echo "make pnr-ecp5         place and route of the ecp5 profile (nextpnr): Fmax and utilization"
	@echo "make bitstream BOARD=pynq-z2  Vivado build of a board (vivado on PATH): bitstreams/BOARD/build/"
	@echo "make bitstream-ecp5 BOARD=ulx3s  open-tool build of the serial top for an ECP5 board: bitstreams/BOARD/build/dnpu.bit"
	@echo "make check-generated  fail if a generated file (from hw/*.toml, the EXP table) is stale"
	@echo "make generate         regenerate headers, Python tables, docs and the EXP table"
	@echo "make bench-mx         MX codec throughput"

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) scripts/demo.py

test: setup check-generated
	@$(RUN) pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

test-slow: setup
	@$(RUN) pytest -m slow $(XDIST) $(PYTEST_ARGS)

# Also part of test-slow: 2 to 6 minutes on 2 cores (the first run downloads numpy,
# ml-dtypes, tqdm and safetensors from the package index and compiles the co-simulation;
# pip's cache and ccache shorten later runs).
test-wheel: setup
	@$(RUN) pytest -m slow tests/test_wheel.py $(PYTEST_ARGS)

# Also part of test-slow; the first run installs pynq into ~/.cache/dnpu (needs the package index).
test-pynq: setup
	@$(RUN) pytest -m slow tests/test_pynq_real.py $(XDIST) $(PYTEST_ARGS)

# The lint checks live beside each block's cocotb tests (one list of sources per block).
lint: setup
	@$(RUN) pytest -q -m rtl -k lint $(PYTEST_ARGS)

synth: setup
	@$(PY) scripts/synth_report.py --config pynq-z2

pnr-ecp5: setup
	@$(PY) scripts/ecp5_pnr.py --config ecp5

# Vivado batch build of the generated bitstreams/$(BOARD)/build.tcl; exits 2 without Vivado.
BOARD ?= pynq-z2
bitstream: setup
	@$(PY) scripts/vivado_build.py --board $(BOARD) $(if $(BITSTREAM_OUT),--out $(BITSTREAM_OUT))

# Yosys, nextpnr-ecp5 and ecppack (from PyPI) build dnpu_uart_top for a board of hw/boards/:
# about 45 minutes on two cores (ULX3S: Yosys 5, nextpnr 40).
# BOARD given on the command line, else the one ECP5 board with a build (not the Zynq default above).
bitstream-ecp5: setup
	@$(PY) scripts/ecp5_build.py --board $(if $(filter command line,$(origin BOARD)),$(BOARD),ulx3s)

check-generated: setup
	@$(PY) -m dnpu.codegen --check

generate: setup
	@$(PY) -m dnpu.codegen

bench-mx: setup
	@$(PY) scripts/bench_mx.py

clean:
	rm -rf build sim_build .pytest_cache .hypothesis
