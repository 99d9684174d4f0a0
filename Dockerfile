# Production image: gunicorn web, Celery worker and beat all run from it (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PYTHONPATH=/app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY syncsite ./syncsite
COPY catalog ./catalog
COPY stock ./stock
COPY orders ./orders
COPY integrations ./integrations
COPY templates ./templates
COPY manage.py ./
RUN pip install -e . && useradd --create-home syncsite && mkdir -p /app/var && chown syncsite /app/var
USER syncsite
RUN SECRET_KEY=build python manage.py collectstatic --noinput -v 0
EXPOSE 8000
CMD ["gunicorn", "--config", "python:syncsite.gunicorn_conf", "syncsite.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30", "--access-logfile", "-"]
