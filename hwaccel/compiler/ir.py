"""The compiler's typed IR: a float graph traced from PyTorch and its integer-only quantization.

A model is a DAG over *named values*: the per-sample input is the value :data:`INPUT`, and
every op reads the values it names in ``inputs`` and produces one value, named by the op's
``name``. A value may feed several ops (a residual block's input feeds its branch and its
shortcut). Ops are kept in a topological order, the order the accelerator's programs run
them, layer-major; the graph's ``output`` names the value the model returns. An op built
without ``inputs`` reads the op before it (or the input): a chain needs no names.

Float IR (:class:`Graph`, made by :mod:`.trace`)
    :class:`Embedding` (token ids in, gathered on the host), :class:`Conv2d` (+ReLU; any
    kernel, per-axis stride, per-side zero padding, dense or depthwise), :class:`MaxPool2d`
    (2x2, stride 2), :class:`AvgPool2d` (kernel = stride), :class:`Add` (+ReLU), :class:`Mul`
    (+ReLU; of one shape, or a map and a gate pixel),
    :class:`Flatten`, :class:`Unflatten` (a vector as a one-pixel image), :class:`SeqView` (a
    line as a sequence, or back; neither moves data),
    :class:`DepthToSpace` (pixel_shuffle: upsamplings are a 1 x 1 conv into it),
    :class:`Linear` (+ReLU), :class:`LSTM` (one or more layers, batch first,
    every step or the last step out) and a host ``head`` (``logits``, ``softmax``,
    ``log_softmax`` or ``argmax``). Weights are float64 numpy arrays, exactly the module's.
    Attention and transformer encoders (:mod:`.ir_attention`): :class:`MatMul` of two
    activations, row-wise :class:`Softmax` (causal or not), :class:`LayerNorm`, :class:`Gelu`,
    per-head :class:`Slice` and :class:`Concat`, :class:`AddConstant` (positional embeddings),
    :class:`TokenMean` and :class:`Token` heads.

Quantized IR (:class:`QGraph`, made by :mod:`.quantize`)
    Integer tensors and requantizers only (:class:`QEmbedding`, :class:`QConv` with an optional
    fused 2x2 max-pool, :class:`QMaxPool`, :class:`QAvgPool`, :class:`QAdd`, :class:`QMul`,
    :class:`QFlatten`,
    :class:`QUnflatten`, :class:`QSeqView`, :class:`QDepthToSpace`, :class:`QLinear`,
    :class:`QLstm`; the attention ops of :mod:`.ir_attention_q`, which the accelerator runs
    only with attention units): it fully determines its arithmetic. The only floats it holds
    are the input scale and the output scale (how the host turns floats into int8 and int8
    logits back into floats) and, per op, the scales it was derived from, kept for
    :meth:`QGraph.describe`.

Shapes are per sample: ``(C, H, W)`` for an image, ``(F,)`` for a vector, ``(T, F)`` for a
sequence and ``(T,)`` for token ids. A Conv1d model's ``(C, L)`` is the image ``(C, 1, L)``; its
graph's ``input_view`` keeps the ``(C, L)`` the model takes (:func:`graph_input` reshapes).
Padding is ``(top, left, bottom, right)``, as the conv engine's layer descriptor has it; an int
means the same on every side.

The ops live in :mod:`.ir_float`, :mod:`.ir_attention`, :mod:`.ir_quant` and
:mod:`.ir_attention_q`, the graphs, shapes and MACs in :mod:`.ir_graph`; every name is
importable from here.
"""

from __future__ import annotations

# The IR is split by kind of op; every name stays importable from here.
from . import ir_attention, ir_attention_q, ir_float, ir_graph, ir_quant
from .ir_attention import *  # noqa: F403
from .ir_attention_q import *  # noqa: F403
from .ir_float import *  # noqa: F403
from .ir_graph import *  # noqa: F403
from .ir_quant import *  # noqa: F403

__all__ = [*ir_float.__all__, *ir_attention.__all__, *ir_quant.__all__, *ir_graph.__all__,
           *ir_attention_q.__all__]
