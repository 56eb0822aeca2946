"""Module, Parameter and the containers (Sequential, ModuleList, ModuleDict).

A ``Module`` finds its parameters and sub-modules by watching attribute assignment: writing
``self.weight = Parameter(...)`` or ``self.fc = Linear(...)`` in ``__init__`` registers them,
so ``parameters()``, ``state_dict()``, ``train()``/``eval()`` can walk the whole tree.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module: it requires grad by default, and
    assigning it to a Module attribute registers it."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)
        if self.dtype.kind != "f":
            raise TypeError(f"Parameter needs floating-point data, got dtype {self.dtype}")

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model: subclasses set attributes in ``__init__`` (after
    calling ``super().__init__()``) and write ``forward``; call the module to run it."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration by attribute ---------------------------------------------------------

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() ran: call "
                                 f"super().__init__() first in {type(self).__name__}.__init__")
        if name in self._parameters and value is not None and not isinstance(value, Parameter):
            raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                            f"{type(self).__name__}: wrap it in nn.Parameter (or assign None); "
                            f"to change the values in place use `with no_grad(): "
                            f"self.{name}.copy_(...)`")
        if name in self._buffers and (value is None or isinstance(value, Tensor)):
            self._buffers[name] = value  # a buffer stays a buffer when it is replaced
            return
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails, i.e. for registered entries.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name`` (None registers an absent optional parameter)."""
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that belongs to the module but is not learned (e.g. a positional table).
        Persistent buffers are saved in ``state_dict``."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got "
                            f"{type(tensor).__name__}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Register ``module`` as a sub-module called ``name`` (what attribute assignment does,
        for names that are computed, like ModuleList's "0", "1", ...)."""
        owner = type(self).__name__
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{owner}: {name!r} must be a Module, got {type(module).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"{owner}: module name must be a str, got {type(name).__name__} "
                            f"{name!r}")
        if name == "" or "." in name:  # "." separates the levels of state_dict keys
            raise KeyError(f"{owner}: module name must not be empty or contain \".\", got {name!r}")
        if name not in self._modules and hasattr(self, name):
            raise KeyError(f"{owner}: attribute {name!r} already exists (a method, attribute, "
                           f"parameter or buffer); choose another module name")
        self._modules[name] = module

    # -- running -----------------------------------------------------------------------------

    def forward(self, *args, **kwargs):  # pragma: no cover - every subclass overrides it
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active) for this module and all sub-modules."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Evaluation mode: dropout becomes the identity. (Gradients are still recorded unless
        you also use ``no_grad()``.)"""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    # -- walking the tree --------------------------------------------------------------------

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True):
        """(name, module) for this module (named ``prefix``, "" by default) and every
        sub-module, depth first, parents before children -- as in PyTorch. A module reached
        twice (shared) is listed once unless ``remove_duplicate=False``; ``memo`` is the set of
        modules already listed (it is updated)."""
        if memo is None:
            memo = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if module in memo:
                    continue
                memo.add(module)
            yield name, module
            children = [(f"{name}.{n}" if name else n, m)
                        for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self):
        """Every module of the tree, this one first (see ``named_modules``)."""
        return (m for _, m in self.named_modules())

    def named_children(self):
        """(name, module) of the direct sub-modules, each once."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        return (m for _, m in self.named_children())

    def apply(self, fn) -> "Module":
        """Call ``fn(module)`` on every sub-module (children first, recursively) and then on
        this module; returns self. The usual use is weight initialisation:
        ``model.apply(init_weights)``."""
        if not callable(fn):
            raise TypeError(f"{type(self).__name__}.apply: fn must be callable, got "
                            f"{type(fn).__name__}")
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """(dotted name, parameter) pairs; a parameter shared by two modules appears once."""
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self, recurse: bool = True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = ""):
        for module_name, module in self.named_modules(prefix=prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{module_name}.{name}" if module_name else name), b

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    # -- saving and loading ------------------------------------------------------------------

    def _state_entries(self):
        """(name, tensor) of everything state_dict saves: parameters and persistent buffers."""
        for module_name, module in self.named_modules():
            for name, p in module._parameters.items():
                if p is not None:
                    yield (f"{module_name}.{name}" if module_name else name), p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    yield (f"{module_name}.{name}" if module_name else name), b

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Every parameter and persistent buffer by dotted name, as NumPy copies."""
        return OrderedDict((name, t.data.copy()) for name, t in self._state_entries())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into the existing parameters (in place, so optimizers keep working).

        Shapes must match and float parameters take only float values; with ``strict`` every
        key must match too. Errors list all offending keys at once.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"load_state_dict expects a mapping of name -> array, got "
                            f"{type(state_dict).__name__}")
        own = OrderedDict(self._state_entries())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        values = {}
        for name, target in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            value = value.data if isinstance(value, Tensor) else np.asarray(value)
            if value.shape != target.shape:
                problems.append(f"{name!r}: shape {value.shape} in the state dict, "
                                f"{target.shape} in the model")
            elif target.dtype.kind == "f" and value.dtype.kind != "f":
                problems.append(f"{name!r}: dtype {value.dtype} in the state dict, but the "
                                f"model's {target.dtype} needs floating-point values")
            else:
                values[name] = value
        if strict and (missing or unexpected):
            problems += ([f"missing keys: {missing}"] if missing else []) + \
                        ([f"unexpected keys: {unexpected}"] if unexpected else [])
        if problems:
            raise ValueError(f"error loading state_dict into {type(self).__name__}:\n  "
                             + "\n  ".join(problems))
        with no_grad():
            for name, value in values.items():
                own[name].copy_(value.astype(own[name].dtype, copy=False))
        return IncompatibleKeys(missing, unexpected)

    # -- printing ----------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The layer's settings, shown inside the parentheses of its repr."""
        return ""

    def __repr__(self) -> str:
        n = self.num_parameters()
        count = f"  # {n:,} parameters" if n else ""
        children = [(name, m) for name, m in self._modules.items() if m is not None]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()}){count}"
        lines = [f"{type(self).__name__}({count}"]
        if self.extra_repr():
            lines.append(f"  {self.extra_repr()}")
        for name, module in children:
            body = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 1))``."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain Python list would hide them)."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of modules whose parameters are registered, as ``torch.nn.ModuleDict``: keys are
    strings, insertion order is kept, and ``state_dict`` names entries "key.<name>"."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r}; keys: {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        self.pop(key)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self._modules[key]
        return module

    def clear(self) -> None:
        self._modules.clear()

    def update(self, modules) -> None:
        """Add (or replace) entries from a mapping or an iterable of (key, module) pairs."""
        if hasattr(modules, "items"):
            pairs = modules.items()
        elif isinstance(modules, (str, bytes, Module)) or not hasattr(modules, "__iter__"):
            raise TypeError(f"ModuleDict.update: expected a mapping or an iterable of "
                            f"(key, module) pairs, got {type(modules).__name__}")
        else:
            pairs = modules
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"ModuleDict.update: element {i} should be a (key, module) "
                                f"pair, got {pair!r}")
            self[pair[0]] = pair[1]
