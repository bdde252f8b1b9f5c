"""``AccelConfig.end_stage`` (a job's end clears the job's flags a cycle later, from the
``ended`` register) on the RTL with the attention units: the engines' and the attention
units' jobs back to back, MATMUL's gather under the job before it, a fused ADD, soft resets
mid-job and mid-gather and a TIMEOUT, with the scratchpad equal to the golden interpreter's
and every counter equal to the cycle model's. The tests are ``tiny_attention``'s own
(:mod:`test_attention_rtl`, :mod:`test_matmul_rtl`), run here on the accelerator built from
``HOST_CONFIG``: the field changes neither the command words nor the model, so their programs,
golden runs and cycle figures are this accelerator's too. The conv engine, pool, LSTM and
element-wise jobs with it: ``test_accel_product_register.py``."""

from __future__ import annotations

from test_attention_rtl import (  # noqa: F401  (collected here, on HOST_CONFIG)
    test_between_engine_commands,
    test_soft_reset_mid_job_and_timeout,
)
from test_matmul_rtl import (  # noqa: F401
    test_matmul_after_fused_add,
    test_matmul_bit_exact_and_cycle_exact,
    test_soft_reset_mid_gather,
)

from hwaccel.generators.accel.config import MODEL_PRESETS

HOST_CONFIG = MODEL_PRESETS["tiny_attention"].with_(end_stage=True, name="tiny_attention_end")
