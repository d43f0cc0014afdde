# paystream's production image: paystream's own packages only (no dev stack, no sandbox).
#   docker build -t paystream . && docker run paystream ingress|worker|sinks|monitor
# Settings come from the environment (docs/settings.md; deploy/k8s sets them).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY paystream paystream
COPY ingress ingress
COPY streams streams
COPY tables tables
COPY connectors connectors
COPY monitor monitor
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 10001 --create-home paystream && mkdir /data && chown paystream /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER paystream
WORKDIR /home/paystream
ENV PAYSTREAM_DATA_DIR=/data PYTHONUNBUFFERED=1
ENTRYPOINT ["paystream"]
CMD ["ingress"]
