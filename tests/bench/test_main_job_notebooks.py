"""The main job's notebook, recommendation and profile steps, called directly on the reference run."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from qcache.bench import load_run
from qcache.bench.layout import RunLayout
from qcache.config import CacheConfig

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = max((ROOT / "results" / "reference").iterdir())


@pytest.fixture(scope="module")
def main_job() -> ModuleType:
    spec = importlib.util.spec_from_file_location("qcache_main_job_notebooks", ROOT / "benchmarks" / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_without_the_notebook_extras_it_says_so_and_writes_no_html(
    main_job: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main_job, "missing_extras", lambda: ["nbclient"])
    notes: list[str] = []
    assert main_job.render_notebooks(tmp_path, tmp_path / "report.html", notes) is True
    assert not (tmp_path / "report.html").exists()
    assert "notebook extras missing (nbclient)" in notes[0] and "text report is written" in notes[0]


def test_the_default_recommendation_is_written_and_valid(main_job: ModuleType, tmp_path: Path) -> None:
    run_folder = tmp_path / "run"
    shutil.copytree(REFERENCE, run_folder)
    notes: list[str] = []
    recommendation = main_job.recommend_default(load_run(RunLayout(run_folder)), run_folder / "recommended.env", notes)
    assert recommendation is not None
    config = CacheConfig.from_env(env_file=run_folder / "recommended.env", environ={})
    assert not config.errors()
    assert config.memory.eviction_policy == recommendation.value("MEMORY_CACHE_EVICTION_POLICY")


def test_profile_names(main_job: ModuleType) -> None:
    assert main_job.profile_names("prod, high_performance,prod") == ["production", "high-performance"]
    assert len(main_job.profile_names("all")) == 5
    assert main_job.profile_names("") == []
    with pytest.raises(ValueError):
        main_job.profile_names("fastest")
