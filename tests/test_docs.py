"""The docs say what the code does: excerpts of files equal the files, option lists equal the CLI's,
the open-source files agree with pyproject.toml, and the built site searches from disk and shows no
raw Sphinx roles."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from genbench.cli.eval import eval_command
from genbench.evaluate import METRIC_GROUPS, RECONSTRUCTION_KEYS
from genbench.metrics.eval_throughput import KEY_EVAL_IMAGES_PER_S, KEY_FEATURE_IMAGES_PER_S, KEY_N_SAMPLES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _table_rows(markdown: str, header_start: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header line starts with ``header_start``, cells stripped."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
    return rows


def _code_names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _assert_subset(excerpt: dict, real: dict, where: str = "") -> None:
    for key, value in excerpt.items():
        assert key in real, f"{where}{key} is in the excerpt but not in the file"
        if isinstance(value, dict):
            assert isinstance(real[key], dict), f"{where}{key}"
            _assert_subset(value, real[key], f"{where}{key}.")
        else:
            assert value == real[key], f"{where}{key}: the excerpt says {value!r}, the file {real[key]!r}"


def test_the_suites_page_excerpt_of_mnist_small_equals_the_suite_file():
    page = _read(DOCS / "suites.md")
    intro = "`genbench/suites/mnist-small.toml`, shortened:"
    block = re.search(re.escape(intro) + r"\s*```toml\n(.*?)```", page, re.DOTALL)
    assert block, "docs/suites.md lost its excerpt of mnist-small.toml"
    excerpt = tomllib.loads(block.group(1))
    real = tomllib.loads(_read(REPO / "genbench" / "suites" / "mnist-small.toml"))
    # The excerpt shows the parts a reader needs: budgets (a default and one model's) and the evaluation.
    assert {"name", "version", "budget", "eval", "model"} <= set(excerpt)
    assert excerpt["budget"] and excerpt["model"]
    _assert_subset(excerpt, real)


def _hooks():
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", REPO / "scripts" / "mkdocs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documented_metric_groups(markdown: str) -> dict[str, tuple[str, ...]]:
    groups = {}
    for row in _table_rows(markdown, "| `--metrics` group |"):
        (group,) = _code_names(row[0])
        groups[group] = tuple(_code_names(row[1]))
    return groups


def test_the_eval_page_lists_the_metric_groups_the_cli_accepts_with_their_keys(tmp_path):
    page = _read(DOCS / "eval.md")
    assert "<!-- genbench:metric-groups -->" in page  # where the build writes the registry's table
    documented = _documented_metric_groups(_hooks().on_page_markdown(page))
    # What --metrics accepts, in the CLI's own words: the list an unknown group is refused with.
    with pytest.raises(click.BadParameter) as refused:
        eval_command.make_context("eval", ["--samples", str(tmp_path), "--metrics", "no-such-group"])
    accepted = refused.value.message.split("choose from ", 1)[1].split(", ")
    assert list(documented) == accepted
    ctx = eval_command.make_context("eval", ["--samples", str(tmp_path), "--metrics", ",".join(documented)])
    assert ctx.params["metric_groups"] == frozenset(documented)
    default = next(p for p in eval_command.params if p.name == "metric_groups").default
    assert default.split(",") == list(documented)  # by default all are computed, as the page says
    assert documented == dict(METRIC_GROUPS)  # the keys each group writes to eval.json
    # the built-in groups, each once, with what genbench has always written under them
    assert documented["ssl"] == ("fid_ssl", "precision_ssl", "recall_ssl")
    assert documented["classes"] == ("classes_covered", "class_kl", "fid_intra")


def test_the_eval_page_names_the_other_metric_keys_of_eval_json():
    page = _read(DOCS / "eval.md")
    paragraph = page[page.index("Beside them `eval.json` holds"):]
    named = set(_code_names(paragraph[:paragraph.index("\n\n")]))
    assert {KEY_N_SAMPLES, KEY_FEATURE_IMAGES_PER_S, KEY_EVAL_IMAGES_PER_S, *RECONSTRUCTION_KEYS} <= named


def test_getting_started_lists_every_extra_and_installs_from_the_checkout():
    page = _read(DOCS / "getting-started.md")
    extras = {_code_names(row[0])[0] for row in _table_rows(page, "| extra |")}
    assert extras == set(PYPROJECT["project"]["optional-dependencies"])
    # One install form everywhere: the checkout, editable (`pip install -e .` or `-e '.[extra]'`).
    for path in (REPO / "README.md", *sorted(DOCS.glob("*.md"))):
        for command in re.findall(r"pip install [^`\n#]*", _read(path)):
            form = r"pip install -e (\.|\./\.genbench|'\.\[[a-z,]+\]')( && .*)?\s*"
            assert re.fullmatch(form, command), (path.name, command)


def test_the_readme_quick_start_installs_the_base_package_and_runs_smoke_first():
    text = _read(REPO / "README.md")
    start = text.index("## Install and run")
    commands = [line.split("#")[0].strip() for line in text[start:].split("```bash\n", 1)[1].split("```")[0]
                .splitlines()]
    assert commands == ["pip install -e .", "genbench run --suite smoke --out my-results",
                        "genbench run --suite mnist-small --out my-results"]


def test_license_and_citation_agree_with_pyproject():
    project = PYPROJECT["project"]
    assert project["license"] == {"text": "MIT"}
    license_text = _read(REPO / "LICENSE")
    assert license_text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the genbench authors" in license_text
    assert "Permission is hereby granted, free of charge" in license_text
    citation = yaml.safe_load(_read(REPO / "CITATION.cff"))
    assert citation["cff-version"] == "1.2.0"
    assert {"authors", "cff-version", "message", "title"} <= set(citation)  # CFF 1.2.0's required keys
    assert citation["authors"] == [{"name": "the genbench authors"}]
    assert citation["license"] == "MIT"
    assert citation["version"] == project["version"]
    assert citation["title"].startswith(project["name"])


# --- the built site ------------------------------------------------------------------------------------

SPHINX_ROLE = re.compile(r":(?:func|class|meth|mod|attr|exc|data|obj|ref):(?:`|<code>)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_site_searches_when_opened_from_disk(site):
    # Material reads search/search_index.js, not the JSON, under file:// (fetch is refused there).
    script = _read(site / "search" / "search_index.js")
    prefix = "var __index = "
    assert script.startswith(prefix)
    index = json.loads(script[len(prefix):])
    locations = {doc["location"].split("#")[0] for doc in index["docs"]}
    assert {"getting-started.html", "your-own-model.html", "api.html"} <= locations  # pages as files
    assert (site / "getting-started.html").is_file()
    # The Web Worker shim search needs under file:// is served from the site, not from a CDN.
    assert (site / "javascripts" / "iframe-worker-shim.js").is_file()
    page = _read(site / "index.html")
    assert 'src="javascripts/iframe-worker-shim.js"' in page
    assert not re.findall(r'<script[^>]+src="(?:https?:)?//', page)


def test_the_built_eval_page_shows_the_registrys_metric_groups(site):
    html = _read(site / "eval.html")
    assert "genbench:metric-groups" not in html
    for name, keys in METRIC_GROUPS.items():
        assert f"<td><code>{name}</code></td>" in html, name
        assert ", ".join(f"<code>{k}</code>" for k in keys) in html, name


def test_no_page_of_the_site_shows_a_raw_sphinx_role(site):
    found = []
    for page in sorted(site.rglob("*.html")):
        html = _read(page)
        for match in SPHINX_ROLE.finditer(html):
            anchors = re.findall(r'id="(genbench\.[\w.]+)"', html[:match.start()])
            where = anchors[-1] if anchors else ""
            found.append(f"{page.relative_to(site)} {where}: {html[match.start():match.end() + 40]!r}")
    assert not found, "\n".join(found)


# --- the CLI reference page -----------------------------------------------------------------------------


def _commands(group: click.Command, path: str = "genbench") -> dict[str, click.Command]:
    """Every command of the CLI by its full path ("genbench baseline save"), groups included."""
    found = {path: group}
    for name, sub in getattr(group, "commands", {}).items():
        found.update(_commands(sub, f"{path} {name}"))
    return found


def _sections(html: str) -> dict[str, str]:
    """The text of each command's section of the built cli.html, by heading id ("genbench-baseline-save")."""
    import html as html_lib

    parts = re.split(r'<h[2-6] id="(genbench[\w-]*)"', html)
    return {anchor: html_lib.unescape(re.sub(r"<[^>]+>", "", body)) for anchor, body in zip(parts[1::2], parts[2::2],
                                                                                            strict=True)}


