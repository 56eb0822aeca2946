"""Checkpoints at their edges: all-or-nothing loading, optimizer classes, entry names, hostile or
damaged files (never unpickled, always closed), and temporary files of killed writers.

The round trip and exact-resume tests are in test_train_toolkit.py.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy

import tinygrad_lite as tg
from tinygrad_lite import nn, optim
from tinygrad_lite.train import CheckpointError, load_checkpoint, save_checkpoint
from tinygrad_lite.train import checkpoint as ckpt

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tg.__file__)))


def make_trained(seed=0, optimizer=optim.AdamW):
    """A model, an optimizer with state (one step taken) and a StepLR scheduler."""
    tg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = optimizer(model.parameters(), lr=0.01)
    x = tg.Tensor(np.random.default_rng(seed).standard_normal((5, 3)).astype(np.float32))
    model(x).sum().backward()
    opt.step()
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


def snapshot(model, opt, sched):
    """Everything a load could change, as plain values to compare."""
    return ({k: np.array(v, copy=True) for k, v in model.state_dict().items()},
            json.dumps(ckpt._encode(opt.state_dict(), "", {}), sort_keys=True),
            {k: np.array(v.copy() if isinstance(v, np.ndarray) else v)
             for s in opt.state.values() for k, v in s.items()},
            repr(sched.state_dict()), tg.get_rng().bit_generator.state)


def assert_unchanged(before, after):
    (m0, o0, buffers0, s0, r0), (m1, o1, buffers1, s1, r1) = before, after
    assert m0.keys() == m1.keys()
    for k in m0:
        np.testing.assert_array_equal(m0[k], m1[k], err_msg=k)
    assert o0 == o1 and s0 == s1 and r0 == r1
    for k in buffers0:
        np.testing.assert_array_equal(buffers0[k], buffers1[k])


def write_npz(path, meta=None, **arrays):
    """An .npz as earlier versions wrote checkpoints: the metadata (a dict, as JSON bytes in
    the entry ``__metadata__``) and the arrays."""
    if meta is not None:
        arrays["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path


def write_safetensors(path, meta=None, **arrays):
    """A safetensors file with the given checkpoint metadata (a dict, as JSON) and arrays."""
    header = None if meta is None else {"tinygrad_lite.checkpoint": json.dumps(meta)}
    Path(path).write_bytes(safetensors.numpy.save(arrays, metadata=header))
    return path


def saved_metadata(path):
    with safetensors.safe_open(str(path), framework="numpy") as f:
        return json.loads(f.metadata()["tinygrad_lite.checkpoint"])


def saved_arrays(path):
    return safetensors.numpy.load_file(str(path))


# -- all or nothing --------------------------------------------------------------------------

def test_optimizer_mismatch_leaves_model_and_optimizer_unchanged(tmp_path):
    model, opt, sched = make_trained(seed=0)
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt, scheduler=sched)
    model2, _, _ = make_trained(seed=1)
    opt2 = optim.AdamW(list(model2.parameters())[:2], lr=0.01)  # other parameter count
    before = snapshot(model2, opt2, sched)
    with pytest.raises(CheckpointError, match="optimizer state does not fit.*nothing was loaded"):
        load_checkpoint(path, model=model2, optimizer=opt2)
    assert_unchanged(before, snapshot(model2, opt2, sched))


def test_scheduler_failure_rolls_back_model_and_optimizer(tmp_path):
    model, opt, sched = make_trained(seed=0)
    sched.gamma = -0.5  # a saved setting its load refuses: it fails after model and optimizer
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt, scheduler=sched)
    model2, opt2, sched2 = make_trained(seed=1)
    tg.manual_seed(7)
    before = snapshot(model2, opt2, sched2)
    with pytest.raises(CheckpointError, match="scheduler state does not fit"):
        load_checkpoint(path, model=model2, optimizer=opt2, scheduler=sched2)
    assert_unchanged(before, snapshot(model2, opt2, sched2))


def test_missing_generator_state_changes_nothing(tmp_path):
    model, opt, sched = make_trained(seed=0)
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt, scheduler=sched)
    model2, opt2, sched2 = make_trained(seed=1)
    before = snapshot(model2, opt2, sched2)
    with pytest.raises(CheckpointError, match="no state for the generator 'loader'"):
        load_checkpoint(path, model=model2, optimizer=opt2, scheduler=sched2,
                        generators={"loader": np.random.default_rng(0)})
    assert_unchanged(before, snapshot(model2, opt2, sched2))


def test_successful_load_still_loads_everything(tmp_path):
    model, opt, sched = make_trained(seed=0)
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt, scheduler=sched)
    model2, opt2, sched2 = make_trained(seed=1)
    load_checkpoint(path, model=model2, optimizer=opt2, scheduler=sched2)
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert repr(opt.state_dict()) == repr(opt2.state_dict())


# -- optimizer and scheduler classes -----------------------------------------------------------

@pytest.mark.parametrize("other", [optim.SGD, optim.Adam])
def test_optimizer_class_mismatch_names_both_classes(tmp_path, other):
    model, opt, _ = make_trained(optimizer=optim.AdamW)
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt)
    model2, opt2, _ = make_trained(seed=1, optimizer=other)
    before = snapshot(model2, opt2, optim.lr_scheduler.StepLR(opt2, 1))
    with pytest.raises(CheckpointError, match=f"AdamW optimizer, but a {other.__name__} was "
                                              f"given"):
        load_checkpoint(path, model=model2, optimizer=opt2)
    assert_unchanged(before, snapshot(model2, opt2, optim.lr_scheduler.StepLR(opt2, 1)))
    assert saved_metadata(path)["optimizer_class"] == "AdamW"


def test_scheduler_class_mismatch(tmp_path):
    model, opt, sched = make_trained()
    path = save_checkpoint(tmp_path / "c.safetensors", scheduler=sched)
    other = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    with pytest.raises(CheckpointError, match="StepLR scheduler, but a CosineAnnealingLR"):
        load_checkpoint(path, scheduler=other)


def test_checkpoint_without_class_names_still_loads(tmp_path):
    """Checkpoints written before the class names were stored load with the structure checks
    only (the documented choice)."""
    model, opt, _ = make_trained()
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt)
    arrays, meta = saved_arrays(path), saved_metadata(path)
    del meta["optimizer_class"], meta["scheduler_class"]
    write_safetensors(path, meta, **arrays)
    model2, opt2, _ = make_trained(seed=1)
    load_checkpoint(path, model=model2, optimizer=opt2)
    assert repr(opt.state_dict()) == repr(opt2.state_dict())


def test_a_checkpoint_of_an_earlier_version_npz_still_loads(tmp_path):
    """Checkpoints were .npz files before they became safetensors: same content, other
    container; the loader tells them apart by their first bytes."""
    model, opt, sched = make_trained()
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt,
                           scheduler=sched, step=7)
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header, not a zip
    old = write_npz(tmp_path / "old.npz", saved_metadata(path), **saved_arrays(path))
    model2, opt2, sched2 = make_trained(seed=1)
    loaded = load_checkpoint(old, model=model2, optimizer=opt2, scheduler=sched2)
    assert loaded["step"] == 7
    assert_unchanged(snapshot(model, opt, sched), snapshot(model2, opt2, sched2))


def test_a_zero_optimizer_saves_and_loads_the_plain_format(tmp_path):
    """A ZeroRedundancyOptimizer's checkpoint holds the wrapped class's state (named as that
    class): it loads into a plain AdamW and back into a ZeRO optimizer (here in a world of 1;
    tests/test_distributed_examples.py moves such checkpoints between 1 and 2 ranks)."""
    tg.distributed.init()  # a world of 1
    model, plain, _ = make_trained(seed=0)
    zero = optim.ZeroRedundancyOptimizer(model.parameters(), optim.AdamW, lr=0.5)
    zero.load_state_dict(plain.state_dict())
    zero.consolidate_state_dict(to=0)
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=zero)
    assert saved_metadata(path)["optimizer_class"] == "AdamW"
    model2, plain2, _ = make_trained(seed=1)
    load_checkpoint(path, model=model2, optimizer=plain2)
    assert repr(plain2.state_dict()) == repr(plain.state_dict())
    zero2 = optim.ZeroRedundancyOptimizer(model2.parameters(), optim.AdamW, lr=0.5)
    load_checkpoint(path, model=model2, optimizer=zero2)
    zero2.consolidate_state_dict(to=0)
    assert repr(zero2.state_dict()) == repr(plain.state_dict())
    # A state that does not fit the ZeRO optimizer (loaded last, it has no snapshot): refused,
    # and the model loaded before it gets its weights back.
    model3, _, _ = make_trained(seed=2)
    before = {k: v.copy() for k, v in model3.state_dict().items()}
    zero3 = optim.ZeroRedundancyOptimizer(list(model3.parameters())[:2], optim.AdamW, lr=0.5)
    with pytest.raises(CheckpointError, match="the saved optimizer state does not fit the "
                                              "ZeroRedundancyOptimizer"):
        load_checkpoint(path, model=model3, optimizer=zero3)
    for k, v in model3.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


# -- entry names -------------------------------------------------------------------------------

def test_extra_keys_with_slashes_do_not_collide(tmp_path):
    extra = {"a/b": np.array([1.0]), "a": {"b": np.array([2.0]), "%2F": np.array([3.0])},
             "a%2Fb": np.array([4.0])}
    path = save_checkpoint(tmp_path / "c.safetensors", extra=extra)
    saved = load_checkpoint(path, restore_rng=False)["extra"]
    assert saved["a/b"].tolist() == [1.0] and saved["a"]["b"].tolist() == [2.0]
    assert saved["a"]["%2F"].tolist() == [3.0] and saved["a%2Fb"].tolist() == [4.0]
    assert len(saved_arrays(path)) == 4  # four arrays: none overwritten


@pytest.mark.parametrize("extra,error,match", [
    ({"x": {"__ndarray__": "/model/0.weight"}}, ValueError, "reserves"),
    ({"__tuple__": [1, 2]}, ValueError, "reserves"),
    ({(1, 2): 3}, TypeError, "keys must be strings or integers"),
])
def test_extra_that_would_not_round_trip_is_refused(tmp_path, extra, error, match):
    with pytest.raises(error, match=match):
        save_checkpoint(tmp_path / "c.safetensors", extra=extra)
    assert not (tmp_path / "c.safetensors").exists()


# -- hostile and damaged files -----------------------------------------------------------------

class RunsCodeWhenUnpickled:
    """Unpickling this creates the file named in it: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _good_meta(tmp_path):
    path = save_checkpoint(tmp_path / "good.npz", model=nn.Linear(2, 1))
    return saved_metadata(path), path


