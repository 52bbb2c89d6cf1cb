"""Training budgets: steps, images seen and wall-clock seconds; the first limit reached stops."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from genbench.errors import ConfigError
from genbench.kv import split_items, split_pair
from genbench.validation import expect_int, expect_number

_KINDS = ("steps", "images", "seconds")


@dataclass(frozen=True)
class Budget:
    """Limits on training; ``None`` means no limit of that kind. At least one must be set."""

    steps: int | None = None
    """Training steps (``train_step`` calls): work, the same on every machine."""
    images: int | None = None
    """Training images seen (steps times the batch size, the last batch counted whole): work."""
    seconds: float | None = None
    """Wall-clock seconds of training, evaluation and checkpoints excluded: beside a work limit, a guard
    against runaway runs (a run it stops first is ``capped``)."""

    def __post_init__(self) -> None:
        if self.steps is None and self.images is None and self.seconds is None:
            raise ConfigError("a budget needs at least one of steps, images, seconds")
        for kind in ("steps", "images"):
            if getattr(self, kind) is not None:
                expect_int(getattr(self, kind), f"budget {kind}", minimum=1)
        if self.seconds is not None:
            object.__setattr__(self, "seconds", expect_number(self.seconds, "budget seconds", positive=True))

    @classmethod
    def from_dict(cls, values: dict) -> Budget:
        unknown = set(values) - set(_KINDS)
        if unknown:
            raise ConfigError(f"unknown budget kind(s) {', '.join(sorted(unknown))}; valid: {', '.join(_KINDS)}")
        return cls(steps=values.get("steps"), images=values.get("images"), seconds=values.get("seconds"))

    def merged(self, overrides: dict) -> Budget:
        """A copy with some limits replaced (CLI ``--budget`` over the suite's)."""
        values = asdict(self)
        values.update(overrides)
        return Budget.from_dict(values)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def kind(self) -> str:
        """What mainly bounds this budget: 'images', 'steps' or 'seconds' (for leaderboards)."""
        if self.images is not None:
            return "images"
        if self.steps is not None:
            return "steps"
        return "seconds"


def parse_budget_overrides(text: str) -> dict:
    """``"images=60000,seconds=120"`` -> ``{"images": 60000, "seconds": 120.0}`` (ranges are Budget's to check)."""
    out: dict = {}
    for part in split_items(text):
        pair = split_pair(part)
        if pair is None or pair[0] not in _KINDS:
            raise ConfigError(
                f"--budget expects KIND=VALUE[,KIND=VALUE] with KIND in {', '.join(_KINDS)}, got {part!r}")
        key, value = pair
        if key in out:
            raise ConfigError(f"--budget gives {key} twice")
        try:
            out[key] = float(value) if key == "seconds" else int(value)
        except ValueError:
            what = "a number" if key == "seconds" else "a whole number"
            raise ConfigError(f"--budget {key}: expected {what}, got {value!r}") from None
    if not out:
        raise ConfigError("--budget is empty")
    return out


@dataclass
class BudgetTracker:
    """Counts the work done against a :class:`Budget`.

    ``seconds`` counts training time only (excluding checkpoints and evaluation),
    accumulated across resumes so that a resumed run has the same total budget.
    """

    budget: Budget
    steps: int = 0
    images: int = 0
    seconds: float = 0.0

    def update(self, images: int, seconds: float) -> None:
        self.steps += 1
        self.images += images
        self.seconds += seconds

    def exhausted(self) -> bool:
        b = self.budget
        return (
            (b.steps is not None and self.steps >= b.steps)
            or (b.images is not None and self.images >= b.images)
            or (b.seconds is not None and self.seconds >= b.seconds)
        )

    def stopped_by(self) -> str | None:
        b = self.budget
        for kind, used, limit in (
            ("steps", self.steps, b.steps),
            ("images", self.images, b.images),
            ("seconds", self.seconds, b.seconds),
        ):
            if limit is not None and used >= limit:
                return kind
        return None

    def fraction(self) -> float:
        """Progress in [0, 1]: the largest fraction over the set limits."""
        b = self.budget
        parts = [
            used / limit
            for used, limit in ((self.steps, b.steps), (self.images, b.images), (self.seconds, b.seconds))
            if limit
        ]
        return min(1.0, max(parts)) if parts else 0.0

    def achieved(self) -> dict:
        return {"steps": self.steps, "images": self.images, "seconds": round(self.seconds, 3),
                "stopped_by": self.stopped_by()}