def _option_entry(section: str, opt: str) -> str:
    """An option's entry in a rendered `--help` options list: its line and the indented lines that continue it."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"\s+(?:-\w, )?{re.escape(opt)}\b", line))
    entry = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("      ") or not line.strip():  # the next option, or the end of the list
            break
        entry.append(line)
    return "\n".join(entry)


def test_the_api_reference_shows_the_whole_generator_protocol_capabilities_and_budget_fields(site):
    import dataclasses

    from genbench.budget import Budget
    from genbench.protocol import Capability, Generator

    text = re.sub(r"<[^>]+>", " ", _read(site / "api.html"))
    class_attributes = [n for n in Generator.__annotations__ if not n.startswith("_")]
    assert {"search_space", "primary_metric", "tiny_config", "sample_in_one_call"} <= set(class_attributes)
    for name in [*class_attributes, *(c.name for c in Capability), *(f.name for f in dataclasses.fields(Budget))]:
        assert re.search(rf"\b{name}\b", text), f"api.html does not show {name}"
    # Each is shown with what it means, not a bare name: the attribute docstrings are rendered.
    for doc in ("What ``genbench tune`` minimises", "Training images seen", "every generator has it"):
        assert " ".join(doc.replace("``", "").split()) in " ".join(text.split()), doc


def test_the_cli_reference_renders_every_command_with_its_required_options_marked(site):
    from genbench.cli import main

    page = _read(site / "cli.html")
    text = re.sub(r"<[^>]+>", "", page)
    # What mkdocs-click's table style printed for click 8.5's unset defaults and options without help.
    assert "Sentinel" not in text and "N/A" not in text
    overview = re.search(r"```text\n(.*?)```", _read(DOCS / "cli.md"), re.DOTALL).group(1)
    assert max(map(len, overview.splitlines())) <= 92, "the overview is cut at the right edge of the page"
    sections = _sections(page)
    commands = _commands(main)
    leaves = {path for path, cmd in commands.items() if not isinstance(cmd, click.Group)}
    assert {"genbench tune", "genbench reproduce", "genbench check", "genbench speed"} <= leaves
    for path, command in commands.items():
        anchor = path.replace(" ", "-")
        assert anchor in sections, f"{path} has no section in the CLI reference"
        if path in leaves:
            assert re.search(rf"^{re.escape(path)}\b", overview, re.MULTILINE), f"{path} is not in the overview"
        for param in command.params:
            if isinstance(param, click.Option) and param.required:
                entry = _option_entry(sections[anchor], param.opts[0])
                marks = re.findall(r"\[([^\]]*)\]\s*$", " ".join(entry.split()))  # click's closing [...; required]
                assert marks and "required" in marks[0].split("; "), f"{path} {param.opts[0]} not marked:\n{entry}"
    # Help text with a '|' is shown whole (the table style cut it there).
    assert "(N,H,W)|(N,1,H,W)" in sections["genbench-eval"]


def test_eval_help_names_every_metrics_group():
    from click.testing import CliRunner

    from genbench.cli import main

    shown = " ".join(CliRunner().invoke(main, ["eval", "--help"], terminal_width=200).output.split())
    listed = shown.split("Sample-quality metric groups to compute, comma-separated (the others are null): ")[1]
    listed = re.sub(r"\([^)]*\)", "", listed.split(".")[0])
    assert [g.strip() for g in listed.split(";")] == list(METRIC_GROUPS)


# --- one CLI grammar ------------------------------------------------------------------------------------

# Names that mean different things in different commands, as docs/cli.md says; any other shared name
# must have one type and one default.
TWO_MEANINGS = {"--tol", "--suite"}


def _default(option: click.Option):
    """The option's default; None for none (click 8.5 keeps an unset default as its UNSET sentinel)."""
    return None if option.default is getattr(click.core, "UNSET", object()) else option.default


