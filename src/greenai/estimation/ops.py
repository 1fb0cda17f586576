"""What a model does, counted per operation: the contract between op counting and the
energy/time model.

An operation falls in one *class* whose cost on a machine is calibrated as a whole
(see calibrate.py): the classes are chosen so that one roofline (peak rate, bandwidth,
fixed overhead per call) describes each of them reasonably on CPUs and GPUs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class OpClass(str, enum.Enum):
    MATMUL = "matmul"  # mm, bmm, addmm, linear, baddbmm, scaled-dot-product attention
    CONV = "conv"  # dense and grouped convolutions (groups < channels)
    DEPTHWISE_CONV = "depthwise_conv"  # groups == in_channels: memory-bound on most hardware
    RECURRENT = "recurrent"  # fused LSTM/GRU cells where the backend has them
    ELEMENTWISE = "elementwise"  # activations, add/mul, dropout, optimizer updates
    NORMALIZATION = "normalization"  # batch/layer/group norm
    SOFTMAX = "softmax"  # softmax, log_softmax, cross entropy
    REDUCTION = "reduction"  # sum, mean, max, pooling
    EMBEDDING = "embedding"  # embedding lookups (gathers) and their backward (scatters)
    DATA_MOVEMENT = "data_movement"  # copies, cat, transposes made contiguous, indexing
    COMMUNICATION = "communication"  # collectives (all_reduce, ...): bytes over a link


class Pass(str, enum.Enum):
    FORWARD = "forward"
    BACKWARD = "backward"
    OPTIMIZER = "optimizer"


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One call of one aten operator."""

    op: str  # aten name, e.g. "aten.addmm.default"
    op_class: OpClass
    dtype: str  # dtype of the main input, e.g. "float32", "bfloat16", "qint8"
    flops: float  # floating-point (or integer) operations; a multiply-add counts as 2
    bytes_read: float
    bytes_written: float
    module: str  # dotted path of the innermost nn.Module running it ("" at top level)
    pass_: Pass
    # the operator started a call made from Python (forward, optimizer); False: issued from
    # C++ inside another call (nn.GRU's per-step ops) or by the autograd engine (backward)
    python_call: bool = True
    # a regime of the operator that is calibrated apart from its class ("" for none), e.g.
    # SINGLE_IMAGE: oneDNN runs a convolution of one image on another, far cheaper, path
    variant: str = ""
    # bytes of the outputs this call allocates anew that are at least ALWAYS_MAPPED_BYTES each:
    # fresh pages from the kernel on every call, each page faulted in when first written
    mapped_bytes: float = 0.0
    # bytes counted in bytes_read/bytes_written that repeat a tensor's storage (an expanded
    # tensor counts its expanded size): memory moved = bytes_read + bytes_written - repeated_bytes
    repeated_bytes: float = 0.0


# a dense convolution of a batch of one (``input.shape[0] == 1``): on CPU its fixed cost is
# ~100 us (forward) to ~300 us (backward) lower than at batch 2 (benchmarks/conv_batch.py)
SINGLE_IMAGE = "single_image"
# a grouped convolution (1 < groups < in_channels): oneDNN runs it group by group in a blocked
# layout, and with few channels per group its time follows the data it moves, not its FLOPs
# (at 4 and 8 channels per group the same time, 2-3x the dense rate's; benchmarks/grouped_conv.py)
GROUPED = "grouped"

# glibc's malloc serves a request of at least its mmap threshold with a fresh mapping, and
# raises that threshold to the size of freed mapped chunks but never above 32 MiB
# (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit; mallopt(3)): a tensor of 32 MiB or more is new memory
# on every allocation, paid for by a page fault per 4 KiB page on first touch and an munmap
# when freed (benchmarks/beyond_cache.py). Smaller tensors come from the heap once their size
# has been freed, and fault only when the heap was trimmed, which op counting cannot see.
ALWAYS_MAPPED_BYTES = 32 << 20


@dataclass(frozen=True)
class OpCounts:
    """Everything one forward (inference) or one training step does."""

    records: tuple[OpRecord, ...]
    parameters: int  # number of parameters of the model
    parameter_bytes: int
    activation_bytes: int  # bytes of forward outputs kept (upper bound on activation memory)
    batch_size: int  # leading dimension of the example input
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. ops counted with a fallback formula
    parameter_tensors: int = 0  # trainable parameter tensors (what an optimizer step walks)

    @property
    def flops(self) -> float:
        return sum(r.flops for r in self.records)

    @property
    def bytes_moved(self) -> float:
        return sum(r.bytes_read + r.bytes_written for r in self.records)
