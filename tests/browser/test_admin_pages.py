"""Managers' pages in a real browser: log in, read sync health, press Sync now, find a product by
its barcode, read the order list. Each test leaves var/screenshots/<test>.png (and -<page>.png for
further pages it visits)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from .conftest import browser_missing

if (_missing := browser_missing()) is not None:
    pytest.skip(_missing, allow_module_level=True)

from django.utils import dateformat, timezone  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from integrations import jobs  # noqa: E402
from integrations.schedule import SCHEDULE  # noqa: E402
from integrations.models import JobRun, JobState, OfferBinding, ProductBinding, System  # noqa: E402
from tests.factories import make_category, make_offer, make_product, make_stock, make_warehouse  # noqa: E402

from .conftest import PASSWORD, WAIT_SECONDS, broker_messages, screenshot  # noqa: E402

pytestmark = pytest.mark.browser


# ------------------------------------------------------------------------------------------------
# What a person does
# ------------------------------------------------------------------------------------------------
def wait(driver, condition):
    return WebDriverWait(driver, WAIT_SECONDS).until(condition)


def find(driver, css: str):
    return wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, css)))


def text(driver, css: str) -> str:
    return find(driver, css).text.strip()


def click_and_load(driver, element) -> None:
    """Click something that loads a new page and wait until the new page is there."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    wait(driver, EC.staleness_of(page))
    wait(driver, lambda d: d.execute_script("return document.readyState") == "complete")


def current_path(driver) -> str:
    return urlsplit(driver.current_url).path


def open_page(driver, path: str) -> None:
    driver.get(driver.live_server_url + path)


def log_in(driver, user, path: str) -> None:
    """Open `path`, get sent to the login form, fill it in and land back on `path`."""
    open_page(driver, path)
    assert "/admin/login/" in driver.current_url, driver.current_url
    find(driver, "#id_username").send_keys(user.username)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    click_and_load(driver, driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]"))
    assert current_path(driver) == path, driver.current_url
    assert user.first_name.lower() in text(driver, "#user-tools").lower()  # "Welcome, Marina."


def row_cells(row) -> dict[str, str]:
    """A changelist row as {column css class minus "field-": text}."""
    cells = {}
    for cell in row.find_elements(By.CSS_SELECTOR, "th, td"):
        for cls in (cell.get_attribute("class") or "").split():
            if cls.startswith("field-"):
                cells[cls.removeprefix("field-")] = cell.text.strip()
    return cells


SYNC_HEALTH = "/admin/integrations/jobrun/"


# ------------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def job_runs(transactional_db):
    now = timezone.now()
    ok = JobRun.objects.create(
        job="moysklad-catalog", status=JobRun.Status.SUCCESS, trigger="beat", started_at=now - timedelta(minutes=7),
        finished_at=now - timedelta(minutes=6, seconds=18), counts={"products_updated": 41, "offers_created": 3,
                                                                    "requests": 9},
        progress_done=9, progress_total=9, message="")
    JobState.objects.create(job="moysklad-catalog", cursor=ok.started_at, last_run=ok)
    failed = JobRun.objects.create(
        job="moysklad-stock", status=JobRun.Status.FAILED, trigger="beat", started_at=now - timedelta(minutes=2),
        finished_at=now - timedelta(minutes=1, seconds=55), counts={"rows_read": 1000, "requests": 2},
        message="MoySklad answered 503 Service Unavailable three times; the cursor stays where it was",
        errors=[{"ref": "stock/bystore row 1001", "error": "assortment 9f1c… is not bound to any offer"}],
        error_count=1, progress_done=1000)
    JobState.objects.create(job="moysklad-stock", last_run=failed)
    return {"ok": ok, "failed": failed}


