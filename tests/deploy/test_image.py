"""The container image: built from the Dockerfile with buildah, started with chroot, serving.

No container registry or runtime is reachable here, so the test makes its base image from
Debian 12's packages (debootstrap: Python 3.11, as python:3.11-slim has), builds the
Dockerfile on it with buildah (chroot isolation, vfs storage: no daemon, no namespaces), and
runs the image's own entrypoint and command in its mounted root with chroot, as the image's
user, against the suite's PostgreSQL (its socket directory bind-mounted). It needs root and
apt (to install buildah and debootstrap as .ci/run's machine would); it skips, saying which,
without them. The base image is cached in ~/.cache/coditect-image-test (CODITECT_IMAGE_CACHE)
between runs; the image under test is removed afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from db import embedded
from tests.conftest import TestDatabase
from tests.servers import free_port, stop, wait_ready

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(
    os.environ.get("CODITECT_IMAGE_CACHE") or Path.home() / ".cache" / "coditect-image-test"
)
BASE_IMAGE = "localhost/coditect-test-base:bookworm-python3.11"
BASE_TARBALL = CACHE / "bookworm-python3.11.tar"
# What python:3.11-slim offers that the Dockerfile relies on: python, its venv module, CAs.
DEBIAN_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
# Where the image sees the suite's PostgreSQL socket.
IMAGE_SOCKET_DIR = "/run/postgresql"
SOCKET_NAME = ".s.PGSQL.5432"
TOOLS = {"buildah": "buildah", "debootstrap": "debootstrap", "chroot": "coreutils"}


def run(*argv: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, **kwargs
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {result.returncode}:\n{result.stderr}")
    return result


def buildah(*argv: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    # Storage of our own under the cache: the base image survives between runs and nothing
    # touches the machine's /var/lib/containers.
    storage = (
        f"--root={CACHE / 'storage'}",
        f"--runroot={Path(tempfile.gettempdir()) / 'coditect-image-test-run'}",
        "--storage-driver=vfs",
    )
    return run("buildah", *storage, *argv, **kwargs)


def debian_mirror() -> str:
    """The machine's own Debian mirror (apt's sources), so debootstrap works where apt does."""
    if os.environ.get("CODITECT_DEBIAN_MIRROR"):
        return os.environ["CODITECT_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        text = path.read_text() if path.is_file() else ""
        found = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s+bookworm\b", text, re.MULTILINE
        )
        if found:
            return found[1]
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the image test needs root (buildah's chroot isolation, chroot, mount)")
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return
    if shutil.which("apt-get") is None:
        pytest.skip(f"the image test needs {', '.join(missing)} and there is no apt-get")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    install = ("apt-get", "install", "-y", "--no-install-recommends", *missing)
    if subprocess.run(install, capture_output=True, env=env, check=False).returncode != 0:
        run("apt-get", "update", env=env)
        run(*install, env=env)


def has_image(name: str) -> bool:
    found = buildah("images", "--json").stdout
    return any(name in (image.get("names") or []) for image in json.loads(found or "[]"))


@pytest.fixture(scope="module")
def base_image(tools: None) -> str:
    """python:3.11-slim's stand-in, made once from Debian 12 and kept in the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if has_image(BASE_IMAGE):
        return BASE_IMAGE
    if not BASE_TARBALL.exists():
        with tempfile.TemporaryDirectory(dir=CACHE) as work:
            rootfs = Path(work) / "rootfs"
            run(
                "debootstrap",
                "--variant=minbase",
                f"--include={DEBIAN_PACKAGES}",
                "bookworm",
                rootfs,
                debian_mirror(),
            )
            partial = BASE_TARBALL.with_suffix(".part")
            run("tar", "--numeric-owner", "-C", rootfs, "-cf", partial, ".")
            partial.rename(BASE_TARBALL)
    container = buildah("from", "scratch").stdout.strip()
    try:
        mountpoint = buildah("mount", container).stdout.strip()
        run("tar", "--numeric-owner", "-C", mountpoint, "-xf", BASE_TARBALL)
        buildah("umount", container)
        buildah(
            "config",
            "--env",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            container,
        )
        buildah("commit", "--quiet", container, BASE_IMAGE)
    finally:
        buildah("rm", container)
    return BASE_IMAGE


@pytest.fixture(scope="module")
def image(base_image: str) -> Iterator[str]:
    """The Dockerfile built on the base image: the Docker format keeps its HEALTHCHECK."""
    name = f"localhost/coditect-cloud:test-{uuid.uuid4().hex[:8]}"
    # Behind a TLS-inspecting proxy pip needs this machine's CA bundle: mounted for the
    # build's RUN steps only, through the Dockerfile's PIP_CERT argument.
    ca_bundle = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    proxy = (
        (
            "--volume",
            f"{ca_bundle}:/run/build-ca.crt:ro",
            "--build-arg",
            "PIP_CERT=/run/build-ca.crt",
        )
        if ca_bundle.is_file()
        else ()
    )
    buildah(
        "bud",
        "--isolation=chroot",
        "--format=docker",
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        *proxy,
        "--tag",
        name,
        ROOT,
    )
    try:
        yield name
    finally:
        buildah("rmi", name)
        buildah("rmi", "--prune")  # the build stage's image


def image_config(name: str) -> dict[str, Any]:
    inspected = json.loads(buildah("inspect", "--type", "image", name).stdout)
    config: dict[str, Any] = inspected["Docker"]["config"]
    return config


