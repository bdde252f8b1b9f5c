"""A synthetic pipeline of stages tuned to equal occupancy: GPipe's bubble law, exactly.

:mod:`.pp_model` shows that a pipeline whose stages occupy their instances ``O`` cycles a
sample each, and whose output copies never outlast their inputs, has a fill of ``p O`` and so
the bubble fraction ``(p - 1) / (m + p - 1)`` of GPipe. A compiled model's stages are never
that equal; :func:`equal_stages` builds three that are, from element-wise ADD jobs (one word a
cycle, so a job's length sets the cycles to the cycle):

* stage 0 receives ``2 n`` words from the host and adds their two halves into ``n`` words;
* stage 1 adds its ``n`` words to themselves, and so does stage 2, whose ``n`` words the host
  reads back;
* each stage then runs *pad* ADDs over views of its own input into words nothing reads, as
  long as it takes to bring its occupancy (:func:`.pp_model.occupancy`) to the common ``O``.

The host's input (``2 n`` words, one a cycle) is at least as long as the copy of ``n`` words on
the links ``equal_stages`` accepts, so stage 0's copy hides behind its next input, and the
copies between stages are of equal length. Every stage's input and output words are apart, so
no stage but the last holds (:func:`.pp_model.holds`). :func:`reference` runs the stage
programs one after the other on one scratchpad with the golden interpreter: the pipeline's
outputs must equal it, word for word.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..generators.accel.driver import encode
from ..generators.accel.isa import Op
from ..generators.accel.perf import program_perf
from ..numerics import add_params
from .pp import Boundary, Partition, Stage
from .pp_model import RUN_SEEN, copy_cycles, model, occupancy
from .pp_sim import run_in_turn, simulate

__all__ = ["equal_stages", "reference", "law_rows"]

_P = add_params(0.5, 0.5)


def _add(cfg, a: int, b: int, dst: int, words: int) -> int:
    """ADD of ``words`` words at ``a`` and at ``b`` into ``dst``."""
    fields = {"src2": b, "mult_a": _P.multiplier_a, "mult_b": _P.multiplier_b,
              "shift": _P.shift, "relu": 0}
    return encode(cfg, Op.ADD, src=a, dst=dst, count=words, add=fields)


def _cycles(cfg, commands) -> int:
    return program_perf(cfg, commands).counters["cycles"]


def _program(cfg, main: int, source: Boundary, scratch: int, target: int) -> list[int] | None:
    """``main``, then pads over ``source`` into the words at ``scratch`` (which nothing reads),
    then DONE, of exactly ``target`` cycles; ``None`` if the pads cannot hit it."""
    done = encode(cfg, Op.DONE)
    cmds = [main]
    while _cycles(cfg, [*cmds, done]) < target:
        for n in range(source.words, 0, -1):   # the longest pad that does not overshoot
            pad = _add(cfg, source.addr, source.addr, scratch, n)
            if _cycles(cfg, [*cmds, pad, done]) <= target:
                cmds.append(pad)
                break
        else:
            return None
    cmds.append(done)
    return cmds if _cycles(cfg, cmds) == target else None


def equal_stages(cfg, link, n: int = 16) -> Partition:
    """Three stages of ``n``-word boundaries on ``cfg`` whose occupancies over ``link`` are
    equal (the module docstring), at the least common occupancy the pads reach exactly.

    Raises
    ------
    ValueError
        If the host's ``2 n`` input words are shorter than a copy of ``n`` words on ``link``
        (the copy would not hide behind the next input), or the words do not fit ``cfg``.
    """
    copy = copy_cycles(link, n)
    if 2 * n < copy:
        raise ValueError(f"a copy of {n} words takes {copy} cycles on the link, longer than "
                         f"the host's {2 * n} input words: stage 0's copy would set its period")
    if 7 * n > cfg.act_depth:
        raise ValueError(f"{7 * n} words of boundaries and pads do not fit the "
                         f"{cfg.act_depth}-word activation scratchpad of {cfg.slug}")
    x, y = Boundary(0, 2 * n, ("x",)), [Boundary((2 + k) * n, n, (f"y{k}",)) for k in range(3)]
    ins = (x, y[0], y[1])
    mains = (_add(cfg, 0, n, y[0].addr, n), *(_add(cfg, y[k - 1].addr, y[k - 1].addr,
                                                   y[k].addr, n) for k in (1, 2)))
    fixed = [2 * n + RUN_SEEN, copy + RUN_SEEN, copy + n + RUN_SEEN]   # transfers, RUN_SEEN
    done = encode(cfg, Op.DONE)
    least = max(f + _cycles(cfg, [c, done]) for f, c in zip(fixed, mains))
    for target in range(least, least + 4 * n):
        cmds = [_program(cfg, mains[k], ins[k], 5 * n, target - fixed[k]) for k in range(3)]
        if all(c is not None for c in cmds):
            break
    else:
        raise ValueError(f"no pads of ADDs bring the stages to one occupancy within {4 * n} "
                         f"cycles of {least} on {cfg.slug}")
    stages = tuple(Stage(k, (f"add{k}",), 0, tuple(c), (), 0, ins[k], y[k], _cycles(cfg, c))
                   for k, c in enumerate(cmds))
    part = Partition(cfg, stages, None)
    occ = occupancy(part, link)
    assert occ == [target] * 3, (occ, target)
    return part


def reference(part: Partition, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Per sample (stage 0's input words, ``words x lanes`` int8), the last stage's output
    words from the stage programs run one after the other on one scratchpad by the golden
    interpreter."""
    cfg, st = part.config, part.stages
    out = []
    for words in inputs:
        act = np.zeros((cfg.act_depth, cfg.lanes), dtype=np.int64)
        act[st[0].input.addr:st[0].input.addr + st[0].input.words] = words
        act = run_in_turn(cfg, act, [(f"stage {s.index}", list(s.wgt) or [0] * cfg.wgt_depth,
                                      list(s.commands)) for s in st])
        b = st[-1].output
        out.append(np.asarray(act[b.addr:b.addr + b.words]))
    return out


