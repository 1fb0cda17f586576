"""Reports: one self-contained HTML file of a run, several runs, an optimization study or a
schedule batch (`greenai report`, `greenai.report(...)`), and exports of a run's figures in
other tools' formats (a Hugging Face model card's `co2_eq_emissions`, CodeCarbon's
`emissions.csv`). See docs/report.md.

The package is `greenai.reports` (plural) so that the public function `greenai.report` is
never shadowed: importing a subpackage binds it as an attribute of its parent package, and a
subpackage named `report` would replace the function on `greenai` at its first import.
plotly, jinja2 and numpy (`pip install 'greenai[report]'`) are imported only when a report is drawn.
"""

from __future__ import annotations

from greenai.reports.api import render_report, report

__all__ = ["render_report", "report"]
