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

__all__ = ["avg_fields", "avg_parts"]


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


def avg_parts(cfg: AccelConfig, height: int, width: int, blocks: int, kh: int, kw: int
              ) -> list[tuple[int, int, dict]]:
    """The AVGPOOL commands of ``kh x kw`` windows over a ``height x width`` map of ``blocks``
    words a pixel: ``(src, dst, fields)`` each, ``src`` and ``dst`` word offsets into the input
    and the output tensor. One command where :func:`avg_fields` describes the pool; else bands
    of whole window rows, as many as the unit's ``max_height`` rows hold, each a command over
    its rows' words (consecutive in the scratchpad, as are its outputs'):

    * a map wider than the unit's rows under windows as wide as the map (a long line's global
      pool, ``AdaptiveAvgPool1d(1)``): each window is ``kh x width`` consecutive pixels, so a
      band describes it as ``kh' x w'`` rows of the widest ``w'`` that divides it and fits;
    * a map taller than the unit's rows, as it is;
    * more blocks than the unit keeps (:func:`avg_fields`' one pixel a row) over more rows.

    Every window's words, count and rounding are the plain command's, so each output is the
    same int8 average. A :class:`ValueError` that names the limit where none of these fits,
    or the window where it is not a positive size within the map and ``avg_max_window``."""
    for name, v in (("kh", kh), ("kw", kw)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"avgpool {name} must be a positive integer, not {v!r}")
    if kh > height or kw > width:
        raise ValueError(f"avgpool window {kh}x{kw} is larger than the {height}x{width} map")
    if kh * kw > cfg.avg_max_window:
        raise ValueError(f"avgpool window {kh}x{kw} averages {kh * kw} values; "
                         f"{cfg.slug} averages at most {cfg.avg_max_window} (avg_max_window)")
    try:
        return [(0, 0, avg_fields(cfg, height, width, blocks, kh, kw))]
    except ValueError as err:
        refusal = err
    c, most = cfg.conv, cfg.avg_max_blocks
    oh, ow = height // kh, width // kw
    if blocks <= most and width <= c.max_width and kh <= c.max_height:
        rows, band = kh, {"width": width, "blocks": blocks, "kw": kw, "kh": kh, "out_width": ow}
    elif blocks <= most and kw == width:
        w2 = max(d for d in range(1, c.max_width + 1) if (kh * width) % d == 0)
        rows = kh * width // w2
        band = {"width": w2, "blocks": blocks, "kw": w2, "kh": rows, "out_width": 1}
    elif blocks > most and kw == width:
        g = max(d for d in range(1, most + 1) if blocks % d == 0)
        rows = kh * width
        band = {"width": blocks // g, "blocks": g, "kw": 1, "kh": rows,
                "out_width": blocks // g}
    else:
        raise refusal
    if rows > c.max_height or band["width"] > c.max_width:
        raise refusal
    per = c.max_height // rows            # window rows a command
    return [(oy * kh * width * blocks, oy * ow * blocks,
             band | {"height": min(per, oh - oy) * rows, "out_height": min(per, oh - oy)})
            for oy in range(0, oh, per)]