def law_rows(design, pcfg, samples=(1, 2, 4, 8, 16, 32), seed: int = 5) -> list[dict]:
    """Per sample count ``m``: :func:`equal_stages` streamed through the top ``design`` of
    ``pcfg`` (:func:`.pp_sim.simulate`) on random int8 inputs: cycles measured and modelled,
    fill, period, the bubble fraction measured and GPipe's, and the outputs' mismatches
    against :func:`reference`."""
    part = equal_stages(pcfg.accel, pcfg.link)
    occ = occupancy(part, pcfg.link)[0]
    rng = np.random.default_rng(seed)
    rows, p = [], len(part.stages)
    for m in samples:
        inputs = [rng.integers(-128, 128, (part.stages[0].input.words, pcfg.accel.lanes))
                  for _ in range(m)]
        words, t = simulate(design, pcfg, part, inputs)
        predicted = model(part, m, pcfg.link)
        bad = sum(not np.array_equal(w, r) for w, r in zip(words, reference(part, inputs)))
        rows.append({"samples": m, "cycles": t.cycles, "model_cycles": predicted.cycles,
                     "every_cycle_equal": t.rows() == predicted.rows(), "fill": t.fill,
                     "period": t.period, "occupancy": occ,
                     "bubble_fraction": str(t.bubbles),
                     "gpipe": str(Fraction(p - 1, m + p - 1)),
                     "equal": t.bubbles == Fraction(p - 1, m + p - 1), "mismatches": bad})
    return rows


def main() -> int:
    """``python -m hwaccel.parallel.pp_equal [--json]``: :func:`law_rows` on the tiny
    three-instance top; exit 1 unless every row meets the law, equals its model and matches."""
    import json
    import sys

    from ..generators.accel.config import PRESETS
    from ..generators.link.config import PRESETS as LINKS
    from ..generators.multi import PipelineConfig
    from ..sim.runner import design_for

    pcfg = PipelineConfig(PRESETS["tiny"], 3, LINKS["tiny"], name="tiny3")
    rows = law_rows(design_for(pcfg), pcfg)
    if "--json" in sys.argv[1:]:
        print(json.dumps(rows, indent=2))
    else:
        keys = list(rows[0])
        width = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
        for line in [dict(zip(keys, keys)), *rows]:
            print("  ".join(str(line[k]).rjust(width[k]) for k in keys))
    ok = all(r["equal"] and r["every_cycle_equal"] and r["mismatches"] == 0
             and r["cycles"] == r["model_cycles"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
