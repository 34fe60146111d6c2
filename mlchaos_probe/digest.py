"""Deterministic sha256 digests of training state: parameters, optimizer, scheduler, RNGs, data position.

A digest depends only on the state's values (never on memory addresses, process, dict insertion order or
device), so two processes holding the same state print the same digests, and one changed value changes them.
torch and numpy are never imported here at module import: an object can only be a tensor or an array when
its library is already imported, so the functions look them up in ``sys.modules``.
"""

from __future__ import annotations

import hashlib
import random
import struct
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


def params_sha256(model: torch.nn.Module) -> str:
    """sha256 over the model's parameters in ``named_parameters()`` order, each as its contiguous CPU bytes.

    Names, dtypes and shapes are not hashed: the digest compares two runs of the same architecture, and
    stays equal to the hash the reference pipeline has always published.
    """
    digest = hashlib.sha256()
    for _, parameter in model.named_parameters():
        digest.update(_tensor_bytes(parameter))
    return digest.hexdigest()


def state_sha256(obj: object) -> str:
    """A deterministic sha256 of a nested state (e.g. ``optimizer.state_dict()``).

    Takes mappings (keys in a canonical order), lists and tuples, torch tensors and numpy arrays (dtype,
    shape and bytes), numpy scalars, bytes, str, int, float, bool and None. Each value is tagged with its
    type and length, so ``[1, 2]`` and ``[12]`` or ``1`` and ``1.0`` never collide. Raises ``TypeError``
    naming any other type.
    """
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


def state_digests(
    *,
    model: torch.nn.Module | None = None,
    optimizer: object = None,
    scheduler: object = None,
    rng: Mapping[str, object] | None = None,
    data_position: object = None,
) -> dict[str, str]:
    """Component name -> sha256 for each component given.

    ``parameters`` (:func:`params_sha256` of ``model``); ``optimizer`` and ``scheduler`` (:func:`state_sha256`
    of their ``state_dict()``, or of the object itself when it is already a state); ``rng_<name>`` per entry
    of ``rng`` (e.g. :func:`rng_snapshot`); ``data_position`` (:func:`state_sha256`).
    """
    components: dict[str, str] = {}
    if model is not None:
        components["parameters"] = params_sha256(model)
    if optimizer is not None:
        components["optimizer"] = state_sha256(_state_of(optimizer))
    if scheduler is not None:
        components["scheduler"] = state_sha256(_state_of(scheduler))
    for name, state in (rng or {}).items():
        components[f"rng_{name}"] = state_sha256(state)
    if data_position is not None:
        components["data_position"] = state_sha256(data_position)
    return components


def rng_snapshot() -> dict[str, object]:
    """The current RNG states, for ``state_digests(rng=...)``: ``python`` always; ``torch`` and ``numpy``
    when the process has imported them; ``cuda`` (every device) once CUDA is initialized.

    Nothing is initialized or imported to take the snapshot, so it never changes what it observes.
    """
    states: dict[str, object] = {"python": random.getstate()}
    torch_module = sys.modules.get("torch")
    if torch_module is not None:
        states["torch"] = torch_module.get_rng_state()
        if torch_module.cuda.is_initialized():
            states["cuda"] = torch_module.cuda.get_rng_state_all()
    numpy_module = sys.modules.get("numpy")
    if numpy_module is not None:
        states["numpy"] = numpy_module.random.get_state()
    return states


def _state_of(obj: object) -> object:
    state_dict = getattr(obj, "state_dict", None)
    return state_dict() if callable(state_dict) else obj


def _tensor_bytes(tensor: Any) -> memoryview:
    """The tensor's values as contiguous CPU bytes (a view when no copy is needed); any dtype, bfloat16 too."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return memoryview(flat.view(sys.modules["torch"].uint8).numpy())


def _feed(digest: _Hasher, obj: object) -> None:
    """Write ``obj`` to ``digest`` as tag, length and content, recursively."""
    if obj is None:
        digest.update(b"N")
    elif isinstance(obj, bool):  # before int: bool is an int
        digest.update(b"T" if obj else b"F")
    elif isinstance(obj, int):
        _tagged(digest, b"i", str(obj).encode())
    elif isinstance(obj, float):
        digest.update(b"f" + struct.pack("<d", obj))
    elif isinstance(obj, str):
        _tagged(digest, b"s", obj.encode("utf-8", "surrogatepass"))
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _tagged(digest, b"b", bytes(obj))
    elif isinstance(obj, Mapping):
        # Keys in the order of their own digests: canonical whatever their type (optimizer states have int keys).
        items = sorted(((state_sha256(key), value) for key, value in obj.items()), key=lambda item: item[0])
        digest.update(b"d" + struct.pack("<Q", len(items)))
        for key_digest, value in items:
            digest.update(bytes.fromhex(key_digest))
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)):
        digest.update((b"l" if isinstance(obj, list) else b"t") + struct.pack("<Q", len(obj)))
        for item in obj:
            _feed(digest, item)
    else:
        _feed_array(digest, obj)


def _feed_array(digest: _Hasher, obj: object) -> None:
    torch_module = sys.modules.get("torch")
    if torch_module is not None and isinstance(obj, torch_module.Tensor):
        data = _tensor_bytes(obj)
        _tagged(digest, b"x" + str(obj.dtype).encode() + repr(tuple(obj.shape)).encode(), data)
        return
    numpy_module = sys.modules.get("numpy")
    if numpy_module is not None and isinstance(obj, (numpy_module.ndarray, numpy_module.generic)):
        array = numpy_module.ascontiguousarray(obj)
        if array.dtype.hasobject:
            _feed(digest, array.tolist())
            return
        data = memoryview(array.reshape(-1).view(numpy_module.uint8))
        _tagged(digest, b"a" + array.dtype.str.encode() + repr(array.shape).encode(), data)
        return
    raise TypeError(f"state_sha256 cannot digest a {type(obj).__module__}.{type(obj).__qualname__}; "
                    "pass tensors, arrays, mappings, sequences or plain values")


def _tagged(digest: _Hasher, tag: bytes, data: bytes | memoryview) -> None:
    digest.update(tag + struct.pack("<Q", len(data) if isinstance(data, bytes) else data.nbytes))
    digest.update(data)
