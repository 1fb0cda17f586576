"""A command whose extra is not installed says which packages are missing and which extra
installs them, in one line with exit status 1, before it reads or writes anything: `greenai
report` (the `report` extra), `greenai dashboard` (`dashboard`), `greenai monitor` (`monitor`).

The packages are made missing at the import system, as an environment without them is: a
`sitecustomize` module (on PYTHONPATH) puts a finder first on `sys.meta_path` that refuses them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tests.helpers import as_json, assert_one_line_error, greenai

BLOCKER = textwrap.dedent("""
    import os, sys

    MISSING = set(os.environ["TEST_MISSING_MODULES"].split(","))

    class Missing:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in MISSING:
                raise ImportError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
""")


def without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """The environment of a greenai that cannot import `modules`."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    return {"PYTHONPATH": str(site), "TEST_MISSING_MODULES": ",".join(modules)}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("extras") / "ledger.db"
    proc = greenai("run", "--name", "tiny", "--", "true", ledger=path, env={"GREENAI_SIMULATE": "1"})
    assert proc.returncode == 0, proc.stderr
    (run,) = as_json(greenai("runs", "list", "--json", ledger=path))
    return path, run["run_id"]


@pytest.mark.parametrize(
    ("missing", "said"),
    [(("plotly",), "reports need plotly:"), (("jinja2", "numpy"), "reports need jinja2, numpy:")],
)
def test_report_without_its_extra(tmp_path: Path, ledger: tuple[Path, str], missing: tuple[str, ...], said: str):
    path, run = ledger
    out = tmp_path / "report.html"
    proc = greenai("report", run, "-o", str(out), ledger=path, env=without(tmp_path, *missing))
    assert_one_line_error(proc, 1, said, "pip install 'greenai[report]'")
    assert not out.exists()
    # the exports need none of the report extra's packages
    card = greenai("report", run, "--format", "model-card", ledger=path, env=without(tmp_path, *missing))
    assert card.returncode == 0 and "co2_eq_emissions:" in card.stdout, card.stderr


@pytest.mark.parametrize(
    ("missing", "said"),
    [(("fastapi",), "the dashboard needs fastapi:"), (("uvicorn", "numpy"), "the dashboard needs uvicorn, numpy:")],
)
def test_dashboard_without_its_extra(tmp_path: Path, ledger: tuple[Path, str], missing: tuple[str, ...], said: str):
    path, _ = ledger
    proc = greenai("dashboard", "--no-open", "--port", "0", ledger=path, env=without(tmp_path, *missing), timeout=60)
    assert_one_line_error(proc, 1, said, "pip install 'greenai[dashboard]'")


def test_monitor_without_its_extra_records_nothing(tmp_path: Path):
    path = tmp_path / "ledger.db"
    env = {"GREENAI_SIMULATE": "1", **without(tmp_path, "prometheus_client")}
    proc = greenai("monitor", "--port", "0", "--ledger", ledger=path, env=env, timeout=60)
    assert_one_line_error(proc, 1, "prometheus-client", "pip install 'greenai[monitor]'")
    assert not path.exists()
