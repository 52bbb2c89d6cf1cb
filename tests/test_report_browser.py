"""The HTML leaderboard in a real browser (Debian's chromium + chromedriver, driven by selenium).

At 1400x900 the page must not scroll sideways (every ``<details>`` block open too),
every image must decode, and no request may leave the file: the browser's own
network log (Chrome DevTools ``Network.requestWillBeSent`` events) must hold only
``file:`` and ``data:`` URLs. Two control pages show that each check can fail.
Without the browser the tests skip, naming what is missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from genbench.report.leaderboard import write_report
from genbench.results import write_run_record
from genbench.run.task import save_grid
from tests.conftest import REPO

WIDTH, HEIGHT = 1400, 900
LOCAL_SCHEMES = ("file:", "data:")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    absent = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if absent:
        return f"{' and '.join(absent)} not found (Debian: apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    why = _missing()
    if why:
        pytest.skip(f"no real browser for the HTML report test: {why}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                f"--window-size={WIDTH},{HEIGHT}", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _inspect(driver, page: Path) -> dict:
    """Load ``page`` and measure it: widths (details closed and open), images, requests."""
    driver.get_log("performance")  # drop the events of earlier pages
    driver.get(page.resolve().as_uri())
    closed = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    opened = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    images = driver.execute_script(
        "return Array.from(document.images, i => [i.src.slice(0, 22), i.complete, i.naturalWidth])")
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    requests, blocked = {}, {}  # request id -> URL; URL -> why the browser refused to send it
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            requests[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked[requests.get(params["requestId"])] = params["blockedReason"]
    tables = driver.execute_script(  # each table: its right edge and widths against the page's
        "return Array.from(document.querySelectorAll('table'), t => [Math.ceil(t.getBoundingClientRect().right),"
        " t.scrollWidth, t.clientWidth, document.documentElement.clientWidth])")
    return {"closed": closed, "opened": opened, "images": images, "resources": resources, "tables": tables,
            "requests": list(requests.values()), "blocked": blocked,
            "details": driver.execute_script("return document.querySelectorAll('details').length")}


def _assert_self_contained_and_fits(seen: dict, page: Path) -> None:
    for state in ("closed", "opened"):
        scroll_width, client_width = seen[state]
        assert client_width > WIDTH - 40, seen  # the window really is 1400 px wide (less a scrollbar)
        assert scroll_width <= client_width, f"horizontal overflow with details {state}: {seen[state]}"
    for right, scroll_width, client_width, page_width in seen["tables"]:  # measured with every details open
        assert scroll_width <= client_width and right <= page_width, seen["tables"]
    assert seen["images"] and all(src.startswith("data:image/png") for src, _, _ in seen["images"])
    assert all(complete and width > 0 for _, complete, width in seen["images"]), seen["images"]
    assert page.resolve().as_uri() in seen["requests"]  # the log records requests: the page's own is there
    assert all(url.startswith(LOCAL_SCHEMES) for url in seen["requests"]), seen["requests"]
    assert all(url.startswith(LOCAL_SCHEMES) for url in seen["resources"]), seen["resources"]


def test_committed_mnist_small_page(browser, tmp_path):
    """The leaderboard of the committed mnist-small records, rebuilt by this code."""
    source = REPO / "results" / "mnist-small"
    suite_dir = tmp_path / "mnist-small"
    for run_file in source.glob("*/seed*/*"):
        if run_file.name in ("run.json", "samples.png", "train_log.csv"):
            target = suite_dir / run_file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_file, target)
    page = write_report(suite_dir)["html"]
    seen = _inspect(browser, page)
    _assert_self_contained_and_fits(seen, page)
    models = {p.name for p in source.iterdir() if p.is_dir()}
    # One sample grid per model, the training-loss figure and the two FID-against-cost plots.
    assert len(seen["images"]) == len(models) + 3
    assert seen["details"] == len(models)


def _record(model, seed, fid, role=None, status="ok", error=None, suite="stress"):
    rec = {
        "schema_version": 2, "model": {"name": model, **({"role": role} if role else {})}, "seed": seed,
        "status": status, "error": error, "suite": {"name": suite, "version": 1}, "dataset": "mnist",
        "device": "cpu", "machine": {"processor": "cpu", "cpu_count": 2},
        "budget": {"kind": "images", "achieved": {"images": 1_234_567}},
        "timings": {"train_seconds": 100.0 + seed},
        "metrics": {} if status != "ok" else {
            "fid": fid, "is": 9.99, "precision": 0.0040, "recall": 0.0040, "copy_fraction": 0.0512,
            "nll_bpd": 1.2345, "train_images_per_s": 123456.7, "sample_images_per_s": 98765.4,
            "train_flops_per_s": 112604640387.0 + seed, "num_parameters": 123456789, "peak_memory_mb": 12345.6},
    }
    return rec


def test_a_crowded_page_still_fits(browser, tmp_path):
    """Long names, many seeds, huge numbers, a failed seed's long error and a compared folder: no overflow."""
    long_name = "a-very-long-model-name-that-someone-chose-for-their-own-generator-v2"
    mine, refs = tmp_path / "mine" / "stress", tmp_path / "refs" / "stress"
    grid = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for folder, models in ((mine, {long_name: None, "m2": None}),
                           (refs, {"m3": None, "real-data": "ceiling", "train-copy": "memorizer"})):
        for model, role in models.items():
            for seed in range(10):
                run_dir = folder / model / f"seed{seed}"
                failed = seed == 9 and role is None
                write_run_record(run_dir, _record(model, seed, 1000.0 * (seed + 1), role, "failed" if failed else "ok",
                                                  "RuntimeError: " + "x" * 400 if failed else None))
                save_grid(grid, run_dir / "samples.png")
                (run_dir / "train_log.csv").write_text(
                    "step,images,seconds,loss_d,loss_g,a_loss_with_a_long_name\n"
                    + "".join(f"{s},{s * 64},{s / 10},{1 / s},{s ** 0.5},{-s}\n" for s in range(1, 200)))
    page = write_report(mine, [refs])["html"]
    seen = _inspect(browser, page)
    _assert_self_contained_and_fits(seen, page)
    assert len(seen["images"]) == 5 + 3  # five sample grids, loss curves, two plots


