# The tracker's one image: every process is `bin/tracker <role>` (README, "Deploying").
# Not built on the development machine (no container registry is reachable there); the
# tests run bin/tracker itself, which is all this image adds to Python.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHON=python \
    TRACKER_ENV=production \
    STATIC_ROOT=/app/static

# WeasyPrint (the PDFs) loads pango at start-up; DejaVu is the PDFs' font, from the image,
# never fetched (the same packages as `make pdf-deps`).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md manage.py ./
COPY tracker tracker
COPY obligations obligations
COPY fixtures fixtures
COPY bin bin
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /app tracker
# Collected once, at build time: the running container's file system may be read-only.
# collectstatic needs settings that start, not the real ones.
RUN SECRET_KEY=build ALLOWED_HOSTS=build DATABASE_URL=postgres://build/build \
    REDIS_URL=redis://build:6379/0 bin/tracker collectstatic

USER tracker
EXPOSE 8000
ENTRYPOINT ["bin/tracker"]
CMD ["web"]
