"""Your own lens: a feature extractor of your own, in which every lens-based metric is computed again.

A lens is a ``torch.nn.Module`` class with a ``name`` (letters, digits, ``_``), built with
no arguments, whose ``forward`` maps ``[n,1,28,28]`` float images in [0, 1] to ``[n,d]``
features. Give it as ``--lens FILE.py:CLASS`` to ``genbench run`` and ``genbench eval``
(``load_lens``), or as ``--lens NAME`` where an installed package declares the class as entry
point ``NAME`` of the group ``genbench.lenses``, or register the class in Python with ``register_lens``. It is
checked at the door: built, then called once on two images, so that a wrong output is
refused in a second with a line that names the fix; ``d`` and the dtype are read from that
call. Its identity is the SHA-256 of its weights (``weights_sha256``), which keys its
cached reference statistics, so changed weights never meet stale statistics.

Every registered lens is used in every evaluation of the process: the metric groups that
need only features (FID and its interval, KID, precision/recall/density/coverage, FD∞) are
computed in it too, under their keys suffixed with ``_<name>``, as ``fid_ssl`` is FID in the
self-supervised lens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch
from torch import Tensor, nn

from genbench.errors import ConfigError
from genbench.features.extractor import Extractor
from genbench.plugin_file import import_plugin_file, is_entry_point_name, load_entry_point

PROBE_IMAGES = 2


@dataclass(frozen=True)
class Lens:
    """A registered lens: its class, where it came from, and what its first call showed."""

    name: str
    cls: type[nn.Module]
    source: str  # what errors name: "--lens file.py:CLASS" or "module:CLASS"
    sha256: str  # of the weights, as built with no arguments
    dim: int  # d of the [n,d] features
    dtype: str  # of the features, as the lens returns them (metrics compute in float32 or wider)


_LENSES: dict[str, Lens] = {}


def lenses() -> Mapping[str, Lens]:
    """The lenses registered in this process, by name (read-only)."""
    return MappingProxyType(_LENSES)


def weights_sha256(module: nn.Module) -> str:
    """SHA-256 of ``module``'s state (parameters and buffers: names, dtypes, shapes, values), in name order."""
    digest = hashlib.sha256(type(module).__qualname__.encode())
    for key, value in sorted(module.state_dict().items()):
        tensor = value.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


class _LensAdapter(nn.Module):
    """uint8 images -> (the lens's features as float32, no logits), the interface of ``Extractor``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.inner(images.float() / 255.0)
        return features.float(), features.new_zeros((len(features), 0), dtype=torch.float32)


def _build(cls: type[nn.Module], source: str, rng_seed: int = 0) -> nn.Module:
    """``cls()`` in eval mode without gradients, built with torch's global RNG at ``rng_seed`` (and left as it was)."""
    try:
        with torch.random.fork_rng(devices=[]):  # a lens drawing random weights leaves the run's RNG as it was
            torch.manual_seed(rng_seed)
            module = cls()
    except Exception as exc:
        raise ConfigError(" ".join(f"{source}: building it with no arguments failed: {type(exc).__name__}: "
                                   f"{exc}".split())) from None
    if not isinstance(module, nn.Module):
        raise ConfigError(f"{source}: is not a torch.nn.Module subclass")
    return module.eval().requires_grad_(False)


def _probe(module: nn.Module, source: str) -> Tensor:
    """The lens's features of two fixed images, checked against the contract."""
    wanted = "a lens maps [n,1,28,28] floats in [0, 1] to [n,d] features"
    images = torch.stack([torch.zeros(1, 28, 28), torch.linspace(0, 1, 784).reshape(1, 28, 28)])
    try:
        with torch.no_grad():
            out = module(images)
    except Exception as exc:
        raise ConfigError(" ".join(f"{source}: calling it on [2,1,28,28] images failed: {type(exc).__name__}: "
                                   f"{exc}".split())) from None
    if not isinstance(out, Tensor):
        raise ConfigError(f"{source}: forward returned {type(out).__name__}, not a tensor; {wanted}")
    if out.dim() != 2 or out.shape[0] != PROBE_IMAGES or out.shape[1] < 1:
        raise ConfigError(f"{source}: forward returned shape {tuple(out.shape)} for 2 images; {wanted}")
    if not out.is_floating_point():
        raise ConfigError(f"{source}: forward returned {out.dtype} features; return floating-point ones")
    if not torch.isfinite(out).all():
        raise ConfigError(f"{source}: forward returned non-finite features on two plain images")
    return out


