"""Run the tuning notebooks against a run folder and render them as one HTML report.

Parameters are injected papermill-style: a cell tagged ``injected-parameters``
goes right after the cell tagged ``parameters``, so the notebook's own
defaults stay visible above the values that replaced them. Execution uses
nbclient; a failing cell raises :class:`NotebookError` carrying the
notebook's name and nbclient's message, which shows the cell's source and
its traceback.

Needs the ``notebooks`` extra (nbclient, nbconvert, ipykernel, matplotlib);
:func:`missing_extras` says what is absent so that callers can say so
instead of failing.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qcache.errors import QCacheError

#: The notebooks, in report order.
NOTEBOOKS = (
    "00_overview",
    "10_eviction_and_sizing",
    "20_write_strategies_and_levels",
    "30_compression_and_encryption",
    "40_batch_and_pool_sizing",
    "50_load",
    "60_profiles",
    "90_recommend",
)
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
REQUIRED_MODULES = ("nbformat", "nbclient", "nbconvert", "ipykernel", "matplotlib")
#: Scripts the HTML template loads from the network; the report embeds everything it shows, so they go.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>\s*", re.IGNORECASE)


class NotebookError(QCacheError):
    """A notebook failed to execute (the message names the notebook and shows the failing cell)."""


def missing_extras() -> list[str]:
    """The modules of the ``notebooks`` extra that are not installed."""
    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def _literal(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    raise NotebookError(f"notebook parameters must be text, numbers or booleans, got {type(value).__name__}")


def _module(name: str) -> Any:
    """An optional module of the notebooks extra, typed as Any (nbformat and nbconvert ship no types)."""
    return importlib.import_module(name)


def inject_parameters(notebook: Any, parameters: Mapping[str, Any]) -> Any:
    """Insert the ``parameters`` overrides after the cell tagged ``parameters`` (which must exist)."""
    nbformat = _module("nbformat")

    index = next(
        (i for i, cell in enumerate(notebook.cells) if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])), None
    )
    if index is None:
        raise NotebookError("the notebook has no cell tagged 'parameters'")
    if not parameters:
        return notebook
    source = "# Injected parameters\n" + "\n".join(f"{k} = {_literal(v)}" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [INJECTED_TAG]
    notebook.cells.insert(index + 1, cell)
    return notebook


def execute(path: Path, parameters: Mapping[str, Any] | None = None, *, timeout: int = 600) -> Any:
    """Run the notebook at ``path`` with ``parameters``, from its own folder; the executed notebook."""
    nbformat = _module("nbformat")
    from nbclient import NotebookClient
    from nbclient.exceptions import (
        CellExecutionError,
        CellTimeoutError,
        DeadKernelError,
    )

    notebook = inject_parameters(nbformat.read(path, as_version=4), parameters or {})
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        # The kernel's own stderr (a warning about its loopback transport) is not the notebook's output.
        client.execute(stderr=subprocess.DEVNULL)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        raise NotebookError(f"{path.name} failed:\n{_ANSI.sub('', str(exc))}") from exc
    return notebook


def render_html(executed: Sequence[tuple[str, Any]], title: str, preface: str = "") -> str:
    """One self-contained HTML page of the notebooks' text and outputs (code hidden, plots embedded).

    ``preface`` (markdown) goes right under the title: the verdict a reader
    should see before the evidence.
    """
    nbformat = _module("nbformat")
    exporter = _module("nbconvert").HTMLExporter()

    merged = nbformat.v4.new_notebook()
    merged.metadata = executed[0][1].metadata if executed else {}
    for name, notebook in executed:
        anchor = nbformat.v4.new_markdown_cell(f'<a id="{name}"></a>\n\n---\n_notebook `notebooks/{name}.ipynb`_')
        merged.cells.append(anchor)
        merged.cells.extend(
            cell
            for cell in notebook.cells
            if PARAMETERS_TAG not in cell.get("metadata", {}).get("tags", [])
            and INJECTED_TAG not in cell.get("metadata", {}).get("tags", [])
        )
    contents = "\n".join(f"- [{name}](#{name})" for name, _ in executed)
    merged.cells.insert(0, nbformat.v4.new_markdown_cell(f"# {title}\n\n{preface}\n\n**Contents**\n\n{contents}"))
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(merged, resources={"metadata": {"name": title}})
    return _REMOTE_SCRIPT.sub("", body)


def strip_outputs(notebook: Any) -> Any:
    """The notebook as it is committed: no outputs, no execution counts, no injected cells."""
    notebook.cells = [c for c in notebook.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    return notebook