def _bad_files(tmp_path):
    """name -> (path of a bad file, a word its error message must contain)."""
    meta, good = _good_meta(tmp_path)
    arrays = saved_arrays(good)
    files = {}
    data = good.read_bytes()
    files["st-truncated"] = (tmp_path / "cut.safetensors", "not a readable checkpoint")
    files["st-truncated"][0].write_bytes(data[:len(data) - 20])
    files["st-header"] = (tmp_path / "header.safetensors", "not a readable checkpoint")
    files["st-header"][0].write_bytes(data[:8] + b"{garbage" + data[16:])
    files["st-weights-only"] = (write_safetensors(tmp_path / "weights.safetensors", None,
                                                  **arrays), "model weights")
    files["st-no-rng"] = (write_safetensors(tmp_path / "norng.safetensors",
                                            {k: v for k, v in meta.items() if k != "rng"},
                                            **arrays), "rng")
    np.save(tmp_path / "array.npy", np.zeros(3))
    files["npy"] = (tmp_path / "array.npy", ".npy")
    files["random"] = (tmp_path / "random.npz", "not a readable checkpoint")
    files["random"][0].write_bytes(np.random.default_rng(0).bytes(3000))
    files["zip-garbage"] = (tmp_path / "zip.npz", "not a readable checkpoint")
    files["zip-garbage"][0].write_bytes(b"PK\x03\x04" + b"\x00" * 500)
    files["no-metadata"] = (write_npz(tmp_path / "plain.npz", a=np.zeros(2)), "__metadata__")
    for entry in ("rng", "model", "extra", "step"):
        broken = {k: v for k, v in meta.items() if k != entry}
        files[f"no-{entry}"] = (write_npz(tmp_path / f"no-{entry}.npz", broken, **arrays),
                                f"'{entry}' is missing")
    files["rng-no-package"] = (write_npz(tmp_path / "rng.npz", {**meta, "rng": {}}, **arrays),
                               "package generator")
    files["rng-bad-state"] = (write_npz(tmp_path / "rngs.npz",
                                        {**meta, "rng": {"package": {"state": 1}}}, **arrays),
                              "generator 'package'")
    files["model-list"] = (write_npz(tmp_path / "ml.npz", {**meta, "model": [1]}, **arrays),
                           "'model' is list")
    files["bad-items"] = (write_npz(tmp_path / "items.npz", {**meta, "extra": {"__items__": 3}},
                                    **arrays), "malformed")
    files["bad-ref"] = (write_npz(tmp_path / "ref.npz",
                                  {**meta, "extra": {"__ndarray__": [1]}}, **arrays), "malformed")
    files["missing-array"] = (write_npz(tmp_path / "miss.npz", meta), "missing from the file")
    files["meta-not-bytes"] = (write_npz(tmp_path / "mnb.npz",
                                         __metadata__=np.zeros((2, 2))), "corrupted")
    files["meta-not-json"] = (write_npz(tmp_path / "mnj.npz",
                                        __metadata__=np.frombuffer(b"{nope", np.uint8)),
                              "corrupted")
    files["meta-not-dict"] = (write_npz(tmp_path / "mnd.npz", [1, 2]), "not a tinygrad_lite")
    files["version"] = (write_npz(tmp_path / "v.npz", {**meta, "version": 99}, **arrays),
                        "version 99")
    marker = tmp_path / "code-ran"
    evil = np.array([RunsCodeWhenUnpickled(str(marker))], dtype=object)
    np.savez(tmp_path / "evil.npz", __metadata__=evil)  # np.savez pickles object arrays
    files["pickled-in-npz"] = (tmp_path / "evil.npz", "pickled")
    np.save(tmp_path / "evil.npy", evil, allow_pickle=True)
    files["pickled-npy"] = (tmp_path / "evil.npy", ".npy")
    import pickle
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(RunsCodeWhenUnpickled(str(marker))))
    files["pickle"] = (tmp_path / "evil.pkl", "not a readable checkpoint")
    files["directory"] = (tmp_path, "directory")
    return files, marker


