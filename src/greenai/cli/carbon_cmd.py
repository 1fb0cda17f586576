"""`greenai carbon countries | regions | traces`: the intensities greenai ships, and how to name
each one with `--intensity` (main.py assembles the `carbon` group)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from greenai.cli.options import JsonOpt, print_json
from greenai.cli.render import make_console, one_line
from greenai.errors import GreenAIError

SearchArg = Annotated[
    str | None,
    typer.Argument(metavar="TEXT", help="Only rows whose code or name contains this text (any case)."),
]


def countries(search: SearchArg = None, json_out: JsonOpt = False) -> None:
    """Countries and their yearly average grid intensity (--intensity FRA or FR)."""
    from greenai.carbon import countries as country_table
    from greenai.carbon.iso_codes import ALPHA2_TO_ALPHA3

    alpha2 = {a3: a2 for a2, a3 in ALPHA2_TO_ALPHA3.items() if a2 != "UK"}
    rows: list[dict[str, Any]] = [
        {
            "iso_code": row.iso_code,
            "alpha2": alpha2.get(row.iso_code, ""),
            "country": row.country,
            "year": row.year,
            "g_co2e_per_kwh": row.g_co2e_per_kwh,
            "intensity": row.iso_code,
        }
        for row in sorted(country_table().values(), key=lambda r: r.iso_code)
        if _matches(search, row.iso_code, alpha2.get(row.iso_code, ""), row.country)
    ]
    if json_out:
        print_json(rows)
        return
    _nothing_found(rows, search, "country", "countries")
    table = Table(title=f"{len(rows)} countries (Ember via Our World in Data, CC BY 4.0)", title_justify="left")
    for col in ("--intensity", "alpha-2", "country", "gCO2e/kWh", "year"):
        table.add_column(col, justify="right" if col in ("gCO2e/kWh", "year") else "left")
    for r in rows:
        table.add_row(r["iso_code"], r["alpha2"], r["country"], f"{r['g_co2e_per_kwh']:.0f}", str(r["year"]))
    make_console().print(table)


def regions(search: SearchArg = None, json_out: JsonOpt = False) -> None:
    """Cloud regions and their providers' published intensity (--intensity gcp:europe-west1)."""
    from greenai.carbon import cloud_regions

    rows: list[dict[str, Any]] = [
        {
            "provider": r.provider,
            "region": r.region,
            "city": r.city,
            "country_iso_code": r.country_iso_code,
            "g_co2e_per_kwh": r.g_co2e_per_kwh,
            "intensity": f"{r.provider}:{r.region}",
        }
        for r in sorted(cloud_regions().values(), key=lambda r: (r.provider, r.region))
        if _matches(search, f"{r.provider}:{r.region}", r.city, r.country_iso_code)
    ]
    if json_out:
        print_json(rows)
        return
    _nothing_found(rows, search, "cloud region", "cloud regions")
    table = Table(title=f"{len(rows)} cloud regions (providers' published figures)", title_justify="left")
    for col in ("--intensity", "city", "country", "gCO2e/kWh"):
        table.add_column(col, justify="right" if col == "gCO2e/kWh" else "left")
    for r in rows:
        table.add_row(r["intensity"], r["city"], r["country_iso_code"], f"{r['g_co2e_per_kwh']:.0f}")
    make_console().print(table)


def traces(json_out: JsonOpt = False) -> None:
    """Shipped half-hourly intensity traces, replayed by time of year (--intensity trace:gb_2020).

    A trace of your own is `--intensity trace:FILE.csv` (read at exact times)."""
    from greenai.carbon import SHIPPED_TRACES, shipped_trace

    rows: list[dict[str, Any]] = []
    for name in SHIPPED_TRACES:
        trace = shipped_trace(name)
        rows.append(
            {
                "name": name,
                "intensity": f"trace:{name}",
                "steps": len(trace),
                "range": trace.range_text(),
                "mean_g_co2e_per_kwh": round(trace.mean_g_per_kwh(), 1),
                "source": trace.source,
            }
        )
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} shipped traces, replayed by time of year", title_justify="left")
    for col in ("--intensity", "steps", "covers", "mean gCO2e/kWh", "source"):
        table.add_column(col, justify="right" if col in ("steps", "mean gCO2e/kWh") else "left")
    for r in rows:
        table.add_row(r["intensity"], str(r["steps"]), r["range"], f"{r['mean_g_co2e_per_kwh']:.0f}", r["source"])
    console = make_console()
    console.print(table)
    console.print("A trace of your own: --intensity trace:FILE.csv (a time and an intensity column).")


def _matches(search: str | None, *fields: str) -> bool:
    needle = (search or "").strip().lower()
    return not needle or any(needle in field.lower() for field in fields)


def _nothing_found(rows: list[dict[str, Any]], search: str | None, one: str, many: str) -> None:
    if not rows:
        raise GreenAIError(
            f"no {one} matches {one_line(search or '')!r}; `greenai carbon {many.split()[-1]}` lists all"
        )
