"""cocotb testbenches (``tb_<block>.py``) and their verification components.

What a hardware engineer opens to read or extend a bench. The benches run through
:func:`hwaccel.sim.runner.run_bench` (which puts this folder's parent on the simulator's Python
path), on Verilator or Icarus; the package ``hwaccel.sim`` keeps the runner and the C++ harness.
"""
