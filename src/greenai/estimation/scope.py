"""Which module runs an operator, while counting (see counting.py, "Modules")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_flatten

from greenai.estimation.op_rules import nbytes
from greenai.estimation.ops import Pass


class Scope:
    """Which module runs an op: a stack in the forward, the autograd node's owner in the
    backward (each node is claimed, at the forward hook of the innermost module that
    created it, by walking the graph back from the module outputs to its inputs), the
    parameter's owner in the optimizer step. Also sums activation bytes."""

    def __init__(self, model: nn.Module) -> None:
        self.stack: list[str] = [""]
        self._last_owner = ""
        self.node_owner: dict[Any, str] = {}
        self.tensor_owner: dict[int, str] = {}
        self.activation_bytes = 0
        self._counted: set[int] = set()
        self._keep: list[Tensor] = []  # keeps counted tensors alive so ids stay unique
        self._boundaries: list[set[Any]] = []
        # global module hooks: hooks on the modules themselves would switch off fused fast
        # paths (nn.TransformerEncoderLayer takes none when a submodule has hooks)
        self._names = {id(m): name for name, m in model.named_modules()}
        self._handles = [
            torch.nn.modules.module.register_module_forward_pre_hook(self._pre),
            torch.nn.modules.module.register_module_forward_hook(self._post),
        ]

    def close(self) -> None:
        for h in self._handles:
            h.remove()

    def _pre(self, module: nn.Module, args: tuple) -> None:
        name = self._names.get(id(module))
        if name is None:  # not part of the model (e.g. a loss module)
            return
        self.stack.append(name)
        self._boundaries.append({t.grad_fn for t in tensors(args) if t.grad_fn is not None})

    def _post(self, module: nn.Module, args: tuple, output: Any) -> None:
        name = self._names.get(id(module))
        if name is None:
            return
        if self.stack and self.stack[-1] == name:
            self.stack.pop()
        boundary = self._boundaries.pop() if self._boundaries else set()
        outs = tensors(output)
        self._claim([t.grad_fn for t in outs if t.grad_fn is not None], boundary, name)
        for t in outs:
            base = t._base if t._base is not None else t
            if id(base) not in self._counted:
                self._counted.add(id(base))
                self._keep.append(base)
                self.activation_bytes += nbytes(base)

    def _claim(self, todo: list[Any], boundary: set[Any], name: str) -> None:
        while todo:
            node = todo.pop()
            if node is None or node in boundary or node in self.node_owner:
                continue
            self.node_owner[node] = name
            todo.extend(fn for fn, _ in node.next_functions if fn is not None)

    def module_for(self, pass_: Pass, ins: list[Tensor]) -> str:
        if pass_ is Pass.FORWARD:
            return self.stack[-1]
        if pass_ is Pass.BACKWARD:
            node = _current_autograd_node()
            return self.node_owner.get(node, "") if node is not None else ""
        for t in ins:  # optimizer: the owner of the parameter, gradient or state touched
            owner = self.tensor_owner.get(id(t))
            if owner is not None:
                self._last_owner = owner
                return owner
        return self._last_owner  # temporaries (e.g. Adam's denominator) stay with the last owner


# The autograd node being executed (private API, present since torch 2.1).
_current_autograd_node: Callable[[], Any] = getattr(torch._C, "_current_autograd_node", lambda: None)


def tensors(tree: Any) -> list[Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, Tensor)]
