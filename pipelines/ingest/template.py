"""`pathlink template DATASET`: a header-only CSV and an XLSX with a field-description sheet.

Everything comes from the dataset's contract: the columns in contract order, whether each is
required, what it must hold (the rules' own messages and code lists), and the other header
spellings that are recognised (aliases).
"""

from __future__ import annotations

import csv
from pathlib import Path

from data_contracts import Contract, load_contract

FIELD_SHEET_COLUMNS = ("field", "required", "what it holds", "accepted values or form",
                       "other header names recognised")


def field_rows(contract: Contract) -> list[tuple[str, str, str, str, str]]:
    """One row per contract field for the description sheet (no data values, only rules)."""
    rows = []
    for prop in contract.properties:
        required = ("yes" if prop.required else
                    "column must be present; value may be empty" if prop.required_column
                    else "no")
        forms: list[str] = []
        if prop.logical_type == "date":
            forms.append("M/D/YYYY (e.g. 7/3/1982), YYYY-MM-DD or YYYYMMDD; no two-digit "
                         "years, no day-first dates")
        for rule in contract.rules:
            if rule.column != prop.name:
                continue
            if rule.rule == "allowedValues":
                sep = rule.params.get("separator")
                values = ", ".join(str(v) for v in rule.params["values"])
                forms.append(f"one of: {values}" + (f" (several separated by '{sep}')"
                                                    if sep else ""))
            elif rule.rule in ("regex", "ssnValid", "numeric", "between", "ageInRange"):
                forms.append(rule.message)
        if prop.numeric_width:
            forms.append(f"format the column as text so leading zeros survive "
                         f"({prop.numeric_width} digits)")
        rows.append((prop.name, required, " ".join(prop.description.split()),
                     " ".join(dict.fromkeys(forms)), ", ".join(prop.aliases)))
    return rows


def write_template(dataset: str, out_dir: Path) -> list[Path]:
    """Write `<dataset>.csv` (the header) and `<dataset>.xlsx` (the header on a sheet named
    after the dataset, and a `fields` sheet describing each column) into `out_dir`.

    Raises:
        KeyError: `dataset` is not a known dataset.
        FileExistsError: a target file exists.
    """
    import openpyxl
    from openpyxl.styles import Alignment, Font

    contract = load_contract(dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, xlsx_path = out_dir / f"{dataset}.csv", out_dir / f"{dataset}.xlsx"
    for path in (csv_path, xlsx_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; choose another folder with -o")
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerow(contract.columns)
    workbook = openpyxl.Workbook()
    data = workbook.active
    data.title = dataset
    data.append(contract.columns)
    for cell in data[1]:
        cell.font = Font(bold=True)
        # text format for every column: Excel keeps leading zeros and never turns an id
        # or SSN into a number (dates typed in still parse)
    for index in range(1, len(contract.columns) + 1):
        column = data.cell(row=1, column=index).column_letter
        data.column_dimensions[column].width = max(14, len(contract.columns[index - 1]) + 2)
        for row in range(2, 502):
            data.cell(row=row, column=index).number_format = "@"
    fields = workbook.create_sheet("fields")
    fields.append(FIELD_SHEET_COLUMNS)
    for cell in fields[1]:
        cell.font = Font(bold=True)
    for values in field_rows(contract):
        fields.append(values)
    for column, width in zip("ABCDE", (26, 22, 50, 70, 50), strict=True):
        fields.column_dimensions[column].width = width
        for cell in fields[column]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    workbook.save(xlsx_path)
    return [csv_path, xlsx_path]
