"""Hostile suite files and budgets: every value is checked by type and range, with a one-line ConfigError."""

import datetime
import math
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genbench.budget import Budget, parse_budget_overrides
from genbench.cli import main
from genbench.errors import ConfigError
from genbench.evaluate import EvalConfig
from genbench.suite import Suite, parse_suite

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GOOD = {"name": "t", "version": 1, "dataset": "mnist", "models": ["seed-gan"], "tiny": True,
        "budget": {"steps": 6}, "eval": {"n_samples": 16}}


def _with(**changes):
    raw = {**GOOD, **changes}
    return {k: v for k, v in raw.items() if v is not None}


def test_good_suite_parses():
    s = parse_suite(GOOD)
    assert s.name == "t" and s.version == 1 and s.seeds == (0,) and s.models[0].tiny is True


@pytest.mark.parametrize("changes, message", [
    # The findings: silent coercions and tracebacks.
    ({"seeds": "12"}, "`seeds` must be a list of integers, got a string"),
    ({"seeds": 7}, "`seeds` must be a list of integers, got an integer"),
    ({"seeds": [0, 0]}, "`seeds` lists 0 twice"),
    ({"tiny": "no"}, "`tiny` must be true or false, got a string"),
    ({"version": "one"}, "`version` must be an integer, got a string"),
    ({"budget": {"images": True}}, "budget images must be an integer, got a boolean"),
    # Same rules elsewhere in the file.
    ({"seeds": [1.0]}, "`seeds` must be a list of integers, got a float in it"),
    ({"seeds": [True]}, "`seeds` must be a list of integers, got a boolean in it"),
    ({"seeds": []}, "`seeds` must not be empty"),
    ({"seeds": [-1]}, "seed must be between 0 and"),
    ({"version": 1.5}, "`version` must be an integer, got a float"),
    ({"version": True}, "`version` must be an integer, got a boolean"),
    ({"version": 0}, "`version` must be at least 1"),
    ({"description": 3}, "`description` must be a string"),
    ({"dataset": ["mnist"]}, "`dataset` must be a string"),
    ({"models": "seed-gan"}, "`models` must be a non-empty list of generator names or \"all\""),
    ({"models": ["seed-gan", "seed-gan"]}, "`models` lists 'seed-gan' twice"),
    ({"models": [{"a": 1}]}, "`models` must be a non-empty list of generator names"),
    ({"models": ["nope"]}, "unknown generator 'nope'"),
    ({"budget": {"steps": 6.5}}, "budget steps must be an integer, got a float"),
    ({"budget": {"steps": 6.0}}, "budget steps must be an integer, got a float"),
    ({"budget": {"seconds": math.inf}}, "budget seconds must be a finite number"),
    ({"budget": {"seconds": math.nan}}, "budget seconds must be a finite number"),
    ({"budget": {"seconds": "10"}}, "budget seconds must be a number, got a string"),
    ({"budget": {"steps": 0}}, "budget steps must be at least 1"),
    ({"budget": 5}, "[budget]: expected a table"),
    ({"eval": {"n_samples": 0}}, "n_samples must be at least 2"),
    ({"eval": {"n_samples": 1}}, "n_samples must be at least 2"),
    ({"eval": {"n_samples": 16.0}}, "n_samples must be an integer, got a float"),
    ({"eval": {"nll_images": 0}}, "nll_images must be at least 1"),
    ({"eval": {"recon_images": 10_001}}, "recon_images must be at most 10000"),
    ({"eval": "fast"}, "[eval]: expected a table"),
    ({"model": {"seed-gan": {"tiny": 1}}}, "`tiny` must be true or false, got an integer"),
    ({"model": {"seed-gan": {"settings": {"batch_size": 64.7}}}},
     "seed-gan.batch_size must be an integer, got a float"),
    ({"model": {"seed-gan": {"settings": {"batch_size": "64"}}}},
     "seed-gan.batch_size must be an integer, got a string"),
    ({"model": {"seed-gan": {"settings": {"lr": -1.0}}}}, "seed-gan.lr must be > 0"),
    ({"model": {"seed-gan": {"settings": {"g_hidden": [16]}}}}, "seed-gan.g_hidden must have 2 entries"),
    ({"model": {"seed-gan": {"settings": "x"}}}, "settings: expected a table"),
    ({"model": {"seed-gan": []}}, "[model.seed-gan]: expected a table"),
    ({"model": []}, "[model]: expected a table"),
])
def test_bad_values_are_one_line_errors(changes, message):
    with pytest.raises(ConfigError) as info:
        parse_suite(_with(**changes))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "name", ["../../x", "/tmp/x", "a/b", "a\\b", ".", "..", "", "x\ny", "x y", "\x1b[31m", 3, True])
