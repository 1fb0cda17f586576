"""Aggregate op records: per module (a layer table) and per (op class, dtype).

``per_layer`` answers "where do the FLOPs and bytes go"; ``by_class`` gives the totals
the energy model multiplies by per-class coefficients (E = sum_i E_i * C_i).
"""

from __future__ import annotations

from dataclasses import dataclass

from greenai.estimate.counting import EstimateError
from greenai.estimate.ops import OpClass, OpCounts, Pass

__all__ = ["LayerRow", "per_layer", "by_class", "truncate_module"]

_PASS_ORDER = {Pass.FORWARD: 0, Pass.BACKWARD: 1, Pass.OPTIMIZER: 2}


@dataclass(frozen=True, slots=True)
class LayerRow:
    """Totals of one module path (possibly truncated) in one pass."""

    module: str  # dotted module path, "" for the model itself / ops outside any module
    pass_: Pass
    flops: float
    bytes_read: float
    bytes_written: float
    calls: int  # number of aten op records

    @property
    def bytes_moved(self) -> float:
        return self.bytes_read + self.bytes_written


def truncate_module(path: str, depth: int | None) -> str:
    """Keep the first `depth` components of a dotted module path ("a.b.c", 2 -> "a.b");
    depth 0 maps everything to "" (the whole model); None keeps the full path."""
    if depth is None or not path:
        return path
    if depth < 0:
        raise EstimateError(f"depth must be >= 0 or None, not {depth}")
    return ".".join(path.split(".")[:depth])


def per_layer(counts: OpCounts, depth: int | None = None) -> list[LayerRow]:
    """One row per (module path truncated to `depth`, pass); rows in pass order
    (forward, backward, optimizer), then in order of first appearance in that pass."""
    totals: dict[tuple[str, Pass], list[float]] = {}
    for r in counts.records:
        key = (truncate_module(r.module, depth), r.pass_)
        acc = totals.get(key)
        if acc is None:
            acc = totals[key] = [0.0, 0.0, 0.0, 0]
        acc[0] += r.flops
        acc[1] += r.bytes_read
        acc[2] += r.bytes_written
        acc[3] += 1
    keys = sorted(totals, key=lambda k: _PASS_ORDER[k[1]])  # stable: keeps first appearance
    return [
        LayerRow(module, pass_, totals[(module, pass_)][0], totals[(module, pass_)][1],
                 totals[(module, pass_)][2], int(totals[(module, pass_)][3]))
        for module, pass_ in keys
    ]


def by_class(counts: OpCounts) -> dict[tuple[OpClass, str], tuple[float, float, int]]:
    """(op class, dtype) -> (flops, bytes moved (read + written), calls), all passes."""
    out: dict[tuple[OpClass, str], tuple[float, float, int]] = {}
    for r in counts.records:
        key = (r.op_class, r.dtype)
        flops, nbytes, calls = out.get(key, (0.0, 0.0, 0))
        out[key] = (flops + r.flops, nbytes + r.bytes_read + r.bytes_written, calls + 1)
    return out
