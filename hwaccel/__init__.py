"""hwaccel: deep-learning accelerator generators in Amaranth, verified against PyTorch."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``hwaccel.compile`` imports the compiler, the runtime (and torch) only when it is first
    # used, so ``import hwaccel`` stays light for the generators and the CLI.
    if name == "compile":
        from .runtime.runnable import compile

        return compile
    if name == "NonFiniteError":  # what compile and every backend raise for NaN or inf
        from .compiler.errors import NonFiniteError

        return NonFiniteError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
