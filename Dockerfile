# syntax=docker/dockerfile:1
# c2bot container image: `docker build -t c2bot .` (needs BuildKit, the default since Docker 23).

# --- build: wheels for c2bot and every dependency -------------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so a source change does not rebuild them.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
 && pip wheel --wheel-dir /wheels -r /tmp/requirements.txt

COPY README.md LICENSE ./
COPY c2bot ./c2bot
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime: the wheels in a virtualenv, run as a non-root user -----------------------------
FROM python:3.11-slim AS runtime

# A monospace font for text faxes and cover pages (without it, text falls back to Pillow's own).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 c2bot \
 && useradd --system --uid 10001 --gid c2bot --home-dir /srv/c2bot --no-create-home \
        --shell /usr/sbin/nologin c2bot \
 && mkdir -p /srv/c2bot/var/fax \
 && chown -R c2bot:c2bot /srv/c2bot/var

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-index --find-links=/wheels c2bot

# ./var/ (SQLite database, fax spool, generated secret key) lives under the working directory;
# mount a volume at /srv/c2bot/var to keep it. A c2bot.toml here is read at start-up.
WORKDIR /srv/c2bot
ENV C2_HTTP_HOST=0.0.0.0 C2_SMTP_HOST=0.0.0.0 PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1

# HTTP (Slack events, FreeSWITCH endpoints, /healthz, /metrics) and inbound SMTP.
EXPOSE 8080 2525

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('C2_HTTP_PORT', '8080'), timeout=4)"

USER c2bot
ENTRYPOINT ["c2bot"]
CMD ["serve"]
