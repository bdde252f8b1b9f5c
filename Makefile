# hwaccel: `make rtl` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.hwaccel-installed

.PHONY: rtl test lint bench bitstream clean

# torch is pinned to the CPU build first: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[test,impl,runtime,dse]"
	@touch $(STAMP)

rtl: $(STAMP)
	$(VENV)/bin/hwaccel rtl

# Both cores: simulations and elaboration are single-threaded processes. Whole files go to one
# worker (--dist loadfile), so a module's fixtures (trained models, compiled programs) run once.
# pytest exits 5 when it collects nothing: that is a broken suite, not a pass. The 15 slowest
# tests are listed at the end: the suite's budget is 20 minutes cold on two cores.
JOBS ?= 2
test: $(STAMP)
	@$(PY) -m pytest -n $(JOBS) --dist loadfile --durations=15; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check hwaccel tests
	$(VENV)/bin/hwaccel rtl --lint

bench: $(STAMP)
	$(VENV)/bin/hwaccel bench gemm --dataflow os
	$(VENV)/bin/hwaccel bench gemm --dataflow ws

# A bitstream for a board (ulx3s or ecpix5): the accelerator preset behind a UART bridge, with the
# board's clock through the PLL, reset and pins: build/board/<board>_accel_<preset>/*.bit
# (`hwaccel synth --preset P --bitstream` still writes a core-in-a-scan-shell bitstream.)
BOARD ?= ulx3s
PRESET ?= ecp5
bitstream: $(STAMP)
	$(VENV)/bin/hwaccel board --board $(BOARD) --preset $(PRESET)

clean:
	rm -rf rtl/*.v rtl/*.json build .pytest_cache
