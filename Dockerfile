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
# Static files (admin, API docs) are collected into the image and served by the app (WhiteNoise).
# Throwaway values: settings refuse to load without them, and collectstatic needs neither.
RUN SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput -v 0
EXPOSE 8000
CMD ["gunicorn", "--config", "python:syncsite.gunicorn_conf", "syncsite.wsgi:application", "--bind", "0.0.0.0:8000", "--timeout", "30", "--access-logfile", "-"]
