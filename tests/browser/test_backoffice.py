"""The back office in a real browser: a manager logs in, switches the admin to Russian, reads the
dashboard, opens a product page, retries a failed export from the work lists; every list page
fits a 1280 px window. Screenshots: var/screenshots/<test>[-<page>].png."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from .conftest import browser_missing

if (_missing := browser_missing()) is not None:
    pytest.skip(_missing, allow_module_level=True)

from django.contrib import admin  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from integrations import jobs  # noqa: E402
from integrations.models import Channel, ChannelOffer, JobRun, JobState, OrderBinding, StockAlert  # noqa: E402
from stock.models import StockChange, StockHold  # noqa: E402
from tests.factories import make_offer, make_product, make_stock, make_warehouse  # noqa: E402

from .conftest import broker_messages, screenshot  # noqa: E402
from .test_admin_pages import click_and_load, current_path, find, log_in, open_page, text  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture
def shop(transactional_db):
    """A catalog with one SKU in two warehouses, on Ozon, with history; job runs; a failed order."""
    from orders.models import Customer, ExportState, Order

    now = timezone.now()
    kettle = make_product(name="Электрочайник 1,7 л")
    offer = make_offer(product=kettle, sku="KET-17", name="Электрочайник 1,7 л", price=Decimal("2490.00"))
    main = make_warehouse(code="main", name="Основной склад")
    acme = make_warehouse(code="supplier:acme", name="ACME", source="supplier:acme")
    make_stock(offer=offer, warehouse=main, stock=5, reserve=1)
    make_stock(offer=offer, warehouse=acme, stock=7)
    ozon = Channel.objects.create(system="ozon")
    ChannelOffer.objects.create(channel=ozon, offer=offer, external_key="KET-17", published_qty=11, synced_qty=11,
                                pushed_at=now, synced_at=now, status=ChannelOffer.Status.OK)
    broken = ChannelOffer.objects.create(channel=ozon, offer=make_offer(sku="MUG-1", name="Кружка"),
                                         external_key="MUG-1", status=ChannelOffer.Status.ERROR,
                                         error="Ozon: offer_id not found in the seller's catalogue " * 3,
                                         published_qty=3, synced_qty=0, pushed_at=now, synced_at=now)
    StockAlert.objects.create(channel_offer=broken, opened_at=now - timedelta(hours=3), message="Ozon shows 0, we have 3")
    for i in range(30):
        StockChange.objects.create(offer=offer, warehouse=main if i % 2 else acme, source="moysklad", via="sync",
                                   previous_stock=i, new_stock=i + 1, previous_reserve=0, new_reserve=0,
                                   previous_available=i, new_available=i + 1, at=now - timedelta(minutes=17 * i))
    StockHold.objects.create(offer=offer, warehouse=main, quantity=Decimal(1), ref="orderline:1", source="site")
    for name in jobs.JOBS:
        runs = [JobRun.objects.create(job=name, status=JobRun.Status.SUCCESS, trigger="beat",
                                      started_at=now - timedelta(minutes=5 * i + 1),
                                      finished_at=now - timedelta(minutes=5 * i + 1) + timedelta(seconds=2 + i % 7),
                                      counts={"unknown_items": 21, "requests": 4, "rows_read": 900, "changed": 7,
                                              "skipped": 2, "unchanged": 880}, progress_done=900)
                for i in range(6)]
        JobState.objects.create(job=name, cursor=runs[0].started_at, last_run=runs[0])
    customer = Customer.objects.create(name="Иван Петров", email="ivan@example.com")
    order = Order.objects.create(number="S-000042", source_order_id="S-000042", customer=customer)
    OrderBinding.objects.create(order=order, external_id="", external_code=order.export_code,
                                export_state=ExportState.FAILED, export_attempts=5,
                                export_error="MoySklad: 412 counterparty archived")
    return {"offer": offer, "order": order}


def test_manager_switches_to_russian_and_reads_the_dashboard(browser, manager, shop, request):
    log_in(browser, manager, "/admin/")
    assert text(browser, "#dashboard h2") == "Flows"
    click_and_load(browser, find(browser, '#language-switch button[value="ru"]'))
    assert current_path(browser) == "/admin/"
    assert text(browser, "#dashboard h2") == "Потоки"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ru"
    rows = {r.get_attribute("data-job"): r for r in browser.find_elements(By.CSS_SELECTOR, "#flows tbody tr")}
    assert sorted(rows) == sorted(jobs.JOBS)
    stock = rows["moysklad-stock"].text
    assert "каждые 5 минут" in stock and "Синхронизировать" in stock and "Полная синхронизация" in stock
    assert "Полная синхронизация" not in rows["orders-export"].text
    assert rows["orders-export"].find_elements(By.CSS_SELECTOR, "svg.chart rect")
    assert "Как выбирается цвет" in text(browser, "#dashboard")
    screenshot(browser, request.node.name)

    # The choice outlives the page: the work lists are in Russian too.
    click_and_load(browser, find(browser, "#link-worklists"))
    assert "Заказы, не выгруженные в МойСклад: 1" in text(browser, "#worklist-orders h2")
    screenshot(browser, f"{request.node.name}-worklists")


def test_manager_opens_a_product_page(browser, manager, shop, request):
    log_in(browser, manager, "/admin/")
    find(browser, "#find-sku").send_keys("KET-17")
    click_and_load(browser, find(browser, ".find-sku button"))
    assert current_path(browser) == reverse("backoffice:sku", args=["KET-17"])
    assert text(browser, "#sku-available") == "11"  # (5 − 1) + 7: the levels' available, summed
    stock = text(browser, "#sku-stock")
    assert "Основной склад" in stock and "supplier:acme" in stock
    assert "KET-17" in text(browser, "#sku-channels") and "Ozon" in text(browser, "#sku-channels")
    assert "orderline:1" in text(browser, "#sku-holds")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#sku-changes tbody tr")) == 30
    screenshot(browser, request.node.name)


def test_manager_retries_a_failed_export_from_the_work_list(browser, manager, shop, isolated_broker, request):
    from orders.models import ExportState

    log_in(browser, manager, reverse("backoffice:worklists"))
    row = find(browser, f'#worklist-orders tr[data-id="{shop["order"].pk}"]')
    assert "412 counterparty archived" in row.text
    click_and_load(browser, find(browser, "#worklist-orders button[type=submit]"))
    assert text(browser, ".messagelist .success") == "Export queued again: S-000042."
    assert OrderBinding.objects.get(order=shop["order"]).export_state == ExportState.PENDING
    assert [m["task"] for m in broker_messages(isolated_broker)] == ["integrations.moysklad.order_export"]
    assert "None: every order reached MoySklad" in text(browser, "#worklist-orders")
    screenshot(browser, request.node.name)


def test_every_list_page_fits_1280_px(browser, manager, shop, request):
    """Each changelist's last column ends inside a 1280 px window (Status and Error on the
    channel offers list included)."""
    browser.set_window_size(1280, 900)
    try:
        log_in(browser, manager, "/admin/")
        width = browser.execute_script("return window.innerWidth")
        overflowing = []
        for language in ("en", "ru"):  # Russian words are longer
            browser.add_cookie({"name": "syncsite_language", "value": language, "path": "/"})
            for model in admin.site._registry:
                opts = model._meta
                open_page(browser, reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
                headers = browser.find_elements(By.CSS_SELECTOR, "#result_list thead th")
                if not headers:
                    continue  # an empty list has no table
                right = browser.execute_script("return arguments[0].getBoundingClientRect().right", headers[-1])
                if right > width + 1:
                    overflowing.append(f"{language} {opts.label}: {right:.0f} px")
                if opts.model_name == "channeloffer":
                    screenshot(browser, f"{request.node.name}-channel-offers-{language}")
                    assert "offer_id not found" in text(browser, "#result_list")
        assert not overflowing, overflowing
    finally:
        browser.set_window_size(1400, 1000)


def test_dashboard_shows_a_running_sync_live(browser, manager, shop, request):
    """A run in progress: its row counts along without a reload, and the page refreshes itself
    once the run has finished."""
    from selenium.webdriver.support.ui import WebDriverWait

    now = timezone.now()
    run = JobRun.objects.create(job="moysklad-stock", status=JobRun.Status.RUNNING, trigger="admin", started_at=now,
                                heartbeat_at=now, progress_done=10, progress_total=100)
    log_in(browser, manager, "/admin/")
    cell = '[data-progress="moysklad-stock"]'
    assert text(browser, cell) == "running: 10 / 100"
    JobRun.objects.filter(pk=run.pk).update(progress_done=60, heartbeat_at=timezone.now())
    WebDriverWait(browser, 15).until(lambda d: d.find_element(By.CSS_SELECTOR, cell).text.strip() == "running: 60 / 100")
    screenshot(browser, request.node.name)
    page = browser.find_element(By.TAG_NAME, "html")
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.SUCCESS, finished_at=timezone.now(),
                                            progress_done=100)
    JobState.objects.filter(job="moysklad-stock").update(cursor=run.started_at, last_run=run)
    from selenium.webdriver.support import expected_conditions as EC

    WebDriverWait(browser, 15).until(EC.staleness_of(page))  # reloaded by itself
    assert text(browser, '#flows tr[data-job="moysklad-stock"]').count("running") == 0
