"""Save the recommended model so it can be loaded and used, with what it was judged on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from greenai.errors import GreenAIError

FORMAT = "greenai-optimized/1"


def save_model(path: Path, model: nn.Module, facts: dict[str, Any]) -> Path:
    """Write the whole module (pickled: quantized and pruned modules have no plain
    state_dict recipe) with `facts` (name, transforms, quality, energy, provenance)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "model": model, "facts": facts}, tmp)
    tmp.replace(path)  # never leave a half-written model under the final name
    return path


def load_model(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model saved by `save_model`: (module in eval mode, facts).

    This unpickles Python objects: load only files you trust (torch.load's own warning)."""
    path = Path(path)
    if not path.is_file():
        raise GreenAIError(f"no saved model at {path}")
    try:
        payload = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as e:
        raise GreenAIError(f"{path} is not a readable greenai model: {type(e).__name__}: {e}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GreenAIError(f"{path} was not written by greenai optimize (format {FORMAT} expected)")
    model = payload["model"]
    model.eval()
    return model, dict(payload.get("facts", {}))
