"""``hwaccel advise``: one model on every platform hwaccel can run or model, in one table.

:mod:`.rows` (the row, measured and published rows), :mod:`.accel_rows` (the accelerator on
an FPGA and as an ASIC, from the exact cycle model), :mod:`.report` (the recommendation and
the table), :mod:`.command` (the command). ``published.json`` holds the cited reference
figures.
"""