@contextmanager
def mounted_root(image: str, socket_dir: str) -> Iterator[Path]:
    """A container of `image` with its root mounted, /dev and /proc bound into it, and the
    PostgreSQL socket at /run/postgresql; all undone afterwards."""
    with ExitStack() as undo:
        container = buildah("from", "--quiet", image).stdout.strip()
        undo.callback(buildah, "rm", container)
        root = Path(buildah("mount", container).stdout.strip())
        undo.callback(buildah, "umount", container)
        run("mount", "--bind", "/dev", root / "dev")
        undo.callback(run, "umount", "--lazy", root / "dev")
        run("mount", "-t", "proc", "proc", root / "proc")
        undo.callback(run, "umount", "--lazy", root / "proc")
        # The socket alone: its directory (the cluster's data directory) is root's, 0700,
        # which the image's user may not enter.
        socket = root / IMAGE_SOCKET_DIR.lstrip("/") / SOCKET_NAME
        socket.parent.mkdir(parents=True, exist_ok=True)
        socket.touch()
        run("mount", "--bind", Path(socket_dir) / SOCKET_NAME, socket)
        undo.callback(run, "umount", "--lazy", socket)
        yield root


def in_image(root: Path, config: dict[str, Any], argv: list[str], env: dict[str, str]) -> list[str]:
    """The command line that runs `argv` in the mounted image as a container runtime would:
    the image's user, working directory and environment, plus `env`."""
    variables = dict(item.split("=", 1) for item in config["Env"]) | env
    return [
        "chroot",
        f"--userspec={config['User']}",
        str(root),
        "/usr/bin/env",
        "-i",
        f"--chdir={config['WorkingDir']}",
        *(f"{k}={v}" for k, v in variables.items()),
        *argv,
    ]


def ed25519_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_the_image_config_runs_serve_as_a_non_root_user_with_a_health_check(image: str) -> None:
    config = image_config(image)
    assert config["Entrypoint"] == ["coditect-cloud"]
    assert config["Cmd"] == ["serve"]
    user = config["User"].split(":")[0]
    assert user not in {"", "0", "root"}
    health = config["Healthcheck"]["Test"]
    assert health[0] == "CMD"
    assert "/healthz" in " ".join(health)
    assert "8080/tcp" in config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert (env["HOST"], env["PORT"]) == ("0.0.0.0", "8080")  # noqa: S104
    # Nothing secret in the image's environment: no URL, key, password or token.
    assert not [k for k in env if re.search(r"URL|KEY|SECRET|PASSWORD|TOKEN", k)], env


def test_the_image_holds_no_keys_and_no_sources(image: str) -> None:
    container = buildah("from", "--quiet", image).stdout.strip()
    try:
        root = Path(buildah("mount", container).stdout.strip())
        site = next((root / "opt" / "coditect" / "lib").glob("python3*/site-packages"))
        ours = [site / "app", site / "db", site / "handlers", root / "var" / "lib" / "coditect"]
        assert (site / "db" / "sql" / "roles.sql").is_file()  # the wheel, with its SQL
        for folder in ours:
            for path in folder.rglob("*"):
                if path.is_file():
                    assert b"PRIVATE KEY" not in path.read_bytes(), path
        assert not (root / "src").exists(), "the build stage's sources leaked into the image"
        assert not (root / "wheels").exists()
    finally:
        buildah("rm", container)


def test_the_image_migrates_then_serves_readyz_and_a_signup(
    image: str,
    make_database: Callable[[], TestDatabase],
    tmp_path: Path,
) -> None:
    database = make_database()
    config = image_config(image)
    with mounted_root(image, database.cluster.socket_dir) as root:
        # Keys as Secret Manager or a Kubernetes Secret would mount them: files, read-only.
        secrets = root / "run" / "secrets"
        secrets.mkdir(parents=True)
        for name in ("jwt.pem", "license.pem"):
            (secrets / name).write_bytes(ed25519_pem())
            os.chown(secrets / name, *map(int, config["User"].split(":")))
            (secrets / name).chmod(0o400)
        seen = embedded.Cluster(IMAGE_SOCKET_DIR)  # the same cluster, from inside the image
        common = {"DATABASE_URL": seen.dsn("coditect_app", database.name)}
        # The one-off migration job: the same image, command `migrate`.
        migrate = subprocess.run(
            in_image(
                root,
                config,
                [*config["Entrypoint"], "migrate"],
                common | {"DATABASE_ADMIN_URL": seen.admin_dsn(database.name)},
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stderr
        assert "applied: 0001" in migrate.stdout
        # The default command, on the port the platform gives (Cloud Run sets PORT).
        port = free_port()
        env = common | {
            "DATABASE_SYSTEM_URL": seen.dsn("coditect_system", database.name),
            "PORT": str(port),
            "JWT_PRIVATE_KEY_FILE": "/run/secrets/jwt.pem",
            "LICENSE_SIGNING_KEY_FILE": "/run/secrets/license.pem",
        }
        log = (tmp_path / "server.log").open("wb")
        server = subprocess.Popen(
            in_image(root, config, [*config["Entrypoint"], *config["Cmd"]], env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            ready = wait_ready(port, server)
            assert ready.json()["checks"]["migrations"]["ok"] is True
            signup = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/auth/signup",
                json={
                    "email": f"image-{uuid.uuid4().hex[:8]}@example.test",
                    "password": "correct horse battery staple",
                    "full_name": "Ida Image",
                    "organization_name": "Image Test Org",
                },
                timeout=30,
            )
            assert signup.status_code == 201, signup.text
            assert signup.json()["tokens"]["access_token"]
            # The image's own HEALTHCHECK command, run in it as a runtime would.
            kind, *check = config["Healthcheck"]["Test"]
            assert kind == "CMD"
            health = subprocess.run(
                in_image(root, config, check, {"PORT": str(port)}),
                capture_output=True,
                text=True,
                check=False,
            )
            assert health.returncode == 0, health.stderr
        finally:
            stop(server)
            log.close()
        assert server.returncode == 0, (tmp_path / "server.log").read_text()
