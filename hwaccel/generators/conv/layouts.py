"""Stream payload layouts of the convolution engine and max-pool stage, defined once.

The hardware (:mod:`.engine`, :mod:`.maxpool`, :mod:`.chain`) builds its ports from these, and the
driver (:mod:`.layer`) packs beats with :func:`pack_struct` from the very same layouts, so the
bit positions of a field cannot drift between hardware and software.
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from .config import ConvConfig, PoolConfig

__all__ = ["PADS", "layer_layout", "activation_layout", "weight_layout", "requant_layout",
           "result_layout", "pool_layer_layout", "pool_beat_layout", "pack_struct", "psum_bits"]


#: The descriptor's padding fields, in :attr:`.layer.ConvLayer.pads` order.
PADS = ("pad_top", "pad_left", "pad_bottom", "pad_right")


def layer_layout(cfg: ConvConfig) -> data.StructLayout:
    """One layer descriptor: the shape and the sizes the driver derived from it (:mod:`.layer`)."""
    return data.StructLayout({
        "width": range(cfg.max_width + 1),
        "height": range(cfg.max_height + 1),
        "kernel_h": range(cfg.max_kernel + 1),
        "kernel_w": range(cfg.max_kernel + 1),
        "pad_top": range(cfg.max_pad + 1),
        "pad_left": range(cfg.max_pad + 1),
        "pad_bottom": range(cfg.max_pad + 1),
        "pad_right": range(cfg.max_pad + 1),
        # Stride 2 (else 1) down the rows and along the columns.
        "stride2_h": 1,
        "stride2_w": 1,
        "relu": 1,
        "pool": 1,
        "packed": 1,
        # Depthwise (groups = channels): taps across the lanes, channels across the block.
        "depthwise": 1,
        "groups": range(cfg.max_groups + 1),
        "blocks": range(cfg.max_blocks + 1),
        "shift_lanes": range(cfg.lanes + 1),
        "row_lanes": range(cfg.lanes + 1),
        "rows_per_chunk": range(cfg.lanes + 1),
        "weight_words": range(cfg.weight_depth + 1),
        "out_width": range(cfg.max_width + 1),
        "out_height": range(cfg.max_height + 1),
        # Modes for a host that tiles work across layers (the accelerator): start each block
        # from a stored partial sum instead of the bias, store the block's sum instead of only
        # emitting it, keep the weights already on chip instead of loading new ones.
        "acc_in": 1,
        "acc_out": 1,
        "reuse": 1,
    })


def psum_bits(cfg: ConvConfig) -> int:
    """One partial-sum word: a result beat's ``block`` accumulators, ``acc_bits`` each."""
    return cfg.block * cfg.acc_bits


def activation_layout(cfg: ConvConfig) -> data.ArrayLayout:
    """One channel group of one pixel: ``lanes`` int8 channels (unused lanes are don't-care)."""
    return data.ArrayLayout(signed(8), cfg.lanes)


def weight_layout(cfg: ConvConfig) -> data.ArrayLayout:
    """One weight word: lane ``k`` holds the ``block`` output channels' weights of element ``k``."""
    return data.ArrayLayout(data.ArrayLayout(signed(8), cfg.block), cfg.lanes)


def requant_layout(cfg: ConvConfig) -> data.ArrayLayout:
    """Per output channel of a block: int32 bias, requantize multiplier and shift (numerics)."""
    return data.ArrayLayout(data.StructLayout({
        "bias": signed(32),
        "multiplier": unsigned(cfg.mult_bits),
        "shift": unsigned(cfg.shift_bits),
    }), cfg.block)


def result_layout(cfg: ConvConfig) -> data.StructLayout:
    return pool_beat_layout(cfg.pool_config)


def pool_beat_layout(cfg: PoolConfig) -> data.StructLayout:
    """``lanes`` int8 channels; ``last`` marks the final beat of a layer."""
    return data.StructLayout({"data": data.ArrayLayout(signed(8), cfg.lanes), "last": 1})


def pool_layer_layout(cfg: PoolConfig) -> data.StructLayout:
    """The max-pool's per-layer descriptor: its input map and whether to pool or pass through."""
    return data.StructLayout({
        "width": range(cfg.max_width + 1),
        "height": range(cfg.max_height + 1),
        "blocks": range(cfg.max_blocks + 1),
        "enable": 1,
    })


def pack_struct(layout: data.StructLayout, values: dict) -> int:
    """Pack ``values`` (field -> int) into one integer at the layout's field offsets."""
    word = 0
    for name, field in layout:
        v = int(values[name])
        width = field.width
        if not (-(1 << width) < v < (1 << width)):
            raise ValueError(f"{name} = {v} does not fit its {width}-bit field")
        word |= (v & ((1 << width) - 1)) << field.offset
    unknown = set(values) - {name for name, _ in layout}
    if unknown:
        raise ValueError(f"unknown descriptor field(s) {sorted(unknown)}")
    return word