def test_suite_name_must_be_plain(name):
    with pytest.raises(ConfigError, match="`name` must be"):
        parse_suite(_with(name=name))


@pytest.mark.parametrize("name", ["mnist-small", "a.b_c-1", "...", "v2.1"])
def test_plain_suite_names_pass(name):
    assert parse_suite(_with(name=name)).name == name


def test_suite_objects_check_themselves():
    """Suites built in Python (run_suite accepts them) obey the same rules as files."""
    s = parse_suite(GOOD)
    with pytest.raises(ConfigError, match="suite name"):
        Suite("../x", 1, "", "mnist", (0,), s.models, s.eval, s.default_budget)
    with pytest.raises(ConfigError, match="seeds lists 3 twice"):
        Suite("x", 1, "", "mnist", (3, 3), s.models, s.eval, s.default_budget)
    with pytest.raises(ConfigError, match="n_samples must be at least 2"):
        EvalConfig(n_samples=0)


def test_suite_file_with_escaping_name_is_refused_by_the_cli(tmp_path):
    suite = tmp_path / "evil.toml"
    suite.write_text('name = "../../escaped"\nversion = 1\ndataset = "mnist"\nmodels = ["seed-gan"]\n'
                     'tiny = true\n[budget]\nsteps = 2\n')
    r = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and r.output.startswith("Error: ") and r.output.count("\n") == 1
    assert "`name` must be a plain name" in r.output
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, message", [
    ("images=inf", "--budget images: expected a whole number, got 'inf'"),
    ("images=1e400", "--budget images: expected a whole number, got '1e400'"),
    ("images=64.7", "--budget images: expected a whole number, got '64.7'"),
    ("seconds=inf", "budget seconds must be a finite number"),
    ("seconds=1e400", "budget seconds must be a finite number"),
    ("seconds=nan", "budget seconds must be a finite number"),
    ("images=10,images=20", "--budget gives images twice"),
])
def test_bad_budget_text(text, message):
    with pytest.raises(ConfigError) as info:
        Budget.from_dict(parse_budget_overrides(text))
    assert message in str(info.value)


@pytest.mark.parametrize("budget", ["images=inf", "images=1e400", "seconds=1e400"])
def test_bad_budget_on_the_command_line_is_one_line(budget, tmp_path):
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--budget", budget, "--out", str(tmp_path)])
    assert r.exit_code == 2 and r.output.startswith("Error: ") and r.output.count("\n") == 1, r.output


def test_budget_objects_check_types():
    assert Budget(steps=3, seconds=2) == Budget(steps=3, seconds=2.0)
    for bad in ({"steps": True}, {"steps": 2.0}, {"images": "5"}, {"seconds": True}):
        with pytest.raises(ConfigError):
            Budget(**bad)


@pytest.mark.parametrize("seeds, message", [("0,0", "lists 0 twice"), ("-1", "between 0 and")])
def test_cli_seeds_checked(seeds, message, tmp_path):
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--seeds", seeds, "--out", str(tmp_path)])
    assert r.exit_code == 2 and message in r.output and r.output.count("\n") == 1, r.output


# -- property: any TOML-shaped values give a valid Suite or a one-line ConfigError ---------------------

