import os

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncsite.settings")

app = Celery("syncsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class HeartbeatStep(bootsteps.StartStopStep):
    """Writes this worker's heartbeat row now and every INTERVAL seconds, from the worker's timer
    thread (/health/ and the container healthcheck read it; see syncsite/heartbeat.py)."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timers = []

    def start(self, worker):
        from syncsite.heartbeat import INTERVAL, _worker_beat

        self.timers = [worker.timer.call_after(0.1, _worker_beat, (worker.hostname,)),
                       worker.timer.call_repeatedly(INTERVAL, _worker_beat, (worker.hostname,), priority=10)]

    def stop(self, worker):
        for timer in self.timers:
            timer.cancel()
        self.timers = []


app.steps["worker"].add(HeartbeatStep)
