"""`manage.py sync --list` and `manage.py sync JOB [--full]`."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations import jobs
from integrations.models import JobRun, JobState
from integrations.runs import acquire_lock
from integrations.schedule import SCHEDULE

pytestmark = pytest.mark.django_db


def sync(*args) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("sync", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_list_prints_every_job_with_its_schedule_and_last_run(ms):
    ms.add_product(name="Товар 1", article="ART-1")
    ran = jobs.get("moysklad-catalog")
    code, _, _ = sync("moysklad-catalog")
    assert code == 0
    code, out, _ = sync("--list")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == set(jobs.JOBS)
    for entry in SCHEDULE:
        assert entry.human in lines[entry.job]
    assert "success" in lines[ran.name] and "never" in lines["moysklad-stock"]


def test_list_marks_jobs_that_are_not_configured(settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    code, out, _ = sync("--list")
    lines = [line for line in out.splitlines() if line.startswith("moysklad-")]
    assert code == 0 and len(lines) >= 2 and all(line.endswith("[not configured]") for line in lines)


def test_run_exits_0_on_success_and_prints_a_summary(ms):
    ms.add_product(name="Товар 1", article="ART-1")
    ms.add_product(name="Товар 2", article="ART-2")
    code, out, _ = sync("moysklad-catalog")
    assert code == 0
    assert out.startswith("moysklad-catalog: success")
    assert "products_created" in out and " 2" in out
    assert JobRun.objects.get().trigger == "command"


def test_full_flag_runs_a_full_pass(ms):
    code, out, _ = sync("moysklad-catalog", "--full")
    assert code == 0 and "(full)" in out and JobRun.objects.get().full


def test_run_lists_record_errors_in_the_summary(ms):
    ms.add_product(name="", article="ART-1")
    code, out, _ = sync("moysklad-catalog")
    assert code == 0 and "record errors: 1" in out and "missing name" in out


def test_run_exits_1_on_failure(ms):
    ms.faults.add(status=503, count=None, path_contains="entity/product")
    code, out, err = sync("moysklad-catalog")
    assert code == 1
    assert "moysklad-catalog: failed" in out and "UpstreamUnavailableError" in err
    assert JobRun.objects.get().status == JobRun.Status.FAILED


def test_run_with_bad_credentials_exits_1_telling_to_check_the_token(ms, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "a-revoked-token"}
    code, _, err = sync("moysklad-stock")
    assert code == 1 and "check MOYSKLAD_TOKEN" in err
    assert [r.status for r in ms.logged()] == [401]   # MoySklad refused it; nothing retried


def test_not_configured_exits_0(settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    code, out, _ = sync("moysklad-stock")
    assert code == 0 and "not_configured" in out


def test_run_skipped_by_a_held_lock_exits_1(ms):
    acquire_lock("moysklad-catalog", "elsewhere:1:1")
    code, _, err = sync("moysklad-catalog")
    assert code == 1 and "in progress" in err
    assert JobState.objects.get(job="moysklad-catalog").cursor is None


def test_unknown_job_is_a_command_error():
    with pytest.raises(CommandError, match="unknown job 'nope'"):
        call_command("sync", "nope", stdout=StringIO(), stderr=StringIO())
