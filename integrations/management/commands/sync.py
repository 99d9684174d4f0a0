"""`manage.py sync --list` and `manage.py sync JOB [--full]`: the same code the Celery task runs,
in this process, with a progress bar and a summary."""
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from tqdm import tqdm

from integrations import jobs
from integrations.models import JobRun, JobState
from integrations.runs import run_job
from integrations.schedule import SCHEDULE


class Command(BaseCommand):
    help = "Run one sync job now (same code as the Celery task) or list jobs with schedule and last run."

    def add_arguments(self, parser):
        parser.add_argument("job", nargs="?", help="job name, e.g. moysklad-catalog")
        parser.add_argument("--full", action="store_true", help="ignore the cursor: read everything, reconcile")
        parser.add_argument("--list", action="store_true", help="list jobs, schedules and last runs")

    def handle(self, *args, **opts):
        if opts["list"] or not opts["job"]:
            return self._list()
        try:
            spec = jobs.get(opts["job"])
        except KeyError as exc:
            raise CommandError(str(exc.args[0]))
        bar = tqdm(total=None, unit="rec", desc=spec.name, disable=None, file=self.stderr._out)

        def progress(done, total, counts):
            if total is not None and bar.total != total:
                bar.total = total
            bar.n = done
            bar.set_postfix({k: v for k, v in counts.items() if k in ("products_created", "variants_created",
                                                                       "stock_changed", "requests")}, refresh=False)
            bar.refresh()

        try:
            run = run_job(spec, full=opts["full"], trigger="command", progress=progress, raise_errors=False)
        finally:
            bar.close()
        self.stdout.write(self._summary(run))
        if run.status == JobRun.Status.FAILED:
            self.stderr.write(self.style.ERROR(_("%(job)s failed: %(message)s") % {"job": spec.name,
                                                                                 "message": run.message}))
            raise SystemExit(1)
        if run.status == JobRun.Status.SKIPPED:
            self.stderr.write(_("%(job)s: another run of this job is in progress; nothing done") % {"job": spec.name})
            raise SystemExit(1)

    def _summary(self, run: JobRun) -> str:
        lines = [f"{run.job}: {run.status} in {run.duration.total_seconds() if run.duration else 0:.1f}s"
                 + (" (full)" if run.full else "") + (f" — {run.message}" if run.message else "")]
        for key, value in sorted(run.counts.items()):
            lines.append(f"  {key:<28} {value}")
        if run.error_count:
            lines.append("  " + _("record errors: %(n)s (first ones below; all in the admin)") % {"n": run.error_count})
            for err in run.errors[:10]:
                lines.append(f"    {err['ref']}: {err['error']}")
        return "\n".join(lines)

    def _list(self):
        states = {s.job: s for s in JobState.objects.select_related("last_run")}
        by_job: dict[str, list[str]] = {}
        for entry in SCHEDULE:
            by_job.setdefault(entry.job, []).append(entry.human + (" (full)" if entry.full else ""))
        self.stdout.write(f"{'job':<26} {'schedule':<40} last run")
        for name, spec in sorted(jobs.JOBS.items()):
            state = states.get(name)
            last = state.last_run if state else None
            last_txt = (f"{timezone.localtime(last.started_at):%Y-%m-%d %H:%M:%S} {last.status}" if last else _("never"))
            configured = "" if spec.configured() else "  " + _("[not configured]")
            self.stdout.write(f"{name:<26} {', '.join(by_job.get(name, ['on demand'])):<40} {last_txt}{configured}")