def register_lens(cls: type[nn.Module], *, source: str | None = None) -> Lens:
    """Check ``cls`` (built with no arguments, called once) and register it under ``cls.name``."""
    source = source or f"{getattr(cls, '__module__', '?')}:{getattr(cls, '__qualname__', cls)}"
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"{source}: is not a torch.nn.Module subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise ConfigError(f"{source}: needs a class attribute name, lower-case letters, digits and _ "
                          f"(it suffixes the metric keys, e.g. fid_<name>), got {name!r}")
    known = _LENSES.get(name)
    # The same file named twice (relative and absolute: a plug-in file's module name is fixed by its
    # resolved path), or loaded again in a worker: the lens registered already.
    same_class = known is not None and (known.cls.__module__, known.cls.__qualname__) == (cls.__module__,
                                                                                          cls.__qualname__)
    if known is not None and (known.source == source or same_class):
        return known
    if known is not None:
        raise ConfigError(f"{source}: a lens named {name!r} is registered already (from {known.source}); rename it")
    from genbench.metrics.lens_metrics import register_lens_keys  # the metric keys live with the metrics

    module = _build(cls, source)
    if weights_sha256(_build(cls, source, rng_seed=1)) != weights_sha256(module):
        # statistics cached by the weights' hash would then describe another network in the next process
        raise ConfigError(f"{source}: its weights depend on torch's global random state; seed them "
                          f"(torch.Generator().manual_seed(...)) or load them from a file")
    out = _probe(module, source)
    lens = Lens(name, cls, source, weights_sha256(module), int(out.shape[1]), str(out.dtype).removeprefix("torch."))
    register_lens_keys(name, source)
    _LENSES[name] = lens
    return lens


LENS_ENTRY_POINTS = "genbench.lenses"


def load_lens(spec: str) -> Lens:
    """Import ``path/to/file.py:CLASS``, or load the entry point ``spec`` of group ``genbench.lenses``
    (an installed package's lens), and register the class (``register_lens``)."""
    if is_entry_point_name(spec):
        cls, source = load_entry_point(spec, LENS_ENTRY_POINTS, "--lens")
        return register_lens(cls, source=source)
    path, module, name = import_plugin_file(spec, "--lens", "CLASS")
    cls = getattr(module, name, None)
    if cls is None:
        raise ConfigError(f"--lens: {path} has no class {name!r}")
    return register_lens(cls, source=f"--lens {path}:{name}")


_EXTRACTORS: dict[tuple[str, str, str], Extractor] = {}


def lens_extractor(lens: Lens, device: torch.device | str = "cpu") -> Extractor:
    """``lens`` built on ``device`` as an ``Extractor`` (uint8 in, float32 features out, no logits)."""
    device = torch.device(device)
    key = (lens.name, lens.sha256, str(device))
    if key not in _EXTRACTORS:
        module = _build(lens.cls, lens.source)
        sha = weights_sha256(module)
        if sha != lens.sha256:  # its weights file changed since it was registered
            raise ConfigError(f"{lens.source}: its weights changed since it was registered (SHA-256 {sha[:16]}..., "
                              f"was {lens.sha256[:16]}...); load it again")
        _EXTRACTORS[key] = Extractor(f"lens-{lens.name}", sha, _LensAdapter(module).to(device), device, False)
    return _EXTRACTORS[key]
