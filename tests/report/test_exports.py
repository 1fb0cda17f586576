"""Exports of a run's figures in other tools' formats: the Hugging Face model card's
`co2_eq_emissions` block and CodeCarbon's `emissions.csv`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from tests.helpers import greenai
from tests.report.world import World, synthetic_run

from greenai.ledger.store import Ledger
from greenai.reports.exports import CODECARBON_COLUMNS, codecarbon_csv, model_card
from greenai.units import J_PER_KWH


def record_of(world: World, run_id: str):
    with Ledger(world.ledger) as store:
        return store.get_run(run_id)


def test_the_model_card_block_carries_the_runs_carbon_and_where_it_comes_from(world: World):
    record = record_of(world, world.run_id)
    block = model_card(record, training_type="fine-tuning")
    lines = block.splitlines()
    assert lines[0] == "co2_eq_emissions:"
    values = {line.split(":", 1)[0].strip(): json.loads(line.split(":", 1)[1]) for line in lines[1:]}
    assert set(values) == {"emissions", "source", "training_type", "geographical_location", "hardware_used"}
    assert values["emissions"] == round(record.snapshot.carbon_g, 6)  # grams, as the card wants
    assert values["training_type"] == "fine-tuning"
    assert record.start.run_id in values["source"] and "greenai" in values["source"]
    assert values["hardware_used"]


def test_codecarbon_rows_have_its_columns_and_units(world: World):
    record = record_of(world, world.run_id)
    rows = list(csv.DictReader(io.StringIO(codecarbon_csv([record]))))
    assert len(rows) == 1
    assert tuple(rows[0]) == CODECARBON_COLUMNS
    row = rows[0]
    assert float(row["energy_consumed"]) * J_PER_KWH == pytest.approx(record.snapshot.energy_j, rel=1e-6)
    assert float(row["emissions"]) * 1000 == pytest.approx(record.snapshot.carbon_g, rel=1e-6)  # kg
    assert float(row["duration"]) > 0
    # the world's run has one simulated GPU (no NVML meter to name it): counted beside its power
    assert float(row["gpu_power"]) > 0
    assert (row["gpu_count"], row["gpu_model"]) == ("1", "1 x simulated GPU")
    assert model_card(record).count("1 x simulated GPU; ") == 1


def test_a_name_a_spreadsheet_would_run_is_neutralised_in_the_csv(tmp_path: Path):
    with Ledger(tmp_path / "l.db") as store:
        run_id = synthetic_run(store, '=HYPERLINK("http://evil.example","click")', 1_700_000_000.0, 5.0, 50.0)
        record = store.get_run(run_id)
        text = codecarbon_csv([record])
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["project_name"].startswith("'=")


def test_the_cli_prints_both_exports(world: World):
    card = greenai("report", world.run_id, "--format", "model-card", ledger=world.ledger)
    assert card.returncode == 0, card.stderr
    assert card.stdout.startswith("co2_eq_emissions:")
    table = greenai("report", world.run_id, "--format", "codecarbon-csv", ledger=world.ledger)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].replace('"', "").split(",") == list(CODECARBON_COLUMNS)
