"""The one splitter of the command line's ``a,b`` and ``KEY=VALUE[,KEY=VALUE]`` syntax, and its callers' messages."""

import pytest

from genbench.budget import parse_budget_overrides
from genbench.config import parse_set_options
from genbench.errors import ConfigError, InputError
from genbench.kv import split_items, split_pair
from genbench.verify.check import Tolerance, parse_tolerances


def test_split_items_strips_and_drops_blanks():
    assert split_items(" a, b,,c , ") == ["a", "b", "c"]
    assert split_items("") == [] and split_items(None) == [] and split_items(" , ") == []


def test_split_pair_splits_at_the_first_equals_sign():
    assert split_pair(" fid = 10% ") == ("fid", "10%")
    assert split_pair("a=b=c") == ("a", "b=c")
    assert split_pair("lr=") == ("lr", "")
    assert split_pair("images") is None and split_pair(" =3") is None


def test_every_caller_reads_the_same_syntax():
    assert parse_budget_overrides(" images = 100 , seconds=2.5,") == {"images": 100, "seconds": 2.5}
    assert parse_tolerances(" fid = 10% ,kid=0.001,") == {"fid": Tolerance(0.1, True), "kid": Tolerance(0.001, False)}
    assert parse_set_options([" dcgan.lr = 1e-4", "ddpm.channels=(32,64)"]) == {
        "dcgan": {"lr": "1e-4"}, "ddpm": {"channels": "(32,64)"}}  # --set takes one pair: commas stay in values


@pytest.mark.parametrize("call, error, message", [
    (lambda: parse_budget_overrides("=5"), ConfigError, "--budget expects KIND=VALUE[,KIND=VALUE] with KIND in"),
    (lambda: parse_budget_overrides("images=1,images=2"), ConfigError, "--budget gives images twice"),
    (lambda: parse_tolerances("fid"), InputError, "--tol expects METRIC=N% or METRIC=N (absolute), got 'fid'"),
    (lambda: parse_tolerances("=5%"), InputError, "got '=5%'"),
    (lambda: parse_set_options(["=1"]), ConfigError, "--set expects MODEL.FIELD=VALUE, got '=1'"),
    (lambda: parse_set_options(["dcgan.lr"]), ConfigError, "--set expects MODEL.FIELD=VALUE, got 'dcgan.lr'"),
])
def test_each_caller_keeps_its_own_message(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
