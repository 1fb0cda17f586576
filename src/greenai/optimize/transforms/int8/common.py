"""Shared pieces of the int8 transforms: engine selection, library probes and versions,
quiet use of the deprecated torch.ao API, and size/inspection helpers.

`torch.ao.quantization` is deprecated in favour of torchao (pytorch/ao#2259). It stays
the fallback here because on x86 its fbgemm/oneDNN kernels are real int8 VNNI kernels in
eager mode, while torchao's eager int8 path and its PT2E path are slower without
`torch.compile` (measurements in quantize_dynamic.py and quantize_static.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from greenai.optimize.candidate import OptimizeTask, as_args

# Library versions these transforms were written and tested against (major.minor). The
# project pins them in its extras; a different version still runs, with a note.
TESTED_VERSIONS = {"torch": "2.13", "torchao": "0.18"}

QUANTIZABLE_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
RNN_LAYERS: tuple[type[nn.Module], ...] = (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell)


def torchao_available() -> bool:
    return importlib.util.find_spec("torchao") is not None


def torch_ao_available() -> bool:
    try:
        from torch.ao.quantization import quantize_dynamic  # noqa: F401
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx  # noqa: F401
    except ImportError:
        return False
    return True


def library_versions() -> dict[str, str]:
    versions = {"torch": torch.__version__.split("+")[0]}
    if torchao_available():
        from importlib.metadata import PackageNotFoundError, version

        try:
            versions["torchao"] = version("torchao")
        except PackageNotFoundError:
            pass
    return versions


def untested_versions(libraries: tuple[str, ...] = ("torch", "torchao")) -> str | None:
    """A note naming libraries whose major.minor differs from TESTED_VERSIONS, or None."""
    found = library_versions()
    odd = [
        f"{lib} {found[lib]} (tested {TESTED_VERSIONS[lib]})"
        for lib in libraries
        if lib in found and not (found[lib] + ".").startswith(TESTED_VERSIONS[lib] + ".")
    ]
    return "untested versions: " + ", ".join(odd) if odd else None


@contextlib.contextmanager
def quiet_torch_ao() -> Iterator[None]:
    """Silence torch.ao's deprecation warnings (we know; see the module docstring)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message=r".*must run observer before calling.*")
        yield


@contextlib.contextmanager
def quiet_torchao_import() -> Iterator[None]:
    """Hide torchao's import-time log noise (optional CUDA/Triton kernels it cannot load on
    a CPU-only machine, a torch pytree deprecation); real errors still raise."""
    import logging

    names = ("torchao", "torchao.kernel.intmm", "torch.utils._pytree")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def quantized_engine(engine: str) -> Iterator[None]:
    """Set torch's quantized engine (which packs int8 weights) for the block, then restore."""
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def example_inputs(task: OptimizeTask) -> tuple[Any, ...]:
    """The first calibration batch as a tuple of positional arguments."""
    batches = task.calibration_batches(limit=1)
    if not batches:
        from greenai.errors import TransformSkipped

        raise TransformSkipped("the task has no inputs to trace or calibrate with")
    return as_args(batches[0])


def is_torch_ao_quantized(module: nn.Module) -> bool:
    """A module from torch.ao's int8 namespaces (quantized, dynamic, intrinsic quantized)."""
    where = type(module).__module__
    return (
        where.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized"))
        and ".reference" not in where
        and not type(module).__name__.endswith("PackedParams")
        and (
            hasattr(module, "_packed_params")
            or hasattr(module, "_weight_bias")
            or hasattr(module, "_all_weight_values")
        )
    )


def is_torchao_quantized(module: nn.Module) -> bool:
    """A module whose weight torchao replaced with a quantized tensor subclass."""
    weight = getattr(module, "weight", None)
    return isinstance(weight, torch.Tensor) and type(weight).__module__.startswith("torchao")


def quantized_module_names(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if is_torch_ao_quantized(m) or is_torchao_quantized(m)]
