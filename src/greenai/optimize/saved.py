"""Save the recommended model so it can be loaded and used, with what it was judged on.

`save_recommended(study, path)` saves a study's recommended candidate (`try_save_recommended`
says why not instead of raising); `save_model` and `load_model` write and read any model.
Two formats, tried in order:
- the pickled module (`torch.save(model)`), kept only if it loads back — pruned, distilled,
  bf16-wrapped and dynamically quantized modules do;
- TorchScript traced on an example batch (`torch.jit.trace`), for modules whose pickling
  does not round-trip (FX-converted static int8 modules: their fused quantized layers fail
  to unpickle in torch 2.13).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from greenai.errors import GreenAIError

if TYPE_CHECKING:
    from greenai.optimize.search import Study

FORMAT = "greenai-optimized/1"


def save_model(path: Path, model: nn.Module, facts: dict[str, Any], example: tuple | None = None) -> Path:
    """Write `model` with `facts` (name, transforms, quality, energy, provenance); `example`
    (a batch, as positional arguments) enables the TorchScript fallback."""
    path = Path(path)
    with _quiet_storage_warning():
        payload = _pickled(model) or _scripted(model, example)
    if payload is None:
        raise GreenAIError(
            "this model can be neither pickled nor traced to TorchScript; "
            "save its recipe (the transforms above) and rebuild it instead"
        )
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _quiet_storage_warning():
            torch.save({"format": FORMAT, "kind": payload[0], "model": payload[1], "facts": facts}, tmp)
        tmp.replace(path)  # never leave a half-written model under the final name
    except Exception as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise GreenAIError(f"cannot write the model to {path}: {type(e).__name__}: {e}") from None
    return path


def save_recommended(study: Study, path: Path, example: tuple | None = None) -> Path | None:
    """Save the recommended candidate's model with the facts it was judged on (None when
    nothing was recommended); GreenAIError when the model cannot be saved."""
    rec = study.recommended
    if rec is None or rec.candidate is None:
        return None
    m = rec.measurement
    return save_model(
        path,
        rec.candidate.model,
        {
            "name": rec.name,
            "transforms": list(rec.transforms),
            "quality": rec.quality,
            "quality_name": study.quality_name,
            "energy_per_sample_j": m.energy_per_sample_j if m else None,
            "provenance": m.provenance.value if m else None,
            "study_id": study.study_id,
            "threads": rec.candidate.threads,
            "batch_size": rec.candidate.extra.get("batch_size"),
        },
        example,
    )


def try_save_recommended(study: Study, path: Path, example: tuple | None = None) -> tuple[Path | None, str | None]:
    """(saved path, None), or (None, why not): a model that cannot be saved must not cost
    the user the results of the search that found it."""
    try:
        return save_recommended(study, path, example), None
    except GreenAIError as e:
        return None, str(e)


def load_model(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model saved by `save_model`: (module in eval mode, facts).

    This unpickles Python objects: load only files you trust (torch.load's own warning)."""
    path = Path(path)
    if not path.is_file():
        raise GreenAIError(f"no saved model at {path}")
    try:
        with _quiet_storage_warning():
            payload = torch.load(path, weights_only=False, map_location="cpu")
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise GreenAIError(f"{path} was not written by greenai optimize (format {FORMAT} expected)")
        model = payload["model"]
        if payload.get("kind") == "torchscript":
            model = torch.jit.load(io.BytesIO(model), map_location="cpu")
    except GreenAIError:
        raise
    except Exception as e:
        raise GreenAIError(f"{path} is not a readable greenai model: {type(e).__name__}: {e}") from None
    model.eval()
    return model, dict(payload.get("facts", {}))


@contextlib.contextmanager
def _quiet_storage_warning() -> Iterator[None]:
    """Quantized modules pickle through torch's legacy TypedStorage path, which warns on every
    save and load; the warning is torch's internal business, not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        yield


def _pickled(model: nn.Module) -> tuple[str, nn.Module] | None:
    """("module", model) if the pickled module loads back, else None."""
    buffer = io.BytesIO()
    try:
        torch.save(model, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=False)
    except Exception:
        return None
    return "module", model


def _scripted(model: nn.Module, example: tuple | None) -> tuple[str, bytes] | None:
    """("torchscript", bytes) traced on `example`, else None (no example, or tracing fails)."""
    if example is None:
        return None
    buffer = io.BytesIO()
    try:
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(model.eval(), example, check_trace=False)
        torch.jit.save(traced, buffer)
    except Exception:
        return None
    return "torchscript", buffer.getvalue()