BAD_FILES = ["st-truncated", "st-header", "st-weights-only", "st-no-rng",
             "npy", "random", "zip-garbage", "no-metadata", "no-rng", "no-model", "no-extra",
             "no-step", "rng-no-package", "rng-bad-state", "model-list", "bad-items", "bad-ref",
             "missing-array", "meta-not-bytes", "meta-not-json", "meta-not-dict", "version",
             "pickled-in-npz", "pickled-npy", "pickle", "directory"]


@pytest.mark.filterwarnings("error::ResourceWarning")
@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_file_gives_checkpoint_error_and_closes_it(tmp_path, kind):
    files, marker = _bad_files(tmp_path)
    path, word = files[kind]
    model = nn.Linear(2, 1)
    before = model.state_dict()["weight"].copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path, model=model)
        message = str(info.value)
        info = None  # drop the traceback and its frames: an unclosed file warns when collected
        gc.collect()
    assert word in message and str(path) in message
    assert "allow_pickle" not in message
    assert not marker.exists()  # nothing was unpickled
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    np.testing.assert_array_equal(model.state_dict()["weight"], before)


def test_bad_file_list_is_complete(tmp_path):
    files, _ = _bad_files(tmp_path)
    assert sorted(files) == sorted(BAD_FILES)


# -- temporary files of killed writers ---------------------------------------------------------

