"""The lowering records which layer emitted each command (``Lowered.layer_pcs``): checked
against what the commands themselves say (their opcode is the layer's kind, their destination
lies in the layer's output block of the memory plan), across weight groups, including a layer
whose weights overflow the weight scratchpad partway (a tall map's bands of rows); ``describe()``
lists the same layers per program; ``hwaccel bench``'s per-layer rows use the same record."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hwaccel
from hwaccel.bench.workloads import layer_commands
from hwaccel.compiler import ir
from hwaccel.compiler.cases import split_bands
from hwaccel.compiler.lower import layout, linear_as_conv
from hwaccel.compiler.memory import plan
from hwaccel.compiler.random_cases import random_dag
from hwaccel.generators.accel import PRESETS
from hwaccel.generators.accel.isa import Op
from hwaccel.generators.accel.model import decode, run_program

TINY = PRESETS["tiny"]


def _ops(cm, op) -> set[Op]:
    """The opcodes layer ``op`` may emit."""
    if isinstance(op, ir.QLinear):
        prev = cm.qgraph.op(op.inputs[0])
        flat = isinstance(prev, ir.QFlatten)
        shape = cm.qgraph.shapes()[prev.inputs[0]] if flat else None
        return {Op.CONV} if flat and linear_as_conv(cm.config, shape, op.w.shape[0]) else {Op.GEMM}
    return {ir.QConv: {Op.CONV}, ir.QMaxPool: {Op.MAXPOOL}, ir.QAvgPool: {Op.AVGPOOL},
            ir.QAdd: {Op.ADD}, ir.QLstm: {Op.LSTM}}[type(op)]


def _check(cm, lowered, batch: int) -> None:
    """Every command's layer, from its opcode and destination; describe()'s groups."""
    cfg, qg = cm.config, cm.qgraph
    vals, blocks = layout(qg, cfg, batch)
    where, words = plan(blocks, cfg), {b.name: b.words for b in blocks}
    ops = {op.name: op for op in qg.ops}
    assert len(lowered.layer_pcs) == len(lowered.programs)
    for k, (p, names) in enumerate(zip(lowered.programs, lowered.layer_pcs)):
        assert len(names) == len(p.commands) and names[-1] == "DONE"
        assert p.layers == tuple(dict.fromkeys(names[:-1]))
        for pc, word in enumerate(p.commands):
            name, c = lowered.layer_of(k, pc), decode(cfg, word)
            if name == "DONE":
                assert c["op"] == Op.DONE and pc == len(p.commands) - 1
                continue
            assert c["op"] in _ops(cm, ops[name]), (k, pc, name, c["op"])
            block = vals[name].block
            assert where[block] <= c["dst"] < where[block] + words[block], (k, pc, name)
    if len(lowered.programs) > 1:
        text = cm.describe()
        for k, p in enumerate(lowered.programs):
            assert f"program {k + 1}: {', '.join(p.layers)} (" in text


@pytest.mark.parametrize("seed", [0, 1, 5, 21, 75])
def test_random_dags_every_command_names_its_layer(seed):
    model, inputs = random_dag(seed, TINY)
    x = inputs(16, torch.Generator().manual_seed(seed))
    cm = hwaccel.compile(model, x[:2], preset=TINY, calibration=x)
    lowered = cm.lower(cm.quantize_input(x[:3]))
    _check(cm, lowered, 3)
    _, names = layer_commands(cm, cm.quantize_input(x[:3]))
    assert names == [list(n) for n in lowered.layer_pcs]


def test_a_layer_split_across_weight_groups_names_both_programs():
    """:func:`~hwaccel.compiler.cases.split_bands`: its sixth layer's bands of rows straddle
    the two programs."""
    model, inputs = split_bands()
    x = inputs(8, torch.Generator().manual_seed(0))
    cm = hwaccel.compile(model, x[:2], preset=TINY, calibration=x)
    x_int = cm.quantize_input(x[:1])
    lowered = cm.lower(x_int)
    _check(cm, lowered, 1)
    assert len(lowered.programs) == 2
    first, second = (p.layers for p in lowered.programs)
    assert first[-1] == second[0] == "5" and "5" not in first[:-1]
    assert lowered.layer_pcs[0][-2:] == ("5", "DONE") and lowered.layer_of(1, 0) == "5"
    act = lowered.builder.act  # the split lowering still computes the model
    for load in lowered.loads():
        act = run_program(TINY, act, load.wgt, load.commands).act
    np.testing.assert_array_equal(lowered.ints(act), cm.int8_forward(x_int))


def test_layer_of_names_the_bad_index():
    model, inputs = random_dag(2, TINY)
    x = inputs(8, torch.Generator().manual_seed(2))
    lowered = hwaccel.compile(model, x[:2], preset=TINY).lower(np.zeros((1, *x.shape[1:]),
                                                                       dtype=np.int64))
    with pytest.raises(IndexError, match="program must be in"):
        lowered.layer_of(1, 0)
    with pytest.raises(IndexError, match="pc must be in"):
        lowered.layer_of(0, len(lowered.programs[0].commands))
