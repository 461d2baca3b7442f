"""The stock bot: `rasa init --no-prompt` (which trains its model), cached in var/bench/stock/."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench.procs import snapshot
from bot.settings import ROOT, VAR

RASA = ROOT / ".venv" / "bin" / "rasa"
STOCK_DIR = VAR / "bench" / "stock"
STAMP = "rasa-version.txt"


def stop_group(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM the process's whole session (it leads one), SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=wait)
            if not snapshot({process.pid}):
                return
        except subprocess.TimeoutExpired:
            continue


def rasa_version() -> str:
    from importlib.metadata import version

    return version("rasa")


def stock_model(stock_dir: Path = STOCK_DIR) -> Path | None:
    """The cached stock model, if it was trained by this Rasa version."""
    stamp = stock_dir / STAMP
    models = sorted((stock_dir / "models").glob("*.tar.gz"))
    if not models or not stamp.exists() or stamp.read_text().strip() != rasa_version():
        return None
    return models[-1]


def build_stock(stock_dir: Path = STOCK_DIR, timeout: float = 900) -> Path:
    """Return the stock model, building the stock project in a temporary folder when needed.

    `rasa init --no-prompt` writes the example project and trains it (it runs `rasa train`
    with the project's defaults); the folder is moved into place only once training succeeded,
    so an interrupted build leaves no half-made cache.
    """
    model = stock_model(stock_dir)
    if model is not None:
        return model
    stock_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=stock_dir.parent, prefix="stock-build-") as tmp:
        project = Path(tmp) / "stock"
        project.mkdir()  # with --no-prompt, rasa init wants the folder to exist
        print(f"bench: building the stock bot (rasa init --no-prompt) in {project}", flush=True)
        started = time.monotonic()
        with open(Path(tmp) / "init.log", "wb") as log:
            init = subprocess.Popen(
                [str(RASA), "init", "--no-prompt", "--init-dir", str(project)],
                cwd=tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = init.wait(timeout=timeout)
            finally:
                stop_group(init)
        if code != 0 or not list((project / "models").glob("*.tar.gz")):
            tail = (Path(tmp) / "init.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"rasa init failed (code {code}):\n{tail}")
        (project / STAMP).write_text(rasa_version())
        shutil.rmtree(stock_dir, ignore_errors=True)
        try:
            project.rename(stock_dir)
        except OSError:  # another run built it meanwhile: keep theirs if it is complete
            if stock_model(stock_dir) is None:
                raise
        print(f"bench: stock bot trained in {time.monotonic() - started:.0f}s", flush=True)
    model = stock_model(stock_dir)
    assert model is not None
    return model
