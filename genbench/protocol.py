"""The generator protocol every model implements, its capability flags and its role.

A generator owns its networks, optimizers and losses; the harness owns budgets,
seeds, devices, checkpoints, timing and results. Optional abilities are declared
with :class:`Capability` flags instead of abstract methods, so no model carries stubs.
A :class:`Role` says whether a generator competes in a leaderboard or is one of its
reference rows; the harness tells every generator about its run through
:meth:`Generator.setup` and a :class:`RunContext`.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

IMAGE_SHAPE = (1, 28, 28)
NUM_PIXELS = 784


class Capability(enum.Flag):
    """What a generator can do beyond sampling, declared as flags (``SAMPLE | LOG_LIKELIHOOD``)."""

    SAMPLE = enum.auto()
    """``sample(n, generator)``: every generator has it."""
    LOG_LIKELIHOOD = enum.auto()
    """``log_likelihood(x)`` in nats per 8-bit image: NLL in bits/dim."""
    RECONSTRUCT = enum.auto()
    """``reconstruct(x)`` -> images: PSNR, MSE, SSIM."""
    COMPLETE = enum.auto()
    """``complete(x, known_rows, generator)`` -> images: completion scores."""


class Role(str, enum.Enum):
    """What a generator is in a leaderboard (recorded in every run record as ``model.role``).

    Competitors are ranked. The three reference rows are shown apart and never
    ranked: they anchor the scale (floor and ceiling) and test the copy check.
    """

    COMPETITOR = "competitor"
    FLOOR = "floor"  # the simplest honest model: independent pixels
    CEILING = "ceiling"  # real images no model trained on
    MEMORIZER = "memorizer"  # training images returned verbatim


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What the harness tells a generator about its run before training.

    ``data_root`` is the run's data folder as given (None: ``$GENBENCH_DATA`` or the
    cache); read data through ``genbench.data.splits.split_images`` with it.
    """

    dataset: str
    data_root: str | None = None


_REQUIRED_METHOD = {
    Capability.LOG_LIKELIHOOD: "log_likelihood",
    Capability.RECONSTRUCT: "reconstruct",
    Capability.COMPLETE: "complete",
}


