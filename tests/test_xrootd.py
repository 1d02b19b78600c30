"""Reading through a real XRootD server (Debian xrootd-server on localhost)."""

from __future__ import annotations

import time
from pathlib import Path

from dqmflow.demo import PD
from dqmflow.discover import list_source, select
from dqmflow.fetch import fetch_batch, read_manifest
from dqmflow.metadata import parse_datasets
from dqmflow.names import HistogramName
from tests.conftest import fetch_and_merge, small_datasets


def test_remote_discovery_finds_the_same_files(xrootd_demo, demo_tree: Path, caplog) -> None:
    remote = list_source(xrootd_demo.url("dqm"), PD, 2018)
    local = list_source(str(demo_tree / "DQMGUI_data"), PD, 2018)
    assert len(remote) == len(local) > 0
    assert all(r.path.startswith(f"root://localhost:{xrootd_demo.port}//store/dqm/Run2018/") for r in remote)
    assert [(r.run, r.processing, r.size) for r in remote] == [(r.run, r.processing, r.size) for r in local]
    with caplog.at_level("WARNING", logger="dqmflow.progress"):
        assert list_source(xrootd_demo.url("dqm"), "NoSuchPD", 2018) == []
    # a primary dataset name that is not there: the terminal names the folder and what the year has
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "/store/dqm/Run2018/NoSuchPD does not exist (" in said and f"has: {PD}" in said


def test_remote_fetch_gives_the_same_table_byte_for_byte(xrootd_demo, demo_tree: Path, tmp_path: Path,
                                                         all_histograms) -> None:  # fmt: skip
    local, local_report, _ = fetch_and_merge(demo_tree / "DQMGUI_data", tmp_path / "local", all_histograms)
    remote, remote_report, _ = fetch_and_merge(xrootd_demo.url("dqm"), tmp_path / "remote", all_histograms)
    assert remote.read_bytes() == local.read_bytes()
    assert len(remote_report) == len(local_report)
    assert all(f.startswith("root://") for f in remote_report["file"] if f)


def test_dead_server_is_retried_then_recorded(tmp_path: Path, xrootd_demo) -> None:
    files = select(list_source(xrootd_demo.url("dqm"), PD, 2017), parse_datasets(small_datasets())).files
    first, item = list(files.values())[:2]
    dead = first.__class__(**{**first.__dict__, "path": first.path.replace(str(xrootd_demo.port), "1")})
    name = HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackBX")
    start = time.monotonic()
    stats = fetch_batch([dead, item], [name], tmp_path / "s", tmp_path / "m.tsv", retries=2, backoff=0.1)
    assert stats.failed == 1
    manifest = read_manifest(tmp_path / "m.tsv").set_index("run_number")
    assert manifest.loc[dead.run, "status"] == "file_error" and "localhost:1/" in manifest.loc[dead.run, "file"]
    assert manifest.loc[item.run, "status"] == "ok", "the other run is fetched normally"
    assert time.monotonic() - start < 300


def test_transient_outage_is_retried_with_backoff(tmp_path: Path, xrootd_demo, demo_tree: Path) -> None:
    """The server is down at the first attempt and back before the retry: nothing is lost."""
    import shutil
    import tempfile
    import threading

    from tests.conftest import XRootDServer, _free_port

    root = Path(tempfile.mkdtemp(prefix="dqmflow-xrootd-"))
    shutil.copytree(demo_tree / "DQMGUI_data" / "Run2017", root / "data" / "store" / "dqm" / "Run2017")
    port = _free_port()
    items = sorted(list_source(xrootd_demo.url("dqm"), PD, 2017))[:3]
    moved = [i.__class__(**{**i.__dict__, "path": i.path.replace(f":{xrootd_demo.port}/", f":{port}/")})
             for i in items]  # fmt: skip
    servers: list[XRootDServer] = []
    threading.Timer(1.0, lambda: servers.append(XRootDServer(root, port))).start()
    try:
        name = HistogramName("L1T", "/Run summary/L1TStage2EMTF/emtfTrackBX")
        stats = fetch_batch(moved, [name], tmp_path / "s", tmp_path / "m.tsv", retries=4, backoff=1.0)
    finally:
        time.sleep(1.5)
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert servers, "the server was restarted"
    assert stats.failed == 0
    assert set(read_manifest(tmp_path / "m.tsv")["status"]) == {"ok"}
