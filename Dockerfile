# pars-ws: spyne 2.14 needs CPython 3.11.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PARS_DATA_DIR=/data PARS_BIND=0.0.0.0:8000
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY schemas ./schemas
COPY wsdl ./wsdl
COPY migrations ./migrations
COPY sample_requests ./sample_requests
RUN pip install --no-cache-dir -e . && useradd --system --home /data pars && mkdir -p /data && chown pars /data
USER pars
VOLUME /data
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["pars-ws", "serve"]
