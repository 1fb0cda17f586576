"""`greenai report RUN [RUN ...] | --study ID | --batch ID | --job ID [-o FILE] [--format ...]`.

HTML (the default) is written to a file (`-o`, default greenai-report.html) and its path
printed; the exports (`--format model-card`, `--format codecarbon-csv`) go to stdout unless
`-o` names a file. The work is `greenai.reports`; this module only parses and prints.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from greenai.cli.options import LedgerOpt
from greenai.cli.render import one_line


def report(
    runs: Annotated[
        list[str] | None, typer.Argument(help="Run ids or unique prefixes; several give a comparison.")
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="An optimization study id (or prefix).")] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="A schedule batch id (or prefix).")] = None,
    job: Annotated[
        str | None, typer.Option("--job", metavar="JOB", help="A distributed job id (or prefix): `greenai jobs list`.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File to write (HTML default: greenai-report.html; exports: stdout)."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="html (default), model-card (Hugging Face co2_eq_emissions) or codecarbon-csv."),
    ] = "html",
    training_type: Annotated[
        str | None,
        typer.Option(
            help="For --format model-card: pre-training, fine-tuning... (default: the run's training_type tag)."
        ),
    ] = None,
    max_quality_drop: Annotated[
        float, typer.Option(help="For --study: the quality bound the recommendation is recomputed at.")
    ] = 0.01,
    ledger: LedgerOpt = None,
) -> None:
    """Write one self-contained HTML report of runs, a study, a batch or a distributed job (or export a run's figures)."""
    from greenai.reports.api import render_report
    from greenai.reports.api import report as write_report

    ids = runs or []
    if fmt != "html" and output is None:
        sys.stdout.write(
            render_report(
                *ids,
                study=study,
                batch=batch,
                job=job,
                ledger=ledger,
                format=fmt,
                training_type=training_type,
                max_quality_drop=max_quality_drop,
            )
        )
        return
    path = write_report(
        *ids,
        study=study,
        batch=batch,
        job=job,
        output=output,
        ledger=ledger,
        format=fmt,
        training_type=training_type,
        max_quality_drop=max_quality_drop,
    )
    print(f"wrote {one_line(path.resolve())}")
