"""Shared fixtures: small demo trees written with uproot into temporary folders, and headless Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A dead XRootD server should fail in seconds in tests (dqmflow's defaults allow ~1 min per try).
os.environ.setdefault("XRD_CONNECTIONWINDOW", "2")
os.environ.setdefault("XRD_CONNECTIONRETRY", "1")
os.environ.setdefault("XRD_STREAMERRORWINDOW", "1")

from dqmflow.demo import HISTOGRAMS, DemoSpec, plan_runs, write_demo
from dqmflow.discover import list_source, select
from dqmflow.fetch import fetch_batch
from dqmflow.merge import merge
from dqmflow.metadata import parse_datasets
from dqmflow.names import HistogramName
from dqmflow.runtable import build_run_table

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SMALL = DemoSpec(runs_per_year=14, seed=7)


def small_datasets(spec: DemoSpec = SMALL) -> dict:
    from dqmflow.demo import demo_datasets

    return demo_datasets(spec, plan_runs(spec))


@pytest.fixture(scope="session")
def demo_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo tree (14 runs per year, two years); returns the folder holding DQMGUI_data."""
    out = tmp_path_factory.mktemp("demo")
    write_demo(out, SMALL)
    return out


@pytest.fixture(scope="session")
def all_histograms() -> list[HistogramName]:
    return [spec.name for spec in HISTOGRAMS]


def fetch_and_merge(source: Path, workdir: Path, histograms: list[HistogramName], datasets: dict | None = None):
    """Run discovery, selection, fetch and merge as the workflow does, in one process."""
    parsed = parse_datasets(datasets or small_datasets())
    files = []
    for sel in parsed.years:
        for pd in parsed.primary_datasets:
            files += list_source(str(source), pd, sel.year)
    selection = select(files, parsed)
    manifests: dict[str, list[Path]] = {}
    for subsystem in dict.fromkeys(h.subsystem for h in histograms):
        manifest = workdir / "shards" / subsystem / "all.tsv"
        fetch_batch(
            list(selection.files.values()),
            [h for h in histograms if h.subsystem == subsystem],
            manifest.with_suffix(""),
            manifest,
        )
        manifests[subsystem] = [manifest]
    table = workdir / "histograms.parquet"
    subsystems = dict.fromkeys(h.subsystem for h in histograms)
    report = merge(
        manifests,
        histograms,
        parsed.labels(selection.files),
        table,
        workdir / "fetch_report.tsv",
        storage={s: workdir / "data" / f"{s}.parquet" for s in subsystems},
        entries=workdir / "entries.parquet",
        signatures={run: item.signature for run, item in selection.files.items()},
    )
    build_run_table(workdir / "entries.parquet", workdir / "runs.parquet")
    return table, report, selection


@pytest.fixture(scope="session")
def merged_demo(demo_tree: Path, all_histograms, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The merged table of the small demo."""
    table, _, _ = fetch_and_merge(demo_tree / "DQMGUI_data", tmp_path_factory.mktemp("merged"), all_histograms)
    return table


@pytest.fixture(scope="session")
def demo_store(merged_demo: Path) -> Path:
    """The folder of the small demo's merged table, holding runs.parquet and data/<SUBSYSTEM>.parquet."""
    return merged_demo.parent


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class XRootDServer:
    """A real Debian ``xrootd`` serving ``<root>/store`` read-only on localhost."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        import shutil
        import subprocess
        import time

        binary = shutil.which("xrootd")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("xrootd is not installed: .ci/run installs Debian's xrootd-server")
            pytest.skip("xrootd is not installed (apt-get install xrootd-server)")
        self.root = root
        self.port = port or _free_port()
        admin = root / "admin"
        admin.mkdir(parents=True, exist_ok=True)
        config = root / "xrootd.cfg"
        config.write_text(
            f"xrd.port {self.port}\nxrd.allow host localhost\nall.export /store r/o\n"
            f"oss.localroot {root / 'data'}\nall.adminpath {admin}\nall.pidpath {admin}\n"
        )
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if os.geteuid() == 0:
            shutil.chown(admin, "nobody")
        cmd = [binary, "-c", str(config), "-l", str(admin / "xrootd.log")]
        if os.geteuid() == 0:
            cmd[1:1] = ["-R", "nobody"]  # Debian's xrootd refuses to run as root
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        import socket

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"xrootd exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("localhost", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("xrootd did not start listening within 20 s")

    def url(self, path: str) -> str:
        return f"root://localhost:{self.port}//store/{path.lstrip('/')}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()


@pytest.fixture(scope="session")
def xrootd_demo(demo_tree: Path):
    """An XRootD server on localhost serving a copy of the small demo tree at /store/dqm."""
    import shutil
    import tempfile

    # pytest's own temporary folders are private to root; the server runs as nobody.
    root = Path(tempfile.mkdtemp(prefix="dqmflow-xrootd-"))
    shutil.copytree(demo_tree / "DQMGUI_data", root / "data" / "store" / "dqm")
    server = XRootDServer(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's chromium and chromium-driver) driven by selenium, 1400 x 1000."""
    browser, driver = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
    if not (browser.is_file() and driver.is_file()):
        pytest.skip("needs Debian chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    session = webdriver.Chrome(service=Service(str(driver)), options=options)
    try:
        yield session
    finally:
        session.quit()
