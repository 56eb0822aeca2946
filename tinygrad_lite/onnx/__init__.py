"""ONNX export: ``tinygrad_lite.onnx.export(model, args, "model.onnx", dynamic_axes=...)``.

Needs the ``onnx`` package (``pip install ".[export]"``, which also brings ``onnxruntime`` to
run the file); ``import tinygrad_lite`` never imports it. Reading order:

- ``capture.py``: run the model and record every ``Function.apply`` -- the engine's ops are the
  IR; references say what each op read (an earlier op, an input, a parameter, a constant);
- ``symbolic.py``: which recorded numbers follow the dynamic axes (the model is run at several
  sizes), as formulas such as ``T`` or ``B*T``;
- ``op_table.py``: each engine op as ONNX nodes, one small function per op;
- ``builder.py``: the ONNX graph being built (names, constants, sizes read at run time);
- ``exporter.py``: ``export`` itself -- arguments, eval mode, check, atomic write.
"""

try:
    import onnx  # noqa: F401
except ImportError as e:  # pragma: no cover - the export extra is part of the test extra
    raise ImportError("tinygrad_lite.onnx needs the onnx package: pip install "
                      "'tinygrad_lite[export]' (onnx, and onnxruntime to run the files)") from e

from .exporter import export
from .op_table import SUPPORTED_OPS

__all__ = ["export", "SUPPORTED_OPS"]
