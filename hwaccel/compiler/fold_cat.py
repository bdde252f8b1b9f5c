"""A concatenation (``torch.cat`` of images along channels, or of vectors and sequences along
features) split into the ops that read it. The activation scratchpad holds each tensor in a
block of its own, channels last, and no command stores a result into every other run of words,
so a concatenation is not a tensor here: each op that reads it reads its parts instead.

* A max pool, an average pool, a depthwise conv (a batch norm after the concatenation is
  one), a table (a sigmoid, a SiLU ...) or a flatten acts on each part alone (they work per
  channel, and an image's flatten is channel-major, so the flatten of a concatenation along
  channels is the parts' flattens one after the other): one such op per part, then their
  concatenation.
* A dense Conv2d or a Linear is the sum of its input channels' (features') contributions: one
  per part, on that part's slice of the weights (the bias in the first), then their sum by
  element-wise adds, the last one named as the reader and with its ReLU.

In float that is the same function. In int8 each part's conv is requantized on its own before
the adds: a rounding more per part, and an ADD pass over the reader's output. A concatenation
read by another takes its parts' places there.

A slice, a chunk or a channel shuffle of an image (:mod:`.trace_channels`) is a concatenation
too: of one input, its channels picked in an ``order``. Every input's channels then sit where
the order puts them, in any order and any number of inputs: a dense reader's weights take
their columns from the positions of the input's channels (zero for a channel not picked, the
sum for one picked twice), so no data moves; a per-channel reader runs once on each whole input
and keeps the order; a depthwise conv takes the weights of each channel's position. The picks
of a dense conv's or Linear's outputs that nothing else reads are its weights' rows instead.

Picked so, a dense reader still reads each input whole: a chunk of a chunk (ShuffleNet's
passing halves) would read every earlier unit's branch in full. So first every concatenation
is made to read sources only (:func:`flatten_cats`), and a dense conv or Linear whose channels
different concatenations pick is split into one op per set of pickers (:func:`split_sources`):
each reader then reads only what it picks.

An add of the concatenation and a tensor split at the same channels, or made by ops that split
so (a conv's rows), is one add a part (:mod:`.fold_cat_add`). Any other add, or the model's
output, which take no parts, reads the concatenation joined
into one tensor by an identity 1 x 1 conv (a Linear on vectors and sequences) over it: a dense
reader as above, at a rounding more (:func:`_join`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import ir
from .errors import UnsupportedOp
from .fold_cat_add import other_operand, split_add, splits

__all__ = ["Cat", "concatenations", "flatten_cats", "gather", "replace_with", "split_cat",
           "split_sources"]

#: Readers that act on each channel alone: one per part, then a concatenation of theirs (a
#: table, :class:`~.ir_attention.Pointwise`, on each value).
PER_CHANNEL = (ir.MaxPool2d, ir.AvgPool2d, ir.Flatten, ir.Pointwise)


def _resized(shape: tuple, n: int) -> tuple:
    """``shape`` with ``n`` channels (an image) or features (a vector or sequence)."""
    return (n, *shape[1:]) if len(shape) == 3 else (*shape[:-1], n)


def _width(shape: tuple) -> int:
    """The channels of an image, the features of a vector or sequence."""
    return shape[0] if len(shape) == 3 else shape[-1]


@dataclass(frozen=True, eq=False)
class Cat:
    """The concatenation of ``inputs`` (per-sample ``shapes``) along channels (images) or
    features (vectors, sequences); with ``order``, its channel ``j`` is channel ``c`` of input
    ``i`` for ``order[j] = (i, c)``, no input's channel twice."""

    name: str
    where: str
    shapes: tuple[tuple[int, ...], ...]
    inputs: tuple[str, ...] = ()
    order: tuple[tuple[int, int], ...] | None = None

    def picks(self) -> tuple[tuple[int, int], ...]:
        """``(input, channel)`` of each of the concatenation's channels."""
        if self.order is not None:
            return self.order
        return tuple((i, c) for i, s in enumerate(self.shapes) for c in range(_width(s)))

    def shape(self) -> tuple[int, ...]:
        """The concatenation's per-sample shape."""
        return _resized(self.shapes[0], len(self.picks()))


