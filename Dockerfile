# telnyx-emulator in a container: docker build -t telnyx-emulator . && docker run -p 8000:8000 telnyx-emulator
# Listens on 0.0.0.0 inside the container (publish the port to reach it); give TELNYX_EMULATOR_API_KEYS to
# accept only your keys. Keys and the local CA live in /data: mount a volume there to keep them.
FROM python:3.12-slim

# espeak-ng speaks the scenarios' say steps and the speak command; sox is used by docs examples.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng sox \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY emulator ./emulator
COPY schemas ./schemas
COPY scenarios ./scenarios
RUN pip install --no-cache-dir . && rm -rf /src

RUN useradd --create-home --uid 10001 emulator && mkdir /data && chown emulator /data
USER emulator
WORKDIR /home/emulator
ENV TELNYX_EMULATOR_HOST=0.0.0.0 \
    TELNYX_EMULATOR_SIGNING_KEY_FILE=/data/signing-key \
    TELNYX_EMULATOR_CERT_DIR=/data \
    TELNYX_EMULATOR_TTS_CACHE=/data/tts
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/_emulator/health', timeout=2)"]
CMD ["telnyx-emulator"]