def _signature(option: click.Option) -> tuple:
    """An option's type and default, as a user meets them."""
    kind = option.type
    detail: tuple = ()
    if isinstance(kind, click.Choice):
        detail = tuple(kind.choices)
    elif isinstance(kind, click.Path):
        detail = (kind.file_okay, kind.dir_okay, kind.allow_dash)
    elif isinstance(kind, (click.IntRange, click.FloatRange)):
        detail = (kind.min, kind.max)
    return kind.name, detail, option.is_flag, option.multiple, option.required, _default(option)


def _leaf_options() -> dict[str, dict[str, click.Option]]:
    from genbench.cli import main

    return {path.removeprefix("genbench "): {o.opts[0]: o for o in cmd.params if isinstance(o, click.Option)
                                             and o.opts[0].startswith("--") and o.name != "help"}
            for path, cmd in _commands(main).items() if not isinstance(cmd, click.Group)}


def test_an_option_of_several_commands_has_one_type_and_one_default():
    by_name: dict[str, dict[str, tuple]] = {}
    for command, options in _leaf_options().items():
        for name, option in options.items():
            by_name.setdefault(name, {})[command] = _signature(option)
    differing = {name: where for name, where in by_name.items() if len(set(where.values())) > 1}
    assert set(differing) == TWO_MEANINGS, {k: v for k, v in differing.items() if k not in TWO_MEANINGS}