def gather(name: str, where: str, picks) -> Cat:
    """The :class:`Cat` of the channels ``picks`` (``(value, shape, channel)`` each), in that
    order: a value's channels share an input unless one is picked twice."""
    inputs, shapes, used, order = [], [], [], []
    for value, shape, c in picks:
        i = next((i for i, v in enumerate(inputs) if v == value and c not in used[i]), None)
        if i is None:
            i = len(inputs)
            inputs.append(value), shapes.append(tuple(shape)), used.append(set())
        used[i].add(c)
        order.append((i, c))
    cat = Cat(name, where, tuple(shapes), tuple(inputs), tuple(order))
    return dataclasses.replace(cat, order=None) if cat.order == Cat(
        name, where, cat.shapes, cat.inputs).picks() else cat


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
    """``reader``'s output channels ``rows`` over ``cat``'s parts: one op per part on its
    weights (the bias in the first), then their adds, the last named ``name`` and with
    ``reader``'s ReLU; one op named so for a concatenation of one input."""
    w, bias = reader.weight[rows], reader.bias[rows]
    weights = [np.zeros((w.shape[0], _width(s), *w.shape[2:])) for s in cat.shapes]
    for j, (i, c) in enumerate(cat.picks()):
        weights[i][:, c] += w[:, j]
    if len(weights) == 1:
        return [dataclasses.replace(reader, name=name, weight=weights[0], bias=bias.copy(),
                                    inputs=cat.inputs)]
    parts = [dataclasses.replace(
        reader, name=f"{name}.cat{i}", weight=wi, bias=bias if i == 0 else
        np.zeros_like(bias), relu=False, cap=None, inputs=(v,))
        for i, (v, wi) in enumerate(zip(cat.inputs, weights))]
    adds, acc = [], parts[0].name
    for i, part in enumerate(parts[1:], 1):
        last = i == len(parts) - 1
        adds.append(ir.Add(name if last else f"{name}.sum{i}", relu=reader.relu and last,
                           cap=reader.cap if last else None, inputs=(acc, part.name)))
        acc = adds[-1].name
    return [*parts, *adds]


def _split_reader(ops, cat: Cat, reader, widest, join: bool) -> None:
    """``reader`` (a dense Conv2d or a Linear) as one op per part and the adds of theirs; for
    a conv wider than ``widest`` allows, that for each group of its output channels, and a
    concatenation of the groups."""
    n = reader.weight.shape[0]
    group = widest(reader, cat.shapes) if widest and isinstance(reader, ir.Conv2d) else None
    if group is None or group >= n:
        return replace_with(ops, reader.name, _sum_of_parts(reader, cat, reader.name, slice(None)))
    starts = range(0, n, group)
    names = [f"{reader.name}.out{g}" for g in range(len(starts))]
    hw = ir.out_shape(reader, cat.shape())[1:]
    joined = Cat(reader.name, cat.where, tuple((min(group, n - s), *hw) for s in starts),
                 tuple(names))
    replace_with(ops, reader.name, [*(op for name, s in zip(names, starts)
                              for op in _sum_of_parts(reader, cat, name, slice(s, s + group))),
                            joined])
    split_cat(ops, joined, widest, join)


def _depthwise(op) -> bool:
    return isinstance(op, ir.Conv2d) and op.groups > 1 and op.groups == op.weight.shape[0]


def _per_part(reader, i: int, value: str, cat: Cat):
    """Per-channel ``reader`` on the whole input ``i`` (``value``) of ``cat``: a depthwise conv
    with the weights and bias of each channel's position (zeros for a channel not picked)."""
    part = dataclasses.replace(reader, name=f"{reader.name}.{i}", inputs=(value,))
    if not _depthwise(reader):
        return part
    n = cat.shapes[i][0]
    w, bias = np.zeros((n, *reader.weight.shape[1:])), np.zeros(n)
    for j, (k, c) in enumerate(cat.picks()):
        if k == i:
            w[c], bias[c] = reader.weight[j], reader.bias[j]
    return dataclasses.replace(part, weight=w, bias=bias, groups=n)


def _flat_order(cat: Cat):
    """The flatten of ``cat``'s images: each picked channel's features, channel-major."""
    if cat.order is None:
        return None
    hw = int(np.prod(cat.shapes[0][1:]))
    return tuple((i, c * hw + k) for i, c in cat.order for k in range(hw))


def _takes(reader) -> bool:
    """Whether ``reader`` takes a concatenation's parts (a dense or per-channel op, another
    concatenation)."""
    return isinstance(reader, (*PER_CHANNEL, Cat, ir.Linear)) or _depthwise(reader) or (
        isinstance(reader, ir.Conv2d) and reader.groups == 1)