def test_the_checks_can_fail(browser, tmp_path):
    """Controls: a page that is too wide and a page that loads from the network are caught."""
    wide = tmp_path / "wide.html"
    wide.write_text('<!DOCTYPE html><html><body><div style="width:2000px">x</div></body></html>')
    seen = _inspect(browser, wide)
    assert seen["closed"][0] > seen["closed"][1]

    remote = tmp_path / "remote.html"
    remote.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    seen = _inspect(browser, remote)
    assert "http://127.0.0.1:9/x.png" in seen["requests"] and not seen["blocked"]


def test_the_content_security_policy_blocks_what_slips_in(browser, tmp_path):
    """An external image injected into a generated page is never sent: the browser blocks it by the page's CSP."""
    suite_dir = tmp_path / "stress"
    write_run_record(suite_dir / "m" / "seed0", _record("m", 0, 5.0))
    page = write_report(suite_dir)["html"]
    html = page.read_text()
    page.write_text(html.replace("</body>", '<img src="http://127.0.0.1:9/x.png"></body>'))
    seen = _inspect(browser, page)
    assert seen["blocked"] == {"http://127.0.0.1:9/x.png": "csp"}


def test_a_compared_folder_with_a_long_absolute_path_fits(browser, tmp_path):
    """The `from` column names a compared folder briefly (full path in a tooltip): every table fits 1400 px."""
    mine = tmp_path / "mine" / "stress"
    refs = tmp_path.joinpath(*["a-deeply-nested-folder-of-someones-experiments"] * 6, "results", "stress")
    models = {mine: {f"competitor-{i}": None for i in range(6)},
              refs: {"dcgan-from-last-week": None, "real-data": "ceiling", "train-copy": "memorizer",
                     "independent-pixels": "floor"}}
    for folder, entries in models.items():
        for i, (model, role) in enumerate(entries.items()):
            for seed in range(3):
                write_run_record(folder / model / f"seed{seed}", _record(model, seed, 10.0 * (i + 1) + seed, role))
    page = write_report(mine, [refs.absolute()])["html"]
    seen = _inspect(browser, page)
    _assert_self_contained_and_fits(seen, page)
    assert len(seen["tables"]) >= 2 + 10  # competitors, reference rows and each model's details
    titles = browser.execute_script("return Array.from(document.querySelectorAll('td span[title]'), s => s.title)")
    assert titles and set(titles) == {str(refs.absolute())}


def test_the_committed_page_with_a_new_model_and_a_long_compared_path_fits(browser, tmp_path):
    """As a user runs it: one new model, `--compare` with the committed mnist-small folder at a long absolute path."""
    source = REPO / "results" / "mnist-small"
    refs = tmp_path.joinpath(*["someones-experiments-folder"] * 4, "genbench", "results", "mnist-small")
    for run_file in source.glob("*/seed*/*"):
        if run_file.name in ("run.json", "samples.png", "train_log.csv"):
            target = refs / run_file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_file, target)
    mine = tmp_path / "mine" / "mnist-small"
    for seed_dir in sorted((refs / "seed-gan").glob("seed*")):
        record = json.loads((seed_dir / "run.json").read_text())
        record["model"]["name"] = "ext-lsgan"
        write_run_record(mine / "ext-lsgan" / seed_dir.name, record)
    page = write_report(mine, [refs.absolute()])["html"]
    seen = _inspect(browser, page)
    _assert_self_contained_and_fits(seen, page)