def to_unit(x: Tensor) -> Tensor:
    """uint8 images -> float32 in [0, 1]."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def to_signed(x: Tensor) -> Tensor:
    """uint8 images -> float32 in [-1, 1] (the range tanh generators emit)."""
    return to_unit(x).mul_(2.0).sub_(1.0)


def quantize(x: Tensor) -> Tensor:
    """float images in [0, 1] -> uint8 by round(x*255), as every metric sees them.

    The clamp only absorbs float rounding: the harness and ``genbench eval`` refuse values
    more than ``genbench.sample_contract.SAMPLE_TOLERANCE`` outside [0, 1] before this.
    """
    return x.detach().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


class Generator(nn.Module):
    """Base class of every generative model genbench trains and scores.

    Subclasses set ``name`` (registry key), ``Config`` (a dataclass with a
    ``batch_size`` field), ``capabilities``, ``likelihood_is_bound`` and (reference
    rows only) ``role``, build their networks and optimizers in ``__init__(config)``
    and implement:

    - ``train_step(batch, step) -> {loss_name: float}`` (a one-element tensor is read
      once with ``.item()``); ``batch`` is ``[B,1,28,28] uint8`` on the model's device;
      the harness calls ``train()`` before training and ``eval()`` before sampling;
    - ``sample(n, generator) -> [n,1,28,28] float in [0,1]``, drawing every random
      number from ``generator`` (a ``torch.Generator`` on the model's device); checked
      on a fresh model before training and on every batch after, never clamped
      beyond float rounding (``genbench.sample_contract``);
    - with LOG_LIKELIHOOD: ``log_likelihood(x uint8 [B,1,28,28]) -> [B]`` float, the log-probability
      of the 8-bit values in nats per image, at most 0 (a lower bound when ``likelihood_is_bound``);
      an optional ``generator`` parameter receives a ``torch.Generator`` for its noise
      (``genbench.likelihood_contract``, checked like ``sample``);
    - with RECONSTRUCT: ``reconstruct(x uint8) -> [B,1,28,28] float in [0,1]``;
    - with COMPLETE: ``complete(x uint8, known_rows, generator)`` -> images whose
      first ``known_rows`` rows equal ``x``'s and the rest are sampled.

    ``setup(context)`` is called once after construction and before training; the
    default does nothing, so a model that needs nothing from the run ignores it.
    """

    name: ClassVar[str] = ""
    """Registry key: what ``--models`` and records call the model (lower-case, no spaces)."""
    Config: ClassVar[type]
    """A dataclass of the model's hyperparameters, with a ``batch_size`` field; suites and ``--set`` fill it."""
    capabilities: ClassVar[Capability] = Capability.SAMPLE
    """The ``Capability`` flags the model implements; each adds its metrics."""
    likelihood_is_bound: ClassVar[bool] = False
    """True when ``log_likelihood`` returns a lower bound (ELBO, variational bound, dequantized density)."""
    role: ClassVar[Role] = Role.COMPETITOR
    """Competitor, or one of the reference rows (floor, ceiling, memorizer), which are never ranked."""
    sample_in_one_call: ClassVar[bool] = False
    """Evaluation asks for all its samples in one ``sample`` call instead of batches, for a model whose
    samples depend on each other (drawn without replacement)."""
    tiny_config: ClassVar[dict[str, Any]] = {}
    """Overrides of ``Config`` that make a seconds-fast model: the ``smoke`` suite and the contract tests."""
    search_space: ClassVar[dict[str, Any]] = {}
    """Distributions of ``genbench tune`` over ``Config`` fields (``genbench.search_space``); empty:
    not tunable."""
    primary_metric: ClassVar[str] = "fid"
    """What ``genbench tune`` minimises on the validation split: ``"fid"`` or, for likelihood models,
    ``"nll_bpd"``."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def setup(self, context: RunContext) -> None:
        """Take what the model needs from its run (dataset, data folder); default: nothing."""

    # -- training ---------------------------------------------------------------
    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} must implement train_step")

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement sample")

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer whose state must be checkpointed, by name.

        The default finds the optimizers stored as attributes of the model.
        """
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.optim.Optimizer)}

    # -- helpers ----------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def checkpoint_state(self) -> dict[str, Any]:
        """Model weights (incl. EMA buffers/submodules) and optimizer states."""
        return {
            "model": self.state_dict(),
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers().items()},
        }

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["model"])
        opts = self.optimizers()
        if set(opts) != set(state["optimizers"]):
            raise KeyError(f"optimizer names differ: checkpoint {sorted(state['optimizers'])}, model {sorted(opts)}")
        for k, opt in opts.items():
            opt.load_state_dict(state["optimizers"][k])

    @classmethod
    def has(cls, capability: Capability) -> bool:
        return bool(cls.capabilities & capability)


def check_generator_class(cls: type) -> None:
    """Raise TypeError if ``cls`` does not follow the protocol (used by the registry)."""
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise TypeError(f"{cls!r} is not a subclass of genbench.Generator")
    if not getattr(cls, "name", ""):
        raise TypeError(f"{cls.__name__} has no `name`")
    config = getattr(cls, "Config", None)
    if config is None or not dataclasses.is_dataclass(config):
        raise TypeError(f"{cls.__name__}.Config must be a dataclass")
    if "batch_size" not in {f.name for f in dataclasses.fields(config)}:
        raise TypeError(f"{cls.__name__}.Config needs a `batch_size` field")
    if not isinstance(getattr(cls, "role", None), Role):
        raise TypeError(f"{cls.__name__}.role must be a genbench.Role, got {getattr(cls, 'role', None)!r}")
    if not cls.has(Capability.SAMPLE):
        raise TypeError(f"{cls.__name__} must declare Capability.SAMPLE")
    for cap, method in _REQUIRED_METHOD.items():
        if cls.has(cap) and getattr(cls, method, None) is None:
            raise TypeError(f"{cls.__name__} declares {cap.name} but has no `{method}` method")
    if cls.primary_metric not in ("fid", "nll_bpd"):
        raise TypeError(f"{cls.__name__}.primary_metric must be 'fid' or 'nll_bpd', got {cls.primary_metric!r}")
    if cls.primary_metric == "nll_bpd" and not cls.has(Capability.LOG_LIKELIHOOD):
        raise TypeError(f"{cls.__name__}.primary_metric is 'nll_bpd' but it does not declare LOG_LIKELIHOOD")
    for method in ("train_step", "sample"):
        if getattr(cls, method) is getattr(Generator, method):
            raise TypeError(f"{cls.__name__} does not implement `{method}`")
