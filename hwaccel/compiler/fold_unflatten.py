"""A vector viewed as an image: ``x.view(-1, C, H, W)`` or ``nn.Unflatten(1, (C, H, W))`` after
a Linear, a decoder's or a generator's way into its first feature map.

Channels-last, a ``(K,)`` vector's words are a ``(K, 1, 1)`` image's: a pixel's channels a
word apart (:class:`~.ir_float.Unflatten`, no data moved). And ``C f f`` values in PyTorch's
``(c, a, b)`` order are pixel_shuffle's input: channel ``c f f + a f + b`` is channel ``c`` at
``(a, b)``. So a view as a ``(C, f, f)`` image is a :class:`~.ir_float.DepthToSpace` by ``f``
of the one-pixel image, which the accelerator writes from the 1 x 1 conv before it
(:func:`.lower_types.depth_to_space_convs`): the Linear before the view, where the view alone
reads it and its input is a vector (not an image's flatten), becomes that conv over its input
seen as one pixel (the same weights and products); otherwise
:func:`.trace_upsample.with_writers` puts an identity 1 x 1 conv in front.

The tracer leaves an :class:`ImageOf` marker; batch norms and ReLUs after it fold through it
into the Linear before it (:mod:`.fold`), as through a depth-to-space, and :func:`expand` then
makes it these ops.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ir
from .errors import UnsupportedOp
from .fold_cat import replace_with

__all__ = ["ImageOf", "image_of", "expand"]


@dataclass(frozen=True, eq=False)
class ImageOf:
    """A ``(C f f,)`` vector viewed as the ``(C, f, f)`` image ``shape``."""

    name: str
    where: str
    shape: tuple[int, int, int]
    inputs: tuple[str, ...] = ()

    @property
    def factor(self) -> int:
        return self.shape[1]


def image_of(name: str, where: str, shape: tuple[int, int, int]) -> ImageOf:
    """The marker of a vector's view as ``shape``; refused by name unless it is square."""
    if shape[1] != shape[2]:
        raise UnsupportedOp("reshape", where, f"a vector to the image {tuple(shape)}: only a "
                                              f"square one, (C, f, f), a depth-to-space of "
                                              f"its one pixel")
    return ImageOf(name, where, tuple(shape))


def expand(ops, view: ImageOf) -> None:
    """Replace ``view`` in the op table ``ops`` (:class:`.fold.OpTable`) by the module's
    ops."""
    (x,) = view.inputs
    f, lin = view.factor, ops.ops.get(x)
    if f == 1:
        return replace_with(ops, view.name, [ir.Unflatten(view.name, inputs=(x,))])
    if isinstance(lin, ir.Linear) and ops.only_reader(x, view) and not isinstance(
            ops.ops.get(lin.inputs[0]), ir.Flatten):   # the Linear is the 1 x 1 conv
        image = ir.Unflatten(f"{x}.image", inputs=lin.inputs)
        conv = ir.Conv2d(x, lin.weight[:, :, None, None], lin.bias, relu=lin.relu, cap=lin.cap,
                         inputs=(image.name,))
        replace_with(ops, x, [image, conv])
        return replace_with(ops, view.name, [ir.DepthToSpace(view.name, f, inputs=(x,))])
    image = ir.Unflatten(f"{view.name}.image", inputs=(x,))
    replace_with(ops, view.name, [image, ir.DepthToSpace(view.name, f, inputs=(image.name,))])
