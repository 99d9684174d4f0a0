"""The production shape as a newcomer deploys it. Docker is not available where the suite runs, so
docker-compose.yml is checked as YAML and structure (what `docker compose config` would need from
a fresh clone), with the Dockerfile and .env.example beside it."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "web", "worker", "beat")

# The settings of the project's public interface (interfaces.md), each of which .env.example lists.
INTERFACE_SETTINGS = """
DATABASE_URL CELERY_BROKER_URL SECRET_KEY DEBUG ALLOWED_HOSTS SITE_URL EMAIL_URL STOREFRONT_API_TOKEN
MOYSKLAD_BASE_URL MOYSKLAD_TOKEN MOYSKLAD_LOGIN MOYSKLAD_PASSWORD MOYSKLAD_ORGANIZATION_ID MOYSKLAD_STORE_ID
MOYSKLAD_PRICE_TYPE MOYSKLAD_WEBHOOK_TOKEN OZON_BASE_URL OZON_CLIENT_ID OZON_API_KEY OZON_WAREHOUSE_ID
WB_BASE_URL WB_CONTENT_URL WB_RETURNS_URL WB_TOKEN WB_WAREHOUSE_ID YM_BASE_URL YM_API_KEY YM_BUSINESS_ID
YM_CAMPAIGN_ID YM_WAREHOUSE_ID ONEC_BASE_URL ONEC_USER ONEC_PASSWORD ONEC_WEBHOOK_TOKEN TELEGRAM_API_URL
TELEGRAM_BOT_TOKEN TELEGRAM_CHAT_ID ONEC_EXCHANGE_LOGIN ONEC_EXCHANGE_PASSWORD OUTBOUND_ALLOW_PRIVATE
CART_CHECK_STALE_SECONDS CART_CHECK_TIMEOUT CART_CHECK_ON_FAILURE
""".split()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_needs_no_env_file_and_no_required_variables(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"\$\{[^}]*:?\?", text), "a ${VAR:?} makes `docker compose config` fail without .env"
    for name in APP_SERVICES:
        env_files = compose["services"][name]["env_file"]
        assert env_files == [{"path": ".env", "required": False}], name


def test_compose_has_the_whole_production_shape(compose):
    services = compose["services"]
    assert set(services) == {"db", "redis", *APP_SERVICES}
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"] == "."
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
        assert service["environment"]["CELERY_BROKER_URL"].startswith("redis://")
    assert services["worker"]["command"][:3] == ["celery", "-A", "syncsite"] and "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]
    assert services["web"]["command"][0] == "gunicorn"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


@pytest.mark.parametrize("service", ["web", "worker", "beat"])
def test_each_process_has_a_healthcheck_the_image_can_run(compose, service):
    from syncsite import healthcheck

    check = compose["services"][service]["healthcheck"]
    assert check["test"] == ["CMD", "python", "-m", "syncsite.healthcheck", service]
    assert healthcheck.main(["healthcheck", "nonsense"]) == 2  # the module and its CLI exist
    assert int(check["interval"].rstrip("s")) <= 60


def test_the_image_collects_static_files_with_throwaway_settings():
    dockerfile = (ROOT / "Dockerfile").read_text()
    line = next(line for line in dockerfile.splitlines() if line.startswith("RUN") and "collectstatic" in line)
    assert "SECRET_KEY=" in line and "ALLOWED_HOSTS=" in line
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in dockerignore and "var" in dockerignore


def _listed(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        match = re.match(r"^#?\s?([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    return names


def test_env_example_lists_every_setting_of_the_interface_and_the_readme():
    listed = _listed(ROOT / ".env.example")
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Settings"):readme.index("## Commands")]
    in_readme = {name for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", table)}
    missing = (set(INTERFACE_SETTINGS) | in_readme) - listed
    assert not missing, f".env.example does not list {sorted(missing)}"


def test_env_example_values_are_placeholders_not_secrets():
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith(("SECRET_KEY=", "STOREFRONT_API_TOKEN=", "MOYSKLAD_TOKEN=", "MOYSKLAD_WEBHOOK_TOKEN=")):
            assert line.endswith("="), line


def test_gunicorn_config_runs_one_threaded_worker_per_core_unless_told(monkeypatch, compose):
    """The image and compose start gunicorn with syncsite.gunicorn_conf and no --workers: it runs
    gthread workers, one per core up to 4 (WEB_CONCURRENCY overrides), four threads each."""
    import importlib
    import os

    import syncsite.gunicorn_conf as conf

    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    conf = importlib.reload(conf)
    assert (conf.worker_class, conf.threads, conf.workers) == ("gthread", 4, min(os.cpu_count(), 4))
    monkeypatch.setattr(os, "cpu_count", lambda: 64)   # a container sees its host's cores
    assert importlib.reload(conf).workers == 4
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    assert importlib.reload(conf).workers == 5
    command = compose["services"]["web"]["command"]
    assert "--workers" not in command and "python:syncsite.gunicorn_conf" in command
