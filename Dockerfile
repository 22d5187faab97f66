# TraceHouse server image: `tracehouse collector` and `tracehouse query` (or `tracehouse up`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY tracehouse tracehouse
COPY collector collector
COPY agents agents
COPY query query
COPY ui ui
COPY schemas schemas
COPY bench bench
COPY demo demo
RUN pip install --no-cache-dir .
EXPOSE 4317 4318 9411 8080
ENTRYPOINT ["tracehouse"]
CMD ["up", "--data", "/data"]
