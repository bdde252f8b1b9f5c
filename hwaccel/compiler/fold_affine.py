"""Per-channel and per-feature affine maps (``w * x + b`` a channel of an image, a feature of a
vector): a batch norm no layer takes, ``(x - mean) / std`` in ``forward``, a layer scale. On an
image one is a depthwise 1 x 1 conv (:func:`channel_affine`), on a vector a Linear of a diagonal
matrix (:func:`feature_affine`). :func:`join_affines` then folds each, where nothing else reads
what lies between, into the dense op next to it, in float the same function and in int8 one
op and one rounding fewer:

* an affine map with no ReLU into the affine map that alone reads it (one map);
* a vector's map with no ReLU into the Linear that alone reads it (its columns scaled, the
  shift through its weights into its bias), and a Linear or a conv with no ReLU into the map
  that alone reads it (its rows, or output channels, scaled: a batch norm's fold);
* an image's map with no ReLU into the dense conv without padding, or the flatten then
  Linear, that alone reads it. (A padded conv reads zeros around the image, not the map of
  zeros: there the map stays a layer.)
* a map that only scales, by positive numbers, into the Linear or conv with a ReLU that it
  alone reads (``relu(z) * w`` is ``relu(z * w)``; under a cap, one number, which scales the
  cap), and a map that scales every channel by one positive number into the add before it
  (its weights: ``(a + b) / 2``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import ir

__all__ = ["channel_affine", "feature_affine", "join_affines"]


def channel_affine(name: str, w, bias, src: str) -> ir.Conv2d:
    """``w[c] * x + bias[c]`` per channel of image ``src``: a depthwise 1 x 1 conv."""
    c = len(w)
    return ir.Conv2d(name, np.asarray(w, dtype=np.float64).reshape(c, 1, 1, 1),
                     np.asarray(bias, dtype=np.float64), groups=c, inputs=(src,))


def feature_affine(name: str, w, bias, src: str) -> ir.Linear:
    """``w[k] * x + bias[k]`` per feature of vector ``src``: a Linear of a diagonal matrix."""
    return ir.Linear(name, np.diag(np.asarray(w, dtype=np.float64)),
                     np.asarray(bias, dtype=np.float64), inputs=(src,))


def _image_map(op) -> bool:
    """Whether ``op`` is a depthwise 1 x 1 conv (a per-channel affine map)."""
    return (isinstance(op, ir.Conv2d) and op.groups > 1 and op.weight.shape[1:] == (1, 1, 1)
            and op.strides == (1, 1) and op.pads == (0, 0, 0, 0) and not op.exact)


def _vector_map(op) -> bool:
    """Whether ``op`` is a Linear of a diagonal matrix (a per-feature affine map)."""
    w = getattr(op, "weight", None)
    return (isinstance(op, ir.Linear) and w.shape[0] == w.shape[1]
            and not np.count_nonzero(w - np.diag(np.diag(w))))


def _scale_shift(op) -> tuple[np.ndarray, np.ndarray]:
    """An affine map's ``w`` and ``bias``, a value a channel or feature."""
    w = np.diag(op.weight) if isinstance(op, ir.Linear) else op.weight.reshape(-1)
    return w, op.bias


def _into_reader(a, b, ops):
    """``b`` with the map ``a`` before it folded in (and the Linear after a flatten ``b``), or
    ``None`` where it does not fold."""
    w, s = _scale_shift(a)
    if _image_map(b):
        wb, sb = _scale_shift(b)
        return [dataclasses.replace(b, weight=(wb * w).reshape(b.weight.shape),
                                    bias=wb * s + sb, inputs=a.inputs)]
    if isinstance(b, ir.Linear) and _vector_map(a):
        return [dataclasses.replace(b, weight=b.weight * w, bias=b.weight @ s + b.bias,
                                    inputs=a.inputs)]
    if isinstance(b, ir.Conv2d) and b.groups == 1 and not any(b.pads):
        return [dataclasses.replace(b, weight=b.weight * w[None, :, None, None],
                                    bias=b.bias + np.einsum("oikl,i->o", b.weight, s),
                                    inputs=a.inputs)]
    fc = ops.readers(b.name)
    if isinstance(b, ir.Flatten) and len(fc) == 1 and isinstance(fc[0], ir.Linear):
        hw = fc[0].weight.shape[1] // len(w)
        wr, sr = np.repeat(w, hw), np.repeat(s, hw)   # the flatten is channel-major
        return [dataclasses.replace(b, inputs=a.inputs), dataclasses.replace(
            fc[0], weight=fc[0].weight * wr, bias=fc[0].weight @ sr + fc[0].bias)]
    return None


def _into_writer(a, b):
    """The Linear or conv ``a`` with the map ``b`` after it folded in (its rows, or output
    channels, scaled), named ``b``."""
    w, s = _scale_shift(b)
    return dataclasses.replace(a, name=b.name, weight=a.weight * w.reshape(
        -1, *([1] * (a.weight.ndim - 1))), bias=w * a.bias + s, relu=b.relu, cap=b.cap)


def join_affines(ops) -> None:
    """Fold the affine maps of ``ops`` (an :class:`~.fold.OpTable`) as the module says."""
    changed = True
    while changed:
        changed = False
        for name in list(ops.ops):
            a = ops.ops.get(name)
            readers = ops.readers(name) if a is not None else []
            if len(readers) != 1 or readers[0] == "<output>":
                continue
            new = _joined(a, readers[0], ops)
            if new is not None:
                for op in new:
                    ops.replace(op)
                del ops.ops[name]
                changed = True


def _joined(a, b, ops) -> list | None:
    """The ops that replace ``a`` and ``b``, its only reader; None where they do not join."""
    relu = getattr(a, "relu", None)
    if relu is None or getattr(a, "exact", False):
        return None
    if not relu and (_image_map(a) or _vector_map(a)):
        return _into_reader(a, b, ops)
    if not (isinstance(a, ir.Linear) and _vector_map(b)
            or isinstance(a, (ir.Conv2d, ir.Add)) and _image_map(b)):
        return None
    if not relu and not isinstance(a, ir.Add):
        return [_into_writer(a, b)]
    w, s = _scale_shift(b)   # through a ReLU or into an add: positive scales, no shift
    one = bool(np.all(w == w[0]))
    if np.any(s) or np.any(w <= 0) or not one and (a.cap is not None or isinstance(a, ir.Add)):
        return None
    if isinstance(a, ir.Add):
        new = dataclasses.replace(a, name=b.name, weights=tuple(float(v * w[0])
                                                                for v in a.weights))
    else:
        new = _into_writer(a, b)
    caps = [c for c in (a.cap * float(w[0]) if relu and a.cap is not None else None,
                        b.cap if b.relu else None) if c is not None]
    return [dataclasses.replace(new, relu=relu or b.relu, cap=min(caps, default=None))]