def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_save_removes_temp_file_of_a_killed_writer(tmp_path):
    target = tmp_path / "c.safetensors"
    started = tmp_path / "started"
    code = textwrap.dedent(f"""
        import time
        from tinygrad_lite.train.checkpoint import atomic_write
        def write(f):
            f.write(b"x" * 100000)
            open({str(started)!r}, "w").close()
            time.sleep(600)  # killed here, mid-write
        atomic_write({str(target)!r}, write)
    """)
    # Run from tmp_path with this run's tinygrad_lite on the path: from the repository root,
    # `python -c` would import the source folder (see test_kernels_install.py).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [PACKAGE_PARENT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    writer = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert writer.poll() is None and time.monotonic() < deadline, "writer did not start"
            time.sleep(0.05)
    finally:
        writer.kill()
        writer.wait()
    leftovers = [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".c.safetensors.")
    save_checkpoint(target, step=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors", "started"]


def test_stale_temp_cleanup_spares_live_and_foreign_files(tmp_path):
    target = tmp_path / "c.safetensors"
    host, dead = ckpt._HOST, _dead_pid()
    stale = [f".c.safetensors.{host}.{dead}.0123abcd.tmp", f".c.safetensors.{dead}.0123abcd.tmp"]  # + old name
    old_but_live = f".c.safetensors.{host}.{os.getppid()}.00000000.tmp"  # pid in use, untouched a day
    kept = [f".c.safetensors.{host}.{os.getppid()}.89abcdef.tmp",  # a live writer at work
            f".c.safetensors.{host}.{os.getpid()}.89abcdef.tmp",   # this process (another thread)
            f".c.safetensors.other-host.{dead}.89abcdef.tmp",      # another machine's writer
            f".d.safetensors.{host}.{dead}.89abcdef.tmp",          # another target
            f".c.safetensors.{host}.{dead}.notahex.tmp", "c.safetensors.bak"]
    for name in stale + kept + [old_but_live]:
        (tmp_path / name).write_bytes(b"x" * 10)
    day_ago = time.time() - 2 * ckpt._STALE_SECONDS
    os.utime(tmp_path / old_but_live, (day_ago, day_ago))
    save_checkpoint(target, step=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["c.safetensors"])
    assert load_checkpoint(target)["step"] == 1
