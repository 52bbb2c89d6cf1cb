"""Model settings: strict types from suites, strict text conversion for --set, ranges checked before training."""

import math
import re
from dataclasses import dataclass, field

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.config import make_config, validate_config
from genbench.errors import ConfigError
from genbench.registry import (
    get_generator,
    load_generator_from_file,
    register_generator,
)
from tests.conftest import DummyGenerator


@pytest.mark.parametrize("overrides, message", [
    ({"batch_size": 64.7}, "dummy.batch_size must be an integer, got a float"),
    ({"batch_size": 64.0}, "dummy.batch_size must be an integer, got a float"),
    ({"batch_size": True}, "dummy.batch_size must be an integer, got a boolean"),
    ({"batch_size": 0}, "dummy.batch_size must be at least 1"),
    ({"lr": -1.0}, "dummy.lr must be > 0"),
    ({"lr": 0}, "dummy.lr must be > 0"),
    ({"lr": math.nan}, "dummy.lr must be a finite number"),
    ({"lr": math.inf}, "dummy.lr must be a finite number"),
    ({"lr": True}, "dummy.lr must be a number, got a boolean"),
    ({"lr": [1e-3]}, "dummy.lr must be a number, got a list"),
    ({"diverge_at": 1.5}, "dummy.diverge_at must be an integer, got a float"),
])
def test_python_values_are_checked(overrides, message):
    with pytest.raises(ConfigError) as info:
        make_config(DummyGenerator, overrides)
    assert message in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("64.7", "dummy.batch_size: cannot convert '64.7' to int"),
    ("1e3", "dummy.batch_size: cannot convert '1e3' to int"),
    ("0", "dummy.batch_size must be at least 1"),
    ("-5", "dummy.batch_size must be at least 1"),
])
def test_set_text_for_int_fields(text, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        make_config(DummyGenerator, {"batch_size": text})


@pytest.mark.parametrize("text, message", [
    ("-1", "dummy.lr must be > 0, got -1.0"),
    ("nan", "dummy.lr must be a finite number, got nan"),
    ("inf", "dummy.lr must be a finite number"),
    ("1e400", "dummy.lr must be a finite number"),
    ("fast", "cannot convert 'fast' to float"),
])
def test_set_text_for_float_fields(text, message):
    with pytest.raises(ConfigError) as info:
        make_config(DummyGenerator, {"lr": text})
    assert message in str(info.value)


def test_text_is_converted_to_the_field_type():
    config = make_config(DummyGenerator, {"batch_size": "8", "lr": "1e-3", "diverge_at": "-1"})
    assert (config.batch_size, config.lr, config.diverge_at) == (8, 1e-3, -1)
    assert type(config.batch_size) is int and type(config.lr) is float
    gan = get_generator("seed-gan")
    assert make_config(gan, {"g_hidden": "32,16"}).g_hidden == (32, 16)
    assert make_config(gan, {"g_hidden": "(32, 16)"}).g_hidden == (32, 16)
    with pytest.raises(ConfigError, match=re.escape("seed-gan.g_hidden must have 2 entries, got 1")):
        make_config(gan, {"g_hidden": "32"})


def test_suite_values_are_not_text():
    """A suite file's `batch_size = "64"` is a string, not a number: only --set text is converted."""
    with pytest.raises(ConfigError, match=re.escape("dummy.batch_size must be an integer, got a string")):
        make_config(DummyGenerator, {"batch_size": "64"}, text=False)


def test_json_lists_become_tuples():
    """Configs read back from run.json hold lists where the dataclass has tuples."""
    gan = get_generator("seed-gan")
    config = make_config(gan, {"g_hidden": [16, 16], "d_hidden": [16, 16]}, text=False)
    assert config.g_hidden == (16, 16) and isinstance(config.g_hidden, tuple)
    with pytest.raises(ConfigError, match=r"seed-gan.g_hidden\[1\] must be an integer, got a float"):
        make_config(gan, {"g_hidden": [16, 16.5]}, text=False)


def test_batch_size_against_the_training_split():
    dcgan = get_generator("dcgan")
    config = make_config(dcgan, {"batch_size": "100000"})  # type and range, no split known yet
    message = "dcgan.batch_size must be at most 60000 (images in the training split), got 100000"
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(dcgan, config, train_size=60_000)
    validate_config(dcgan, make_config(dcgan, {"batch_size": "60000"}), train_size=60_000)


def test_configs_built_directly_are_checked_too():
    with pytest.raises(ConfigError, match=re.escape("dummy.batch_size must be an integer, got a float")):
        validate_config(DummyGenerator, DummyGenerator.Config(batch_size=16.5))


def test_every_builtin_default_and_tiny_config_is_valid():
    from genbench.registry import generator_names

    for name in generator_names():
        cls = get_generator(name)
        validate_config(cls, make_config(cls), train_size=60_000)
        validate_config(cls, make_config(cls, cls.tiny_config, text=False), train_size=60_000)


# -- constraints a user model declares ---------------------------------------------------------------

@dataclass
class _UserConfig:
    batch_size: int = 16
    lr: float = 1e-2
    diverge_at: int = -1
    depth: int = field(default=2, metadata={"ge": 1, "le": 8})
    dropout: float = field(default=0.0, metadata={"ge": 0.0, "lt": 1.0})
    mode: str = field(default="a", metadata={"choices": ("a", "b")})
    warmup: int = 0
    steps_hint: int | None = None

    def validate(self) -> None:
        if self.warmup > 10 * self.depth:
            raise ValueError(f"warmup ({self.warmup}) must be at most 10 x depth ({self.depth})")


class _UserModel(DummyGenerator):
    name = "user-model"
    Config = _UserConfig


@pytest.mark.parametrize("overrides, message", [
    ({"depth": "0"}, "user-model.depth must be >= 1, got 0"),
    ({"depth": 9}, "user-model.depth must be <= 8, got 9"),
    ({"dropout": "1.0"}, "user-model.dropout must be < 1.0, got 1.0"),
    ({"mode": "c"}, "user-model.mode must be one of a, b; got 'c'"),
    ({"warmup": "30", "depth": "2"}, "user-model: invalid settings: warmup (30) must be at most 10 x depth (2)"),
    ({"lr": "0"}, "user-model.lr must be > 0"),  # the generic rules hold for user models too
])
def test_user_config_constraints(overrides, message):
    with pytest.raises(ConfigError) as info:
        make_config(_UserModel, overrides)
    assert message in str(info.value)


def test_user_config_optional_field():
    assert make_config(_UserModel, {"steps_hint": "none"}).steps_hint is None
    assert make_config(_UserModel, {"steps_hint": "12"}).steps_hint == 12
    assert make_config(_UserModel, {"steps_hint": None}, text=False).steps_hint is None
    with pytest.raises(ConfigError, match=re.escape("user-model.steps_hint must be an integer, got a float")):
        make_config(_UserModel, {"steps_hint": 1.5}, text=False)


def test_generator_names_must_be_plain(tmp_path):
    class Escaping(DummyGenerator):
        name = "../../x"

    with pytest.raises(ValueError, match="must be a plain name"):
        register_generator(Escaping)
    src = tmp_path / "evil.py"
    src.write_text("from tests.conftest import DummyGenerator\nclass Evil(DummyGenerator):\n    name = 'a/../../b'\n")
    with pytest.raises(ConfigError, match=re.escape("Evil.name must be a plain name")):
        load_generator_from_file(f"{src}:Evil")


# -- through the command line: one line, exit 2, nothing trained or written ---------------------------

@pytest.mark.parametrize("setting, message", [
    ("dcgan.lr=-1", "dcgan.lr must be > 0, got -1.0"),
    ("dcgan.lr=nan", "dcgan.lr must be a finite number, got nan"),
    ("dcgan.batch_size=0", "dcgan.batch_size must be at least 1, got 0"),
    ("dcgan.batch_size=64.7", "dcgan.batch_size: cannot convert '64.7' to int"),
])
def test_bad_set_values_fail_before_training(setting, message, tmp_path):
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--models", "dcgan", "--set", setting,
                                  "--out", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert r.output == f"Error: {message}\n"
    assert list(tmp_path.iterdir()) == []