def _join(ops, cat: Cat, adds=()) -> None:
    """The readers of ``cat`` that take no parts (an add but ``adds``, :mod:`.fold_cat_add`; a
    table, the model's output) read an identity 1 x 1 conv over it (a Linear on vectors and
    sequences) instead: a dense reader, the concatenation made one tensor, at a rounding
    more."""
    n, name = len(cat.picks()), f"{cat.name}.joined"
    eye = np.eye(n)
    join = (ir.Conv2d(name, eye.reshape(n, n, 1, 1), np.zeros(n), inputs=(cat.name,))
            if len(cat.shapes[0]) == 3 else ir.Linear(name, eye, np.zeros(n), inputs=(cat.name,)))
    replace_with(ops, cat.name, [cat, join])
    for reader in ops.readers(cat.name):
        if reader == "<output>":
            ops.output = name
        elif reader is not join and not _takes(reader) and reader not in adds:
            ops.replace(dataclasses.replace(reader, inputs=tuple(
                name if v == cat.name else v for v in reader.inputs)))


def split_cat(ops, cat: Cat, widest=None, join: bool = True) -> None:
    """Rewrite every reader of ``cat`` as the module says; ``cat`` is gone after.
    ``widest(conv, part_shapes)``: the most output channels one conv over parts of those
    shapes may have on a preset (``None``: all of them), :mod:`.split_convs`'s. A reader
    that takes no parts reads the joined tensor (:func:`_join`), or, without ``join``, is
    refused."""
    if len(cat.inputs) == 1 and cat.order is None:
        return ops.drop(cat)
    src = ops.ops.get(cat.inputs[0]) if len(cat.inputs) == 1 else None
    if isinstance(src, (ir.Conv2d, ir.Linear)) and not _depthwise(src) and ops.only_reader(
            src.name, cat):   # a dense op's outputs, picked in the order
        rows = [c for _, c in cat.order]
        ops.replace(dataclasses.replace(src, weight=src.weight[rows].copy(),
                                        bias=src.bias[rows].copy()))
        return ops.drop(cat)
    adds = [r for r in ops.readers(cat.name) if r != "<output>" and splits(ops, cat, r)]
    if join and any(r == "<output>" or not (_takes(r) or r in adds)
                    for r in ops.readers(cat.name)):
        _join(ops, cat, adds)
    # each reader is rewritten to read the parts; splitting one may split another into ops
    # that read ``cat`` (an add's other operand, :mod:`.fold_cat_add`), so until none is left
    while readers := ops.readers(cat.name):
        reader = readers[0]
        if reader != "<output>" and splits(ops, cat, reader):
            split_cat(ops, split_add(ops, cat, reader), widest, join)
            continue
        if isinstance(reader, ir.Add) and _ripen(ops, cat, reader, widest, join):
            continue
        if reader == "<output>" or not _takes(reader):
            what = "as the model's output" if reader == "<output>" else \
                f"read by {type(reader).__name__} {reader.name!r}"
            raise UnsupportedOp("cat", cat.where, f"{what}; a concatenation is read by dense "
                                                  f"or depthwise Conv2d, Linear, max or "
                                                  f"average pools and flattens, split along it")
        if isinstance(reader, PER_CHANNEL) or _depthwise(reader):
            _per_channel(ops, cat, reader, widest, join)
        elif isinstance(reader, Cat):   # a concatenation of concatenations: its channels
            ops.replace(_through(reader, {cat.name: cat}))
        else:
            _split_reader(ops, cat, reader, widest, join)
    del ops.ops[cat.name]


def _per_channel(ops, cat: Cat, reader, widest, join: bool) -> None:
    """Per-channel ``reader`` of ``cat`` as one op a part, their concatenation split in turn."""
    parts = [_per_part(reader, i, v, cat) for i, v in enumerate(cat.inputs)]
    joined = Cat(reader.name, cat.where,
                 tuple(ir.out_shape(p, s) for p, s in zip(parts, cat.shapes)),
                 tuple(p.name for p in parts),
                 _flat_order(cat) if isinstance(reader, ir.Flatten) else cat.order)
    replace_with(ops, reader.name, [*parts, joined])
    split_cat(ops, joined, widest, join)


def _ripen(ops, cat: Cat, add, widest, join: bool) -> bool:
    """For ``add`` of ``cat`` and a value that per-channel ops make from another concatenation
    (an overlapping max pool's maxes over a split conv's groups, :mod:`.fold_pools`), which
    will be split into parts but is not yet: split the first of those ops now, which splits
    the ops after it and, at the end, ``add`` as one add a part (:mod:`.fold_cat_add`).
    Whether it did anything."""
    op = ops.ops.get(other_operand(cat, add))
    while isinstance(op, PER_CHANNEL) or _depthwise(op):
        src = ops.ops.get(op.inputs[0])
        if isinstance(src, Cat):
            _per_channel(ops, src, op, widest, join)
            return True
        op = src
    return False


