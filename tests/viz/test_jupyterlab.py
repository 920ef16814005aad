"""A live JupyterLab: run a notebook that builds a glaviz map, in a browser that cannot go online.

The server runs on 127.0.0.1 with a random token, isolated config/settings/workspace/runtime
folders, and everything that phones home switched off (``OFFLINE_LAB_ARGS``,
``DISABLED_LAB_PLUGINS``). The test runs all cells from the browser and checks the map DOM, then
that the page saw no console error, no uncaught exception, no failed request and no attempt to
reach anything beyond loopback, and that the server and kernel hold no non-loopback connection.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest

START_TIMEOUT_S = 60
RUN_TIMEOUT_MS = 45_000

# Everything JupyterLab 4 would fetch from the internet, turned off at the source.
OFFLINE_LAB_ARGS = [
    # /lab/api/news: the server would fetch https://jupyterlab.github.io/assets/feed.xml
    "--LabApp.news_url=None",
    # /lab/api/update: the server would ask pypi.org whether a newer JupyterLab exists
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    # the extension manager: "pypi" (the default) searches and lists pypi.org from the server
    "--LabApp.extension_manager=readonly",
    # lets the test drive the app: window.jupyterapp.commands.execute(...)
    "--LabApp.expose_app_in_browser=True",
]

# Frontend plugins disabled through labconfig/page_config.json in the server's config dir.
DISABLED_LAB_PLUGINS = {
    # news + update notifications: prompts "Would you like to get notified about official
    # Jupyter news?" and, once accepted, polls /lab/api/news and /lab/api/update
    "@jupyterlab/apputils-extension:announcements": True,
}

MAP_CELL_FALLBACK = """\
import base64, io
import ipyleaflet
from PIL import Image

# No web tiles: the default basemap would fetch OpenStreetMap tiles.
m = ipyleaflet.Map(center=(27.98, 86.92), zoom=10)
m.clear_layers()
png = io.BytesIO()
Image.new("RGBA", (64, 64), (40, 120, 220, 160)).save(png, format="PNG")
url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
m.add(ipyleaflet.ImageOverlay(url=url, bounds=((27.9, 86.8), (28.05, 87.05))))
m
"""

MAP_CELL_GLAVIZ = """\
import glaviz
import glaviz.viz.maps

scene = glaviz.data.synthetic_scene(96, 96, seed=0)
m = glaviz.viz.maps.compare_map(scene)
m
"""


def _has_compare_map() -> bool:
    maps = Path(__file__).resolve().parents[2] / "glaviz" / "viz" / "maps.py"
    return maps.is_file() and "def compare_map(" in maps.read_text()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log: Path
    proc: subprocess.Popen

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (the server shuts its kernels down), then make sure."""
    try:
        family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = [proc.pid]
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # kernels run in sessions of their own: end any the server left behind, by PID
    for pid in family[1:]:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture()
def jupyter_lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a notebook ``map.ipynb``; stopped at teardown."""
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        pytest.fail(f"{jupyter} not found; install the dev extras: pip install -e '.[dev]'")

    root = tmp_path / "notebooks"
    root.mkdir()
    cell = MAP_CELL_GLAVIZ if _has_compare_map() else MAP_CELL_FALLBACK
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, root / "map.ipynb")

    env = dict(os.environ)
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
        ("IPYTHONDIR", "ipython"),
    ]:
        (tmp_path / sub).mkdir()
        env[var] = str(tmp_path / sub)
    (tmp_path / "config" / "labconfig").mkdir()
    (tmp_path / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": DISABLED_LAB_PLUGINS})
    )
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)

    port, token = _free_port(), secrets.token_hex(24)
    log = tmp_path / "jupyter-lab.log"
    cmd = [
        str(jupyter),
        "lab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        *OFFLINE_LAB_ARGS,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log, proc)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(
                    f"{server.url}/api/status?token={token}", timeout=2
                ) as resp:
                    json.load(resp)
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer in {START_TIMEOUT_S} s")
                time.sleep(0.25)
        yield server
    finally:
        _stop(proc)


RUN_ALL = """async () => {
    const app = window.jupyterapp;
    await app.restored;
    const panel = app.shell.currentWidget;
    await panel.context.ready;
    await panel.sessionContext.ready;
    await app.commands.execute("notebook:run-all-cells");
}"""

KERNEL_IDLE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const cells = panel.content.widgets;
    return kernel && kernel.status === "idle"
        && cells.every((c) => c.model.type !== "code" || c.model.executionCount !== null);
}"""


def _foreign_connections(proc: subprocess.Popen) -> list[str]:
    """Open inet connections of the server and its kernels to anything but loopback."""
    found = []
    try:
        procs = [psutil.Process(proc.pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return found
    for p in procs:
        try:
            conns = p.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for c in conns:
            if c.raddr and c.raddr.ip not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
                found.append(f"pid {p.pid} ({p.name()}) -> {c.raddr.ip}:{c.raddr.port} {c.status}")
    return found


def test_notebook_map_renders_offline_in_jupyterlab(jupyter_lab, offline_page):
    page, report = offline_page
    t0 = time.monotonic()
    page.goto(f"{jupyter_lab.url}/lab/tree/map.ipynb?token={jupyter_lab.token}")
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext",
        timeout=RUN_TIMEOUT_MS,
    )

    # the offline settings really reached the page (not offline by luck)
    config = json.loads(page.text_content("#jupyter-config-data"))
    assert config["news"] == {"disabled": True}
    assert config["extensionManager"]["name"] == "read-only", config["extensionManager"]
    for plugin in DISABLED_LAB_PLUGINS:
        assert not page.evaluate("(id) => window.jupyterapp.isPluginActivated(id)", plugin), plugin

    page.evaluate(RUN_ALL)
    page.wait_for_function(KERNEL_IDLE, timeout=RUN_TIMEOUT_MS, polling=250)
    errors = page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'],"
        " .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"
    )
    assert errors.count() == 0, "\n".join(errors.all_inner_texts())

    container = page.wait_for_selector(".jp-OutputArea .leaflet-container", timeout=RUN_TIMEOUT_MS)
    page.wait_for_function(
        "() => { const imgs = [...document.querySelectorAll("
        "'.jp-OutputArea img.leaflet-image-layer')];"
        " return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0); }",
        timeout=RUN_TIMEOUT_MS,
    )
    assert container.is_visible()
    assert "Error displaying widget" not in page.inner_text(".jp-Notebook")
    shot = offline_page.screenshot()
    print(f"screenshot: {shot}; lab ready + map rendered in {time.monotonic() - t0:.1f} s")

    report.assert_clean(settle_ms=1000)
    assert _foreign_connections(jupyter_lab.proc) == []
