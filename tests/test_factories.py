"""greenai.factories: the one `MODULE:FUNCTION` rule (a dotted module or a .py file, then a
dotted name), a FILE.py importing the modules beside it as `python FILE.py` would, and
sys.path and sys.modules left so that later imports are not broken."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenai.errors import CallableError, EstimateError
from greenai.factories import CallableSpec, call_factory, load_callable, parse_callable_spec, spec_problem


@pytest.fixture(autouse=True)
def restore_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own sys.path; modules it imported are forgotten afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def test_a_file_imports_its_sibling_modules_as_python_file_would(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "project"
    write(project, "fac_helper_a.py", "SIZE = 7\n")
    write(project, "fac_lazy_a.py", "NAME = 'lazy'\n")
    write(
        project,
        "fac_main_a.py",
        "from fac_helper_a import SIZE\n"
        "def build():\n    return SIZE\n"
        "def later():\n    import fac_lazy_a\n    return fac_lazy_a.NAME\n",
    )
    monkeypatch.chdir(tmp_path)  # not the file's directory: only the loader can find the helper
    before = list(sys.path)
    assert load_callable("project/fac_main_a.py:build")() == 7
    # a sibling imported only when the function runs is found too
    assert load_callable(f"{project / 'fac_main_a.py'}:later")() == "lazy"
    # afterwards the directory is searched last, never first: it shadows nothing installed
    assert sys.path[: len(before)] == before
    assert sys.path[len(before) :] == [str(project.resolve())]


def test_the_files_directory_never_shadows_a_later_import(tmp_path: Path) -> None:
    if "tabnanny" in sys.modules:
        pytest.skip("tabnanny already imported")
    write(tmp_path, "tabnanny.py", "FAKE = True\n")
    spec = write(tmp_path, "fac_main_b.py", "def f():\n    return 1\n")
    assert load_callable(f"{spec}:f")() == 1
    import tabnanny

    assert not hasattr(tabnanny, "FAKE")  # the standard library's, not the file beside the spec


def test_a_failed_import_leaves_sys_path_as_it_was(tmp_path: Path) -> None:
    spec = write(tmp_path, "fac_broken_c.py", "import fac_no_such_sibling_c\ndef f():\n    pass\n")
    before = list(sys.path)
    with pytest.raises(CallableError, match="cannot import .*ModuleNotFoundError.*fac_no_such_sibling_c"):
        load_callable(f"{spec}:f")
    assert sys.path == before
    assert "fac_broken_c" not in sys.modules


def test_a_file_named_like_an_imported_module_is_refused_not_swapped_in(tmp_path: Path) -> None:
    import json

    spec = write(tmp_path, "json.py", "def f():\n    return 1\n")
    with pytest.raises(
        CallableError, match="as module 'json': a module of that name is already imported.*rename the file"
    ):
        load_callable(f"{spec}:f")
    assert sys.modules["json"] is json


def test_module_and_file_specs_follow_one_rule(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "fac_pkg_d", "__init__.py", "")
    body = "class Zoo:\n    @staticmethod\n    def build():\n        return 'zoo'\ndef make():\n    return 'made'\n"
    write(tmp_path / "fac_pkg_d", "models.py", body)
    file_spec = write(tmp_path / "elsewhere", "fac_file_d.py", body)
    monkeypatch.chdir(tmp_path)  # a dotted module is found from the current directory, as `python -m`
    for target in ("fac_pkg_d.models", str(file_spec)):
        assert load_callable(f"{target}:make")() == "made"
        assert load_callable(f"{target}:Zoo.build")() == "zoo"  # a dotted name, both ways
    assert parse_callable_spec("C:\\work\\models.py:build") == CallableSpec("C:\\work\\models.py", "build")
    assert parse_callable_spec("pkg.mod:Zoo.build").is_file is False


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("models", "no ':'"),
        (":build", "nothing before"),
        ("models:", "nothing after"),
        ("models:build-it", "'build-it' is not a Python name"),
        ("my-pkg.models:build", "'my-pkg.models' is neither a dotted module name nor a file ending in .py"),
        ("./models:build", "neither a dotted module name"),
    ],
)
def test_a_malformed_spec_says_what_is_wrong_and_what_is_accepted(spec: str, needle: str) -> None:
    with pytest.raises(CallableError) as info:
        load_callable(spec)
    message = str(info.value)
    assert needle in message and "MODULE:FUNCTION" in message and "path/to/models.py:build" in message
    assert spec_problem(spec) is not None
    assert spec_problem(None) == "a NoneType, not text"


def test_loading_errors_are_worded_and_take_the_callers_class(tmp_path: Path) -> None:
    spec = write(tmp_path, "fac_errs_e.py", "VALUE = 3\ndef boom():\n    raise RuntimeError('no weights')\n")
    with pytest.raises(CallableError, match="no such file"):
        load_callable(f"{tmp_path / 'absent.py'}:f")
    with pytest.raises(CallableError, match="has no callable 'missing'"):
        load_callable(f"{spec}:missing")
    with pytest.raises(CallableError, match="is not callable"):
        load_callable(f"{spec}:VALUE")
    with pytest.raises(EstimateError, match=r"boom\(\) failed: RuntimeError: no weights"):
        call_factory(f"{spec}:boom", EstimateError)
    with pytest.raises(EstimateError, match="MODULE:FACTORY"):
        call_factory("fac_errs_e", EstimateError)
