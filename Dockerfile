# pars-ws: the wheel is built in one stage and installed in a slim runtime stage.
# spyne 2.14 imports on CPython 3.11 only.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PARS_DATA_DIR=/data PARS_BIND=0.0.0.0:8000
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir "$(ls /wheels/pars_ws-*.whl)[postgresql]" && rm -rf /wheels \
    && useradd --system --home-dir /data --shell /usr/sbin/nologin pars \
    && mkdir -p /data && chown pars /data
USER pars
WORKDIR /data
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["pars-ws", "serve"]
