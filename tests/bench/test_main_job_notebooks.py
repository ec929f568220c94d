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


def test_a_failing_notebook_is_logged_named_and_the_others_still_render(
    main_job: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def execute(path: Path, parameters: dict[str, object]) -> object:
        if path.stem == "20_write_strategies_and_levels":
            raise main_job.NotebookError(f"{path.name} failed:\nraise ValueError('boom')")
        return {"cells": []}

    rendered: dict[str, object] = {}

    def render_html(executed: list[tuple[str, object]], title: str, preface: str) -> str:
        rendered.update(names=[name for name, _ in executed], preface=preface)
        return "<html></html>"

    monkeypatch.setattr(main_job, "execute", execute)
    monkeypatch.setattr(main_job, "render_html", render_html)
    notes: list[str] = []
    assert main_job.render_notebooks(tmp_path, tmp_path / "report.html", notes) is False
    assert "raise ValueError('boom')" in (tmp_path / "notebook-20_write_strategies_and_levels.log").read_text()
    assert any("20_write_strategies_and_levels FAILED" in note for note in notes)
    assert "20_write_strategies_and_levels" not in rendered["names"]  # type: ignore[operator]
    assert len(rendered["names"]) == len(main_job.NOTEBOOKS) - 1  # type: ignore[arg-type]
    assert "failed" in str(rendered["preface"]) and (tmp_path / "report.html").is_file()
