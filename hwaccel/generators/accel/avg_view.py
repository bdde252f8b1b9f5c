"""The AVGPOOL command's view of a pool: the map, blocks and windows the unit is told.

The element-wise unit keeps one accumulator word per block (``AccelConfig.avg_max_blocks``) and
reads a window row as ``kw x blocks`` consecutive words. A pool over a tensor of more blocks
than that still runs as one command when its windows span whole rows (``kw`` = the map's width,
as every global average pool does): a window's pixels are then consecutive in the scratchpad,
so the command can describe the tensor as a map of one pixel a row (``height x width`` rows),
each row ``G`` pixels of ``g`` blocks (``G x g`` = the tensor's blocks, ``g`` at most the
unit's), with windows ``kh x width`` rows tall and one such pixel wide. Window ``(oy, j)`` then
sums block group ``j`` of the pixels of window row ``oy``, and the output is ``out_height x G``
pixels of ``g`` blocks: word for word the ``out_height x 1`` pixels of all the blocks that the
pool writes. Every lane's sum, count and rounding are those of the plain command, so the
result is the same int8 average; the unit reads the same words once each, so the cycles are
those of the plain command too (:func:`.perf.eltwise_cycles`).
"""

from __future__ import annotations

from .config import AccelConfig

__all__ = ["avg_fields"]


def avg_fields(cfg: AccelConfig, height: int, width: int, blocks: int, kh: int, kw: int
               ) -> dict:
    """The AVGPOOL command's ``width, height, blocks, kw, kh, out_width, out_height`` for
    ``kh x kw`` windows over a ``height x width`` map of ``blocks`` words a pixel; a
    :class:`ValueError` that names the limit where the unit cannot run it."""
    c, most = cfg.conv, cfg.avg_max_blocks
    if blocks <= most:
        for name, value, top in (("height", height, c.max_height),
                                 ("width", width, c.max_width)):
            if value > top:
                raise ValueError(f"avgpool {name} must be at most {top} on {cfg.slug}, "
                                 f"not {value!r}")
        return {"width": width, "height": height, "blocks": blocks, "kw": kw, "kh": kh,
                "out_width": width // kw, "out_height": height // kh}
    need = (f"avgpool over {blocks * cfg.lanes} channels ({blocks} words a pixel) on "
            f"{cfg.slug}: its AVGPOOL unit keeps {most} words (avg_max_blocks, "
            f"{most * cfg.lanes} channels)")
    if kw != width:
        raise ValueError(f"{need}, and pools more only with windows as wide as the map "
                         f"(global pooling), not {kh}x{kw} over {height}x{width}")
    g = max(d for d in range(1, most + 1) if blocks % d == 0)
    rows, per_row = height * width, blocks // g
    if rows > c.max_height or per_row > c.max_width:
        raise ValueError(f"{need}; more are pooled as a map of one pixel a row, here "
                         f"{rows} rows of {per_row} x {g} words, and {cfg.slug}'s maps are at "
                         f"most {c.max_height} rows of {c.max_width} pixels")
    return {"width": per_row, "height": rows, "blocks": g, "kw": 1, "kh": kh * width,
            "out_width": per_row, "out_height": height // kh}
