"""Every notebook runs top to bottom on the committed reference run, and is committed without outputs.

A failing cell fails its test with the notebook's name, the cell's source
and the traceback (nbclient's message, carried by NotebookError).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from qcache.bench.notebooks import (
    NOTEBOOKS,
    NotebookError,
    execute,
    inject_parameters,
    render_html,
)
from qcache.config import CacheConfig

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "notebooks"
REFERENCE = max((ROOT / "results" / "reference").iterdir())


def outputs_text(notebook: Any) -> str:
    """Every text and markdown output of an executed notebook, joined."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            parts.append(
                str(data.get("text/markdown", "")) + str(data.get("text/plain", "")) + str(output.get("text", ""))
            )
    return "\n".join(parts)


def images(notebook: Any) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", []))


def test_every_listed_notebook_exists_and_nothing_else() -> None:
    assert sorted(p.stem for p in FOLDER.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_stripped_with_a_parameters_cell(name: str) -> None:
    notebook = nbformat.read(FOLDER / f"{name}.ipynb", as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{name} has outputs: strip them"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    expected = "LOAD_RUN = " if name == "50_load" else 'RUN = ""'
    assert expected in tagged[0].source


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every notebook run once on the reference run (shared by the tests below)."""
    scratch = tmp_path_factory.mktemp("notebooks")
    parameters: dict[str, dict[str, Any]] = {name: {"RUN": str(REFERENCE)} for name in NOTEBOOKS}
    parameters["10_eviction_and_sizing"]["MAX_REQUESTS"] = 30_000
    parameters["90_recommend"]["ENV_OUTPUT"] = str(scratch / "recommended.env")
    parameters["50_load"] = {"RESULTS": str(scratch)}  # no load run there
    return {name: execute(FOLDER / f"{name}.ipynb", parameters[name]) for name in NOTEBOOKS} | {"scratch": scratch}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_on_the_reference_run(executed: dict[str, Any], name: str) -> None:
    notebook = executed[name]
    assert all(o.get("output_type") != "error" for c in notebook.cells for o in c.get("outputs", []))
    expected_images = {"50_load": 0, "60_profiles": 0}.get(name, 1)
    assert images(notebook) >= expected_images


def test_overview_counts_every_check(executed: dict[str, Any]) -> None:
    text = outputs_text(executed["00_overview"])
    assert "latencies:" in text and "hit rates:" in text and "healthy" in text


def test_recommend_writes_an_env_the_configuration_accepts(executed: dict[str, Any]) -> None:
    path = executed["scratch"] / "recommended.env"
    config = CacheConfig.from_env(env_file=path, environ={})
    assert not config.errors()
    assert "MEMORY_CACHE_EVICTION_POLICY=" in path.read_text()


def test_load_notebook_says_plainly_when_there_is_no_load_run(executed: dict[str, Any]) -> None:
    assert "No load run yet" in outputs_text(executed["50_load"])


def test_load_notebook_plots_a_summary(tmp_path: Path) -> None:
    folder = tmp_path / "load" / "r1"
    folder.mkdir(parents=True)
    summary = {
        "run_id": "r1",
        "shape": "chaos",
        "duration_s": 30.0,
        "processes": 1,
        "operations": [
            {
                "user": "ReadHeavyUser",
                "operation": "get",
                "count": 900,
                "errors": 3,
                "rps": 30.0,
                "p50_us": 400.0,
                "p99_us": 60_000.0,
            }
        ],
        "timeline": [
            {"t_s": float(t), "users": 4, "rps": 30.0, "errors": 0, "p99_us": 2000.0 * (1 + t % 5)} for t in range(30)
        ],
        "ramp": {
            "steps": [{"users": u, "rps": 10.0 * u, "p99_us": 500.0 * u, "error_ratio": 0.0} for u in (1, 2, 4, 8)],
            "knee": {"users": 4, "rps": 40.0, "p99_us": 2000.0},
        },
        "chaos": {
            "mode": "pause",
            "fault_at_s": 10.0,
            "restart_at_s": 15.0,
            "caller_exceptions": 0,
            "error_ratio": 0.0,
            "p99_during_fault_us": 5000.0,
            "l2_recovery_s": 1.5,
        },
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    notebook = execute(FOLDER / "50_load.ipynb", {"LOAD_RUN": str(folder)})
    text = outputs_text(notebook)
    assert "Load run `r1`" in text and "alert" in text and "Chaos (pause)" in text
    assert images(notebook) == 2  # the timeline and the ramp


def test_eviction_notebook_draws_curves_on_a_trace_of_your_own(tmp_path: Path) -> None:
    trace = tmp_path / "my_keys.txt"
    trace.write_text("".join(f"k{(i * i) % 997 if i % 4 else i % 50}\n" for i in range(20_000)))
    notebook = execute(FOLDER / "10_eviction_and_sizing.ipynb", {"RUN": str(REFERENCE), "TRACE": str(trace)})
    text = outputs_text(notebook)
    assert "my_keys.txt" in text and "Choose" in text
    assert images(notebook) == 2  # the curves and the margins


def test_report_html_embeds_the_plots_and_loads_nothing_remote(executed: dict[str, Any]) -> None:
    html = render_html([(name, executed[name]) for name in NOTEBOOKS], "qcache tuning report")
    assert html.count("data:image/png;base64") >= 6
    assert 'src="http' not in html


def test_a_failing_cell_fails_with_its_source(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("X = 1")
    params.metadata["tags"] = ["parameters"]
    notebook.cells = [params, nbformat.v4.new_code_cell("assert X == 1, 'X was replaced'\nraise ValueError('boom')")]
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook, path)
    with pytest.raises(NotebookError) as failure:
        execute(path, {"X": 1})
    assert "raise ValueError('boom')" in str(failure.value) and "broken.ipynb" in str(failure.value)
    with pytest.raises(NotebookError, match="tagged 'parameters'"):
        inject_parameters(nbformat.v4.new_notebook(), {"X": 2})
