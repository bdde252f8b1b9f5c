"""``hwaccel advise --model FILE.py:NAME`` and ``hwaccel compare --model FILE.py:NAME``: a
user's own model gets the platform rows, its refusals named per preset, and runs on the
backends (the RTL equal to golden); a module without inputs takes ``--input-shape``; every
usage error names the file, the name or the option, before any work."""

from __future__ import annotations

from argparse import Namespace

import pytest

from hwaccel.advise.command import advise_rows, check_args
from hwaccel.cli import main
from hwaccel.models.user_model import is_user_model, load_user_model, parse_shape
from hwaccel.runtime.compare import compare, format_rows

SOURCE = '''
import torch
from torch import nn


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 5))


def with_inputs():
    return net(), torch.randn(24, 3, 8, 8, generator=torch.Generator().manual_seed(1))


instance = net()
number = 3


def broken():
    raise RuntimeError("no weights here")
'''


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "mine.py"
    path.write_text(SOURCE)
    return path


def _args(spec, **changes) -> Namespace:
    args = dict(model=spec, batch="1", presets="tiny,tiny_attention", node=28, asic_mhz=500.0,
                goal="latency", platforms="accel", repeats=1, threads=1, calibration=16,
                no_synth=True, json=False, plot=None, input_shape=None)
    return Namespace(**(args | changes))


def test_a_user_model_gets_its_rows_and_its_refusals_named(model_file):
    rows = advise_rows(_args(f"{model_file}:with_inputs"), log=None)
    by = {r.platform: r for r in rows}
    tiny, attn = by["ASIC tiny (28 nm)"], by["ASIC tiny_attention (28 nm)"]
    assert tiny.cycles is None and "layer '1' is silu (a table on the attention units' GELU " \
                                   "unit)" in tiny.note, tiny
    assert attn.cycles > 0 and attn.latency_us > 0, attn


@pytest.mark.parametrize("name", ["net", "instance"])
def test_a_module_without_inputs_takes_the_input_shape(model_file, name):
    spec = f"{model_file}:{name}"
    module, x = load_user_model(spec, (3, 8, 8), 5)
    assert not module.training and tuple(x.shape) == (5, 3, 8, 8)
    rows = advise_rows(_args(spec, input_shape="3,8,8"), log=None)
    assert [r.cycles > 0 for r in rows if "tiny_attention" in r.platform] == [True]
    with pytest.raises(ValueError, match=r"mine.py:net' gives no inputs: give --input-shape"):
        advise_rows(_args(spec.replace(name, "net")), log=None)


def test_usage_errors_name_what_is_wrong(model_file, tmp_path):
    assert is_user_model("a/b.py:f") and not is_user_model("cnn") and not is_user_model("a:b")
    for spec, match in ((f"{tmp_path}/none.py:net", r"no file '.*none.py'"),
                        (f"{model_file}:absent", r"mine.py defines no 'absent'"),
                        (f"{model_file}:number", r"must be an nn.Module, or return one or "
                                                 r"\(module, inputs\), not int"),
                        (f"{model_file}:broken", r"calling it raised RuntimeError: no weights")):
        with pytest.raises(ValueError, match=match):
            load_user_model(spec, (3, 8, 8), 2)
    with pytest.raises(ValueError, match=r"--input-shape must be one to three positive "
                                         r"integers, comma-separated .*not '3,x'"):
        parse_shape("3,x")
    with pytest.raises(ValueError, match=r"--input-shape must be .*not '0,4'"):
        check_args(_args(f"{model_file}:net", input_shape="0,4"))
    with pytest.raises(ValueError, match=r"--model must be one of cnn, .* or FILE.py:NAME"):
        check_args(_args("mine"))


def test_the_command_line_prints_the_table(model_file, capsys):
    rc = main(["advise", "--model", f"{model_file}:with_inputs", "--presets", "tiny_attention",
               "--platforms", "accel", "--no-synth", "--calibration", "16"])
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith(f"{model_file}:with_inputs, batch 1, goal latency:"), out
    assert "ASIC tiny_attention (28 nm)" in out


def test_compare_runs_a_user_model_on_the_backends(model_file):
    """No labels: no accuracy; the integer backends equal golden, agreement with float."""
    c = compare(f"{model_file}:with_inputs", ["torch-cpu", "torch-int8", "golden", "rtl"],
                samples=4, preset="tiny_attention", calibration=16)
    assert not c.failures and c.float_accuracy is None, c.failures
    rows = {r.backend: r for r in c.rows}
    assert [rows[b].mismatches for b in ("torch-int8", "rtl")] == [0, 0]
    assert all(r.accuracy is None and r.agreement is not None for r in c.rows)
    assert rows["rtl"].cycles_per_sample > 0
    assert format_rows(c).startswith(f"{model_file}:with_inputs on accel_tiny_attention: 4 "
                                     f"samples (no labels: agreement with the float model")
    rc = main(["compare", "--model", f"{model_file}:net", "--input-shape", "3,8,8",
               "--preset", "tiny_attention", "--backends", "torch-int8,golden", "--samples",
               "2", "--calibration", "8", "--no-progress"])
    assert rc == 0