def test_manager_logs_in_and_sees_sync_health(browser, manager, job_runs, request):
    log_in(browser, manager, SYNC_HEALTH)
    assert text(browser, "#sync-health h2") == "Sync health"

    rows = {row.get_attribute("data-job"): row
            for row in browser.find_elements(By.CSS_SELECTOR, "#sync-health tbody tr[data-job]")}
    assert sorted(rows) == sorted(jobs.JOBS), "every registered job has a row"
    expected_status = {"moysklad-catalog": "Success", "moysklad-stock": "Failed"}
    for name, spec in jobs.JOBS.items():
        cells = [td.text.strip() for td in rows[name].find_elements(By.TAG_NAME, "td")]
        job, configured, schedule, last_run, status, last_success, lock, buttons = cells
        assert job.startswith(name) and spec.description.split(" ")[0] in job
        assert configured == ("yes" if spec.configured() else "no (no credentials: runs are no-ops)")
        assert schedule
        assert status == expected_status.get(name, "—"), f"{name}: {status!r}"
        assert (last_run == "never") == (name not in expected_status)
        assert lock == "free"
        # "Full sync" only where the job has a full mode (a nightly full run in its schedule).
        has_full = any(e.full for e in SCHEDULE if e.job == name)
        assert buttons.split() == (["Sync", "now", "Full", "sync"] if has_full else ["Sync", "now"])
    catalog = rows["moysklad-catalog"].find_elements(By.TAG_NAME, "td")
    # Moscow time on a 24-hour clock ("4 Dec 2026, 16:24"), never "4:24 p.m."
    assert catalog[5].text.startswith(dateformat.format(timezone.localtime(job_runs['ok'].started_at), "j M Y, H:i"))
    assert "MoySklad answered 503" in rows["moysklad-stock"].text

    # The runs below the overview: what each run did, newest first.
    runs = [row_cells(r) for r in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")]
    assert [(r["job"], r["status_display"]) for r in runs] == [("moysklad-stock", "Failed"),
                                                              ("moysklad-catalog", "Success")]
    assert runs[1]["counts_display"] == "products updated: 41\nrequests: 9\noffers created: 3"
    assert runs[1]["duration_display"] == "42.0 s"
    assert runs[0]["error_count"] == "1"
    screenshot(browser, request.node.name)

    # The failed run's page says what went wrong.
    click_and_load(browser, rows["moysklad-stock"].find_element(By.CSS_SELECTOR, "td:nth-child(4) a"))
    assert current_path(browser) == f"/admin/integrations/jobrun/{job_runs['failed'].pk}/change/"
    assert "MoySklad answered 503 Service Unavailable three times" in text(browser, ".field-message")
    errors = text(browser, ".field-errors_table")
    assert "stock/bystore row 1001" in errors and "is not bound to any offer" in errors
    assert text(browser, ".field-status_display").endswith("Failed")
    screenshot(browser, f"{request.node.name}-run-detail")


def test_manager_finds_a_product_by_barcode_and_sees_stock_per_warehouse(browser, manager, request):
    kettle = make_product(name="Electric kettle 1.7 l", category=make_category(name="Kitchen"))
    offer = make_offer(product=kettle, sku="KET-17", price=Decimal("2490.00"), barcodes=["4600000000017"])
    main, shop = make_warehouse(code="main", name="Main warehouse"), make_warehouse(code="shop", name="Shop floor")
    make_stock(offer=offer, warehouse=main, stock=5)
    make_stock(offer=offer, warehouse=shop, stock=2, reserve=1)
    ProductBinding.objects.create(system=System.MOYSKLAD, product=kettle,
                                  external_id="0b7e5a52-1111-11ef-0a80-00aa00000017")
    OfferBinding.objects.create(system=System.MOYSKLAD, offer=offer, external_id="0b7e5a52-1111-11ef-0a80-00aa00000017",
                                external_code="KET-17")
    for i in range(3):  # others on the list, so the search has something to leave out
        make_offer(sku=f"MUG-{i}", name=f"Mug {i}", barcodes=[f"460000000100{i}"])

    log_in(browser, manager, "/admin/catalog/product/")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 4
    search = find(browser, "#searchbar")
    search.send_keys("4600000000017")
    page = browser.find_element(By.TAG_NAME, "html")
    search.send_keys(Keys.ENTER)  # a barcode scanner types the code and presses Enter
    wait(browser, EC.staleness_of(page))
    results = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert [row_cells(r)["name"] for r in results] == ["Electric kettle 1.7 l"]
    assert row_cells(results[0])["skus"] == "KET-17"
    screenshot(browser, f"{request.node.name}-search")

    click_and_load(browser, results[0].find_element(By.LINK_TEXT, "Electric kettle 1.7 l"))
    assert current_path(browser) == f"/admin/catalog/product/{kettle.pk}/change/"
    offer_rows = [cells for row in browser.find_elements(By.CSS_SELECTOR, "#offers-group tbody tr")
                  if (cells := row_cells(row)).get("sku_link")]
    assert offer_rows == [{"sku_link": "KET-17", "name": "Electric kettle 1.7 l", "price": "2490.00",
                           "archived": "", "stock": "Main warehouse: 5 · Shop floor: 1"}]
    bindings = text(browser, "#bindings-group")
    assert "0b7e5a52-1111-11ef-0a80-00aa00000017" in bindings and "MoySklad" in bindings
    screenshot(browser, request.node.name)


def test_sync_now_button_queues_the_job(browser, manager, job_runs, isolated_broker, request):
    log_in(browser, manager, SYNC_HEALTH)
    row = find(browser, '#sync-health tr[data-job="moysklad-stock"]')
    click_and_load(browser, row.find_element(By.XPATH, ".//button[normalize-space()='Sync now']"))

    assert current_path(browser) == SYNC_HEALTH
    assert text(browser, ".messagelist .success") == (
        "Queued sync: moysklad-stock. The run appears below when a worker picks it up.")
    assert not browser.find_elements(By.CSS_SELECTOR, ".messagelist .error")
    screenshot(browser, request.node.name)
    # The live server really published it (to this test's own queue: no worker will run it).
    assert broker_messages(isolated_broker) == [
        {"task": "integrations.run_job", "args": ["moysklad-stock"], "kwargs": {"full": False, "trigger": "admin"}}]


def test_order_list_shows_orders_from_every_source(browser, manager, request):
    from orders.services import CustomerData, LineRequest, order_create

    warehouse = make_warehouse(code="main", name="Main warehouse")
    phone = make_offer(sku="PHONE-1", name="Phone", price=Decimal("1499.00"))
    case = make_offer(sku="CASE-RED", name="Case (red)", price=Decimal("250.50"))
    make_stock(offer=phone, warehouse=warehouse, stock=5)
    make_stock(offer=case, warehouse=warehouse, stock=3)
    site = order_create(customer=CustomerData("Ivan Petrov", email="ivan@example.com", phone="+7 926 123-45-67"),
                        items=[LineRequest("PHONE-1", 2), LineRequest("CASE-RED", 1)],
                        shipping_method="courier", shipping_address="Moscow, Primernaya 1").order
    ozon = order_create(customer=CustomerData("Ozon buyer", phone="+7 900 000-00-01"),
                        items=[LineRequest("CASE-RED", 2, price=Decimal("239.00"))], source="ozon",
                        source_order_id="0123456789-0001-1", enforce_stock=False).order

    log_in(browser, manager, "/admin/orders/order/")
    headers = [th.text.strip().lower() for th in browser.find_elements(By.CSS_SELECTOR, "#result_list thead th")]
    assert headers[1:] == ["number", "created at", "source", "source order id", "status", "channel status",
                           "flagged", "last action", "export", "customer", "total"]
    rows = [row_cells(r) for r in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")]
    for row in rows:
        row.pop("action_checkbox", None)
        row.pop("created_at")
        row.pop("flag_display")
    assert rows == [
        {"number": ozon.number, "source": "Ozon", "source_order_id": "0123456789-0001-1", "status_display": "Pending",
         "channel_status": "—", "last_action": "—", "export_display": "Waiting to export",
         "customer_display": "Ozon buyer <+7 900 000-00-01>", "total": "478.00"},
        {"number": site.number, "source": "Site", "source_order_id": str(site.uid), "status_display": "Pending",
         "channel_status": "—", "last_action": "—", "export_display": "Waiting to export",
         "customer_display": "Ivan Petrov <ivan@example.com>", "total": "3248.50"},
    ]
    assert ozon.number.startswith("OZ-") and site.number.startswith("S-")
    # The source filter offers every channel.
    filters = text(browser, "#changelist-filter")
    for label in ("Site", "Ozon", "Wildberries", "Yandex Market"):
        assert label in filters
    screenshot(browser, request.node.name)
