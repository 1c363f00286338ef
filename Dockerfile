# The venue as a container image: the wheel built from this checkout on the locked dependencies.
#   docker build -t omn-venue .
#   docker run --rm -p 8700:8700 omn-venue demo --host 0.0.0.0      # self-contained demo
# The image has the `embedded` extra (the demo's in-process EVM); `venue run --chain <url>` does not use it.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md LICENSE requirements.lock ./
COPY contracts/artifacts contracts/artifacts
COPY attestation attestation
COPY compliance compliance
COPY engine engine
COPY gateway gateway
COPY journal journal
COPY market market
COPY settlement settlement
COPY store store
COPY venue venue
COPY venueclient venueclient
RUN pip wheel --no-cache-dir -q -w /wheels -r requirements.lock \
 && pip wheel --no-cache-dir -q --no-deps -w /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 venue
COPY --from=build /wheels /wheels
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir -q --no-index --find-links /wheels -r /tmp/requirements.lock \
 && pip install --no-cache-dir -q --no-index --find-links /wheels --no-deps omn-venue \
 && rm -rf /wheels /tmp/requirements.lock
USER venue
WORKDIR /home/venue
VOLUME /home/venue/var
EXPOSE 8700
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8700/health', timeout=2)"
ENTRYPOINT ["venue"]
CMD ["run", "--host", "0.0.0.0", "--port", "8700", "--data-dir", "/home/venue/var"]