def test_the_grammar_table_is_what_the_commands_take():
    rows = _table_rows(_read(DOCS / "cli.md"), "| option | commands | meaning | default |")
    options = _leaf_options()
    documented = set()
    for cell_options, cell_commands, _meaning, cell_default in rows:
        commands = {c.strip() for c in cell_commands.split(",")}
        for name in (n.split()[0] for n in _code_names(cell_options)):
            documented.add(name)
            having = {cmd for cmd, opts in options.items() if name in opts}
            assert having == commands, f"{name}: the table says {sorted(commands)}, the code {sorted(having)}"
            defaults = {_default(options[cmd][name]) for cmd in commands}
            (default,) = defaults
            if name in ("--out", "--device", "--seed"):  # the defaults the table names literally
                assert f"`{default}`" == cell_default.split()[0], f"{name}: {cell_default} vs {default!r}"
            elif name in ("--json", "--data-root", "--cpus-per-run", "--seeds"):
                assert default is None, name  # none: computed at run time, as the table says
            else:
                assert all(options[cmd][name].is_flag for cmd in commands) and not default, name  # off flags
    # Every option that several commands share is in the table, or named as meaning different things.
    shared = {name for name in {n for opts in options.values() for n in opts}
              if sum(name in opts for opts in options.values()) > 1}
    assert shared - documented - TWO_MEANINGS <= {"--models", "--model", "--budget", "--executor", "--ray-address",
                                                  "--compare", "--dataset", "--metrics", "--summary", "--junit-xml",
                                                  "--bench-bigger", "--metric", "--lens"}


def test_install_hints_in_messages_install_as_the_readme_does():
    # The README installs from the checkout (`pip install -e .`); a hint naming a `genbench[...]` package
    # from an index would fail: genbench is not published.
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    hints = []
    for path in sorted((REPO / "genbench").rglob("*.py")):
        hints += re.findall(r"pip install [^\"')]*'?[^\"')]*", _read(path))
    assert hints, "no install hint found: the pattern is out of date"
    for hint in hints:
        match = re.fullmatch(r"pip install -e '\.\[(\w+)\]", hint.strip())
        assert match and match.group(1) in extras, hint