_scalars = st.one_of(
    st.integers(min_value=-2**63, max_value=2**63 - 1), st.floats(), st.booleans(), st.text(max_size=12),
    st.sampled_from(["mnist", "fashion-mnist", "all", "seed-gan", "dcgan", "t", "../x", "", "12"]),
    st.datetimes().map(lambda d: d.replace(microsecond=0)), st.dates(), st.times(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["steps", "images", "seconds", "n_samples", "nll_images", "recon_images",
                                         "budget", "settings", "tiny", "seed-gan", "lr", "batch_size", "x"]),
                        inner, max_size=4),
    ),
    max_leaves=10,
)
_valid = {
    "name": st.sampled_from(["t", "a.b", "v-1_x"]),
    "version": st.integers(1, 5),
    "dataset": st.sampled_from(["mnist", "fashion-mnist"]),
    "seeds": st.lists(st.integers(0, 5), min_size=1, max_size=4, unique=True),
    "models": st.one_of(st.just("all"), st.lists(st.sampled_from(["seed-gan", "dcgan"]), min_size=1, unique=True)),
    "tiny": st.booleans(),
    "budget": st.fixed_dictionaries({}, optional={"steps": st.integers(1, 10**6), "images": st.integers(1, 10**6),
                                                   "seconds": st.floats(0.1, 1e4)}).filter(bool),
    "eval": st.fixed_dictionaries({}, optional={"n_samples": st.integers(2, 5000), "nll_images": st.integers(1, 10_000),
                                                 "recon_images": st.integers(1, 10_000)}),
    "model": st.just({"seed-gan": {"tiny": True, "settings": {"lr": 1e-3, "batch_size": 8}, "budget": {"steps": 3}}}),
    "description": st.text(max_size=20),
}
_keys = [*sorted(_valid), "extra"]


@st.composite
def _suites(draw):
    """A valid suite with 0-2 of its values replaced by random ones and, sometimes, a key dropped or added."""
    raw = {k: draw(v) for k, v in _valid.items()}
    if "seed-gan" not in raw["models"] and raw["models"] != "all":
        raw.pop("model")
    for key in draw(st.lists(st.sampled_from(_keys), max_size=2, unique=True)):
        raw[key] = draw(_values)
    if isinstance(raw.get("model"), dict) and draw(st.booleans()):
        setting = draw(st.sampled_from(["lr", "batch_size", "g_hidden", "latent_dim", "beta1", "nope"]))
        raw["model"] = {"seed-gan": {"settings": {setting: draw(_values)}}}
    if draw(st.booleans()) and draw(st.booleans()):
        raw.pop(draw(st.sampled_from(sorted(raw))))
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_suites())
def test_random_suite_values_give_a_suite_or_a_one_line_error(raw):
    try:
        suite = parse_suite(raw, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(suite.version, int) and not isinstance(suite.version, bool) and suite.version >= 1
    assert all(isinstance(s, int) and not isinstance(s, bool) for s in suite.seeds)
    assert len(set(suite.seeds)) == len(suite.seeds) and suite.seeds
    assert suite.name not in (".", "..") and "/" not in suite.name
    assert all(isinstance(m.tiny, bool) for m in suite.models)
    assert suite.eval.n_samples >= 2


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_random_toml_text_gives_a_suite_or_a_one_line_error(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "s.toml"
    path.write_text(GOOD_TOML + text, encoding="utf-8")
    from genbench.suite import load_suite

    try:
        load_suite(str(path))
    except ConfigError as exc:
        assert "\n" not in str(exc)


GOOD_TOML = 'name = "t"\nversion = 1\ndataset = "mnist"\nmodels = ["seed-gan"]\ntiny = true\n[budget]\nsteps = 6\n'


def test_toml_datetimes_are_refused_cleanly():
    raw = tomllib.loads(GOOD_TOML.replace("version = 1", "version = 1979-05-27"))
    assert isinstance(raw["version"], datetime.date)
    with pytest.raises(ConfigError, match="`version` must be an integer, got a date"):
        parse_suite(raw)