def _through(cat: Cat, inner: dict) -> Cat:
    """``cat`` picking the channels of the concatenations ``inner`` (by name) it reads from
    their inputs instead."""
    picks = []
    for i, c in cat.picks():
        src = inner.get(cat.inputs[i])
        if src is None:
            picks.append((cat.inputs[i], cat.shapes[i], c))
        else:
            k, ck = src.picks()[c]
            picks.append((src.inputs[k], src.shapes[k], ck))
    return gather(cat.name, cat.where, picks)


def flatten_cats(ops, names) -> None:
    """The concatenations ``names`` (in the graph's order) made to read no other: each picks
    its inner ones' inputs' channels; an inner one nothing else reads is dropped."""
    for name in names:
        cat = ops.ops.get(name)
        inner = {v: ops.ops[v] for v in cat.inputs if isinstance(ops.ops.get(v), Cat)} \
            if isinstance(cat, Cat) else None
        if inner:
            ops.replace(_through(cat, inner))
    for name in names:
        if isinstance(ops.ops.get(name), Cat) and not ops.readers(name):
            del ops.ops[name]


def _in_parts(ops, value: str) -> bool:
    """Whether ``value`` is, or will be, a concatenation of several inputs: one, or a
    per-channel op of one (split per part by :func:`split_cat`)."""
    op = ops.ops.get(value)
    while isinstance(op, PER_CHANNEL) or _depthwise(op):
        op = ops.ops.get(op.inputs[0])
    return isinstance(op, Cat) and len(op.inputs) > 1


def split_sources(ops) -> None:
    """A dense conv or Linear read only by concatenations, its output channels split by the
    concatenations that pick them: one op per set of pickers (``<name>.to<k>``, its weights'
    rows), a channel none picks dropped. A reader of a concatenation reads each of its inputs
    whole (its columns of the channels not picked are zeros), so a chunk of a chunk
    (ShuffleNet's passing halves) would read every earlier source in full; split, each
    concatenation reads only what it picks, at the same MACs for the source. Only where each
    concatenation picks from one piece (a reader of two would be a conv and an add more), and
    not for a source that reads a concatenation of several inputs, straight or through
    per-channel ops (each piece would be a sum of parts again)."""
    for op in list(ops.ops.values()):
        if not (isinstance(op, ir.Linear) or (isinstance(op, ir.Conv2d) and op.groups == 1)):
            continue
        readers = ops.readers(op.name)
        if _in_parts(ops, op.inputs[0]) or not readers or not all(
                isinstance(r, Cat) for r in readers):
            continue   # (a sum of parts itself: each piece would be its parts and adds again)
        users = [set() for _ in range(op.weight.shape[0])]
        for r in readers:
            for i, c in r.picks():
                if r.inputs[i] == op.name:
                    users[c].add(r.name)
        classes: dict[frozenset, list[int]] = {}
        for c, u in enumerate(users):
            if u:
                classes.setdefault(frozenset(u), []).append(c)
        if list(classes.values()) == [list(range(len(users)))] or any(
                sum(name in key for key in classes) > 1 for name in {r.name for r in readers}):
            continue   # one piece, or a reader that would read two (an add more)
        pieces, where = [], {}
        for k, rows in enumerate(classes.values()):
            pieces.append(dataclasses.replace(op, name=f"{op.name}.to{k}",
                                              weight=op.weight[rows].copy(),
                                              bias=op.bias[rows].copy()))
            where.update({c: (pieces[-1].name, len(rows), j) for j, c in enumerate(rows)})
        replace_with(ops, op.name, pieces)
        for r in readers:
            ops.replace(gather(r.name, r.where, [
                (where[c][0], _resized(r.shapes[i], where[c][1]), where[c][2])
                if r.inputs[i] == op.name else (r.inputs[i], r.shapes[i], c)
                for i, c in r.picks()]))


def concatenations(ops, names) -> None:
    """The concatenations ``names`` (in the graph's order) gone: each made to read sources only
    (:func:`flatten_cats`), each dense source split by the concatenations that pick its
    channels (:func:`split_sources`), then each one's readers put on its parts
    (:func:`split_cat`)."""
    flatten_cats(ops, names)
    split_sources(ops)
    for name in names:
        if isinstance(ops.ops.get(name), Cat):
            split_cat(ops, ops.ops[name])
