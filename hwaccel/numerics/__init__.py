"""The one definition of hwaccel's integer arithmetic.

Seven modules, one namespace: :mod:`.core` (formats, saturation, quantization, the
requantizer), :mod:`.lstm` (the LSTM cell's fixed point, sigmoid and tanh tables),
:mod:`.eltwise` (the residual ADD and average pooling), and the attention units' :mod:`.softmax`,
:mod:`.layernorm` and :mod:`.gelu`, whose table takes the other pointwise functions too
(:mod:`.pointwise`). Import from ``hwaccel.numerics``.

Every generator, golden model, the compiler and the runtime import their number formats and
rounding rules from here; no width or rounding rule is written twice.

Contract
--------
* Activations and weights are signed int8, symmetric (zero point 0). Weight scales are per output
  channel, activation scales per tensor.
* Products accumulate in a signed accumulator (int32 by default) whose width is proven wide enough
  for the largest reduction length K a config allows (:func:`max_reduction`).
* Requantize: ``y = saturate((acc * M + 2**(S-1)) >> S)`` with an unsigned integer multiplier ``M``
  of :data:`MULT_BITS` bits and a shift ``S >= 1``. The arithmetic shift floors, so this rounds
  half up (towards +inf). ReLU is folded into the saturation bounds (lower bound 0).
* Bias is int32 at scale ``s_in * s_w`` and is added to the accumulator before requantizing.

The functions accept Python ints, numpy integer arrays and torch integer tensors and return the
same kind; all intermediate arithmetic is done in 64 bits, which is exact because
``|acc| < 2**31`` and ``M < 2**MULT_BITS`` keep ``acc * M`` below ``2**63``.
"""

from . import core, eltwise, gelu, layernorm, lstm, pointwise, softmax
from .core import *  # noqa: F403
from .eltwise import *  # noqa: F403
from .gelu import *  # noqa: F403
from .layernorm import *  # noqa: F403
from .lstm import *  # noqa: F403
from .pointwise import *  # noqa: F403
from .softmax import *  # noqa: F403

__all__ = [*core.__all__, *lstm.__all__, *eltwise.__all__, *softmax.__all__, *layernorm.__all__,
           *gelu.__all__, *pointwise.__all__]
