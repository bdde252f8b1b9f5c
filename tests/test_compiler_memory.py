"""The scratchpad plan by liveness: a block lives from the step that writes it to its last
reader (a residual block's input across its branch), freed words are reused, what does not fit
is named with its shortfall, and the largest batch of a graph is exact."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import hwaccel
from hwaccel.compiler import DoesNotFit
from hwaccel.compiler.cases import make
from hwaccel.compiler.lower import layout
from hwaccel.compiler.memory import Block, _plan, plan

CFG = SimpleNamespace(act_depth=100, slug="accel_test")


def test_a_block_lives_until_its_last_reader():
    """``x`` is read at step 0 and again at step 2 (a residual add): steps 0 and 1 must not
    reuse its words, and step 2's output reuses the words of ``a`` (freed after step 1)."""
    blocks = [Block("x", 20, -1, 2), Block("a", 30, 0, 1), Block("b", 30, 1, 2),
              Block("y", 25, 2, None)]
    at = plan(blocks, CFG)
    assert at == {"x": 0, "a": 20, "b": 50, "y": 20}


def test_freed_words_are_reused_in_a_chain():
    """A chain ping-pongs: each step's output goes where the step before last left room."""
    blocks = [Block("in", 40, -1, 0), Block("a", 40, 0, 1), Block("b", 40, 1, 2),
              Block("c", 40, 2, None)]
    assert plan(blocks, CFG) == {"in": 0, "a": 40, "b": 0, "c": 40}


def test_does_not_fit_names_the_tensor_what_is_live_and_the_shortfall():
    blocks = [Block("x", 30, -1, 2), Block("a", 40, 0, 1), Block("b", 50, 1, 2)]
    with pytest.raises(DoesNotFit) as info:
        plan(blocks, CFG)
    msg = str(info.value)
    assert "tensor 'b' (50 words) does not fit the activation scratchpad of accel_test " \
           "(100 words): the largest free range is 30 words" in msg
    assert "'x' (30 words), 'a' (40 words) are live; short by 20 words" in msg


def test_where_first_fit_leaves_pieces_the_steps_ping_pong_between_the_ends():
    """A small map, then two large ones (an upsampling): first-fit puts the first large map
    above the small ones and leaves 24 and 26 free words, too few for the second; with each
    step's blocks at the other end from the last step's, both fit. First-fit's plans stay."""
    blocks = [Block("in", 12, -1, 0), Block("a", 12, 0, 1), Block("b", 50, 1, 2),
              Block("c", 50, 2, None)]
    with pytest.raises(DoesNotFit, match="the largest free range is 26 words"):
        _plan(blocks, CFG, "first")
    assert plan(blocks, CFG) == {"in": 0, "a": 88, "b": 0, "c": 50}
    bigger = [Block("in", 12, -1, 0), Block("a", 12, 0, 1), Block("b", 50, 1, 2),
              Block("c", 51, 2, None)]   # more words than the scratchpad holds at step 2
    with pytest.raises(DoesNotFit, match="tensor 'c' .* largest free range is 26 words"):
        plan(bigger, CFG)


def test_blocks_are_checked():
    with pytest.raises(ValueError, match="read last at step 0, before step 1 writes it"):
        Block("a", 4, 1, 0)
    with pytest.raises(ValueError, match="at least one word"):
        Block("a", 0, 1, 2)


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[0] + b[1] and b[0] < a[0] + a[1]


def test_residual_input_stays_live_on_a_real_model():
    """On the residual model: the block that feeds both a branch and an add overlaps nothing
    written before the add reads it; something is placed in freed words."""
    model, inputs = make("resnet_tiny")
    cm = hwaccel.compile(model, inputs(2, torch.Generator().manual_seed(0)))
    vals, blocks = layout(cm.qgraph, cm.config, 3)
    at = plan(blocks, cm.config)
    span = {b.name: (at[b.name], b.words) for b in blocks}
    by = {b.name: b for b in blocks}
    shortcut = by["stem.0 output"]
    assert shortcut.last == [op.name for op in cm.qgraph.ops].index("add")
    for b in blocks:
        if shortcut.first < b.first <= shortcut.last:
            assert not _overlap(span[b.name], span[shortcut.name]), b.name
    top = max(a + n for a, n in span.values())
    assert top < sum(b.words for b in blocks)  # words were reused


def test_max_batch_is_exact_on_a_graph():
    model, inputs = make("branches")
    gen = torch.Generator().manual_seed(0)
    cm = hwaccel.compile(model, inputs(2, gen), preset="tiny")
    n = cm.max_batch
    x = cm.quantize_input(inputs(n + 1, gen))
    assert cm.lower(x[:n]).batch == n
    with pytest.raises(DoesNotFit, match="short by"):
        cm.lower(x)
