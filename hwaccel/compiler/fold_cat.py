"""A concatenation (``torch.cat`` of images along channels, or of vectors and sequences along
features) split into the ops that read it. The activation scratchpad holds each tensor in a
block of its own, channels last, and no command stores a result into every other run of words,
so a concatenation is not a tensor here: each op that reads it reads its parts instead.

* A max pool, an average pool, a depthwise conv (a batch norm after the concatenation is
  one) or a flatten acts on each part alone (they work per channel, and an image's flatten is
  channel-major, so the flatten of a concatenation along channels is the parts' flattens one
  after the other): one such op per part, then their concatenation.
* A dense Conv2d or a Linear is the sum of its input channels' (features') contributions: one
  per part, on that part's slice of the weights (the bias in the first), then their sum by
  element-wise adds, the last one named as the reader and with its ReLU.

In float that is the same function. In int8 each part's conv is requantized on its own before
the adds: a rounding more per part, and an ADD pass over the reader's output. A concatenation
read by another takes its parts' places there. One that anything else reads (an add, the
model's output) is refused by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import ir
from .errors import UnsupportedOp

__all__ = ["Cat", "replace_with", "split_cat"]

#: Readers that act on each channel alone: one per part, then a concatenation of theirs.
PER_CHANNEL = (ir.MaxPool2d, ir.AvgPool2d, ir.Flatten)


@dataclass(frozen=True, eq=False)
class Cat:
    """The concatenation of ``inputs`` (per-sample ``shapes``) along channels (images) or
    features (vectors, sequences)."""

    name: str
    where: str
    shapes: tuple[tuple[int, ...], ...]
    inputs: tuple[str, ...] = ()


def replace_with(ops, name: str, new: list) -> None:
    """Replace op ``name`` by the ops ``new``, in its place in the order (their names new
    but for ``name`` itself: the rewrites' suffixes never shadow a value of the model)."""
    clash = [o.name for o in new if o.name != name and o.name in ops.ops]
    if clash:
        raise ValueError(f"rewriting {name!r} would reuse the value names {clash}: rename "
                         f"the model's layers that carry them")
    out = {}
    for key, op in ops.ops.items():
        out.update({o.name: o for o in new} if key == name else {key: op})
    ops.ops = out


def _sum_of_parts(reader, cat: Cat, name: str, rows: slice) -> list:
    """``reader``'s output channels ``rows`` over ``cat``'s parts: one op per part on its slice
    of the weights (the bias in the first), then their adds, the last named ``name`` and with
    ``reader``'s ReLU."""
    sizes = [s[-1] if isinstance(reader, ir.Linear) else s[0] for s in cat.shapes]
    edges = np.cumsum([0, *sizes])
    bias = reader.bias[rows]
    parts = [dataclasses.replace(
        reader, name=f"{name}.cat{i}", weight=reader.weight[rows, a:b].copy(),
        bias=bias if i == 0 else np.zeros_like(bias), relu=False, cap=None, inputs=(v,))
        for i, (v, a, b) in enumerate(zip(cat.inputs, edges[:-1], edges[1:]))]
    adds, acc = [], parts[0].name
    for i, part in enumerate(parts[1:], 1):
        last = i == len(parts) - 1
        adds.append(ir.Add(name if last else f"{name}.sum{i}", relu=reader.relu and last,
                           cap=reader.cap if last else None, inputs=(acc, part.name)))
        acc = adds[-1].name
    return [*parts, *adds]


def _split_reader(ops, cat: Cat, reader, widest) -> None:
    """``reader`` (a dense Conv2d or a Linear) as one op per part and the adds of theirs; for
    a conv wider than ``widest`` allows, that for each group of its output channels, and a
    concatenation of the groups."""
    n = reader.weight.shape[0]
    group = widest(reader, cat.shapes) if widest and isinstance(reader, ir.Conv2d) else None
    if group is None or group >= n:
        return replace_with(ops, reader.name, _sum_of_parts(reader, cat, reader.name, slice(None)))
    starts = range(0, n, group)
    names = [f"{reader.name}.out{g}" for g in range(len(starts))]
    hw = ir.out_shape(reader, (sum(s[0] for s in cat.shapes), *cat.shapes[0][1:]))[1:]
    joined = Cat(reader.name, cat.where, tuple((min(group, n - s), *hw) for s in starts),
                 tuple(names))
    replace_with(ops, reader.name, [*(op for name, s in zip(names, starts)
                              for op in _sum_of_parts(reader, cat, name, slice(s, s + group))),
                            joined])
    split_cat(ops, joined, widest)


def _depthwise(op) -> bool:
    return isinstance(op, ir.Conv2d) and op.groups > 1 and op.groups == op.weight.shape[0]


def _per_part(reader, i: int, value: str, cat: Cat):
    """Per-channel ``reader`` on part ``i`` (``value``) of ``cat``: a depthwise conv on its
    channels' weights and biases."""
    part = dataclasses.replace(reader, name=f"{reader.name}.{i}", inputs=(value,))
    if not _depthwise(reader):
        return part
    a = sum(s[0] for s in cat.shapes[:i])
    b = a + cat.shapes[i][0]
    return dataclasses.replace(part, weight=reader.weight[a:b].copy(),
                               bias=reader.bias[a:b].copy(), groups=b - a)


def split_cat(ops, cat: Cat, widest=None) -> None:
    """Rewrite every reader of ``cat`` as the module says; ``cat`` is gone after.
    ``widest(conv, part_shapes)``: the most output channels one conv over parts of those
    shapes may have on a preset (``None``: all of them), :mod:`.split_convs`'s."""
    if len(cat.inputs) == 1:
        return ops.drop(cat)
    for reader in ops.readers(cat.name):
        if reader == "<output>":
            raise UnsupportedOp("cat", cat.where, "as the model's output; a concatenation is "
                                                  "read by dense Conv2d, Linear, pools and "
                                                  "flattens, split along it")
        if isinstance(reader, PER_CHANNEL) or _depthwise(reader):
            parts = [_per_part(reader, i, v, cat) for i, v in enumerate(cat.inputs)]
            joined = Cat(reader.name, cat.where,
                         tuple(ir.out_shape(p, s) for p, s in zip(parts, cat.shapes)),
                         tuple(p.name for p in parts))
            replace_with(ops, reader.name, [*parts, joined])
            split_cat(ops, joined, widest)
        elif isinstance(reader, Cat):   # a concatenation of concatenations: one of the parts
            k = reader.inputs.index(cat.name)
            ops.replace(dataclasses.replace(
                reader, inputs=reader.inputs[:k] + cat.inputs + reader.inputs[k + 1:],
                shapes=reader.shapes[:k] + cat.shapes + reader.shapes[k + 1:]))
        elif isinstance(reader, ir.Conv2d) and reader.groups == 1 or isinstance(reader,
                                                                                 ir.Linear):
            _split_reader(ops, cat, reader, widest)
        else:
            raise UnsupportedOp("cat", cat.where, f"read by {type(reader).__name__} "
                                                  f"{reader.name!r}; a concatenation is read "
                                                  f"by dense or depthwise Conv2d, Linear, max "
                                                  f"or average pools and flattens, split "
                                                  f"along it")
    del ops.ops[cat.name]
