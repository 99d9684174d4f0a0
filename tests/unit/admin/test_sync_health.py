"""The JobRun changelist as the sync-health page: overview, "Sync now" (action and buttons), broker
failures shown as messages. `run_job_task.delay` is mocked: nothing reaches a broker."""
from unittest import mock

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from integrations import jobs
from integrations.models import JobRun

CHANGELIST = "admin:integrations_jobrun_changelist"
SYNC = "admin:integrations_jobrun_sync"


@pytest.fixture
def delay():
    with mock.patch("integrations.tasks.run_job_task.delay") as patched:
        yield patched


def _run(job: str, status=JobRun.Status.FAILED) -> JobRun:
    now = timezone.now()
    return JobRun.objects.create(job=job, status=status, started_at=now, finished_at=now, message="boom")


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db
def test_overview_lists_every_registered_job(admin_client):
    _run("moysklad-stock", JobRun.Status.SUCCESS)
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "Sync health" in html
    for name in jobs.JOBS:
        assert f'data-job="{name}"' in html
    assert "Sync now" in html and "Full sync" in html


@pytest.mark.django_db
def test_sync_now_action_enqueues_the_selected_runs_jobs(admin_client, delay, django_capture_on_commit_callbacks):
    runs = [_run("moysklad-stock"), _run("moysklad-stock"), _run("moysklad-catalog")]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse(CHANGELIST), {
            "action": "sync_now", "_selected_action": [r.pk for r in runs]}, follow=True)
    assert response.status_code == 200
    assert sorted(delay.call_args_list) == sorted([
        mock.call("moysklad-catalog", full=False, trigger="admin"),
        mock.call("moysklad-stock", full=False, trigger="admin"),
    ])
    assert any("Queued sync" in m for m in _messages(response))


@pytest.mark.django_db
def test_full_sync_action(admin_client, delay, django_capture_on_commit_callbacks):
    run = _run("moysklad-catalog")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse(CHANGELIST), {"action": "sync_full", "_selected_action": [run.pk]})
    delay.assert_called_once_with("moysklad-catalog", full=True, trigger="admin")


@pytest.mark.django_db
def test_sync_button_enqueues_one_job(admin_client, delay, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse(SYNC), {"job": "moysklad-stock", "full": "1"})
    assert response.status_code == 302
    delay.assert_called_once_with("moysklad-stock", full=True, trigger="admin")


@pytest.mark.django_db
def test_sync_button_ignores_unknown_jobs_and_get(admin_client, delay):
    response = admin_client.post(reverse(SYNC), {"job": "no-such-job"}, follow=True)
    assert any("no such job" in m for m in _messages(response))
    assert admin_client.get(reverse(SYNC)).status_code == 405
    delay.assert_not_called()


@pytest.mark.django_db(transaction=True)
def test_broker_down_is_a_message_not_a_500(admin_client, delay):
    # transaction=True: no test transaction, so on_commit publishes at once, as in a real request.
    delay.side_effect = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    response = admin_client.post(reverse(SYNC), {"job": "moysklad-stock"}, follow=True)
    assert response.status_code == 200
    assert any("broker is unreachable" in m for m in _messages(response))

    run = _run("moysklad-catalog")
    response = admin_client.post(reverse(CHANGELIST), {"action": "sync_now", "_selected_action": [run.pk]},
                                 follow=True)
    assert response.status_code == 200
    assert any("broker is unreachable" in m for m in _messages(response))


@pytest.mark.django_db
def test_staff_without_permission_cannot_sync(client, delay):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_jobrun"))
    client.force_login(user)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert "Full sync" not in response.content.decode()
    response = client.post(reverse(SYNC), {"job": "moysklad-stock"})
    assert response.status_code == 403
    delay.assert_not_called()


@pytest.mark.django_db
def test_run_detail_shows_errors_and_counts(admin_client, catalog_rows):
    run = catalog_rows["run"]
    html = admin_client.get(reverse("admin:integrations_jobrun_change", args=[run.pk])).content.decode()
    assert "missing sale price" in html
    assert "products_created" in html


@pytest.mark.django_db
def test_stale_running_run_is_flagged(admin_client):
    old = timezone.now() - timezone.timedelta(hours=1)
    JobRun.objects.create(job="moysklad-stock", status=JobRun.Status.RUNNING, started_at=old, heartbeat_at=old)
    assert "running, no heartbeat" in admin_client.get(reverse(CHANGELIST)).content.decode()


@pytest.mark.django_db
def test_runs_filter_by_job(admin_client):
    _run("moysklad-stock")
    _run("moysklad-catalog")
    response = admin_client.get(reverse(CHANGELIST), {"job": "moysklad-stock"})
    assert [r.job for r in response.context["cl"].result_list] == ["moysklad-stock"]
