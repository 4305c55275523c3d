"""The notebook runner: parameter sets, per-notebook parameters, and clean committed outputs."""

import json

import pytest

from helpers.paths import PROJECT_ROOT
from helpers.pipeline import (
    current_parameters,
    load_params,
    notebook_parameters,
    run,
    without_native_logs,
    write_clean_copy,
)

TF_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795491304.001398   18371 port.cc:153] oneDNN custom operations are on.\n"
)


def test_native_tensorflow_log_lines_are_dropped_and_real_stderr_is_kept():
    outputs = [
        {"output_type": "stream", "name": "stderr", "text": [TF_LINES]},
        {"output_type": "stream", "name": "stderr", "text": [TF_LINES, "Beagle: 100%|##| 9/9\n"]},
        {"output_type": "stream", "name": "stdout", "text": [TF_LINES]},
    ]
    kept = without_native_logs(outputs)
    assert kept[0] == {
        "output_type": "stream",
        "name": "stderr",
        "text": ["Beagle: 100%|##| 9/9\n"],
    }
    assert kept[1] == outputs[2]  # stdout is the notebook's own output: untouched
    assert len(kept) == 2


def test_clean_copy_drops_run_timings_and_native_logs(tmp_path):
    cell = {
        "cell_type": "code",
        "metadata": {"papermill": {"duration": 1.5}, "execution": {"x": 1}, "tags": ["t"]},
        "outputs": [{"output_type": "stream", "name": "stderr", "text": [TF_LINES]}],
        "source": "1",
    }
    executed = tmp_path / "run.ipynb"
    executed.write_text(json.dumps({"metadata": {"papermill": {}}, "cells": [cell]}))
    write_clean_copy(executed, tmp_path / "clean.ipynb")
    clean = json.loads((tmp_path / "clean.ipynb").read_text())
    assert clean["metadata"] == {
        "kernelspec": {
            "display_name": "doggo (reproducible)",
            "language": "python",
            "name": "doggo",
        }
    }
    assert clean["cells"][0]["metadata"] == {"tags": ["t"]}
    assert clean["cells"][0]["outputs"] == []


def test_every_parameter_set_names_only_parameters_its_notebooks_declare():
    files = sorted((PROJECT_ROOT / "params").glob("*.yaml"))
    assert {f.stem for f in files} >= {"demo", "bench", "full"}
    for path in files:
        params = load_params(path)
        for stem in params["notebooks"]:
            assert isinstance(notebook_parameters(stem, params), dict)


def test_an_unknown_parameter_is_a_clear_error():
    params = {"common": {}, "notebooks": {"02_split": {"min_per_bread": 3}}}
    with pytest.raises(ValueError, match="min_per_bread"):
        notebook_parameters("02_split", params)


def test_update_notebooks_refuses_a_set_that_overrides_the_notebooks_own_parameters(tmp_path):
    overriding = tmp_path / "big.yaml"
    overriding.write_text("notebooks:\n  02_split:\n    min_per_breed: 3\n")
    with pytest.raises(ValueError, match="overrides parameters of \\['02_split'\\]"):
        run(str(overriding), None, update=True, run_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_demo_injects_nothing_and_runs_in_the_doggo_kernel():
    demo = load_params(PROJECT_ROOT / "params" / "demo.yaml")
    assert all(notebook_parameters(stem, demo) == {} for stem in demo["notebooks"])
    solutions = PROJECT_ROOT / "solutions"
    assert all(
        notebook_parameters(stem, demo, solutions, "solutions") == {} for stem in demo["solutions"]
    )
    assert demo["kernel"] == "doggo"


def test_the_demo_runs_every_lesson_and_then_every_solutions_notebook_in_lesson_order():
    demo = load_params(PROJECT_ROOT / "params" / "demo.yaml")
    lessons = sorted(p.stem for p in (PROJECT_ROOT / "notebooks").glob("0*.ipynb"))
    assert list(demo["notebooks"]) == lessons
    solved = sorted(p.stem for p in (PROJECT_ROOT / "solutions").glob("0*.ipynb"))
    assert list(demo["solutions"]) == solved
    assert all(stem.removesuffix("_solutions") in lessons for stem in solved)


NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("0*.ipynb"))
SOLUTIONS = sorted((PROJECT_ROOT / "solutions").glob("0*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_a_learner_who_edits_the_parameters_cell_gets_what_they_edited(path):
    cells = json.loads(path.read_text())["cells"]
    tags = [cell.get("metadata", {}).get("tags", []) for cell in cells]
    assert sum("parameters" in t for t in tags) == 1
    assert not any("injected-parameters" in t for t in tags), "a cell overrides the parameters"
    assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "doggo"


def write_tiny_notebook(path, parameters: str, *code: str) -> None:
    """Write a notebook in the python3 kernel: a parameters cell, then code cells."""
    import nbformat

    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}  # fmt: skip
    book.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                  *(nbformat.v4.new_code_cell(c) for c in code)]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(book, path)


def test_a_headless_run_writes_each_notebooks_outputs_to_a_log_file_as_they_come(tmp_path):
    import nbformat

    notebooks = tmp_path / "notebooks"
    write_tiny_notebook(notebooks / "01_tiny.ipynb", "epochs = 2",
                        "for e in range(epochs):\n    print(f'epoch {e + 1} done')")  # fmt: skip
    params = tmp_path / "tiny.yaml"
    params.write_text("name: tiny\nkernel: python3\nnotebooks:\n  01_tiny:\n    epochs: 3\n")
    out = run(
        str(params), None, update=False, run_dir=str(tmp_path / "out"), notebooks_dir=notebooks
    )
    log = (out / "01_tiny.log").read_text()
    assert [line for line in log.splitlines() if line.startswith("epoch")] == [
        "epoch 1 done", "epoch 2 done", "epoch 3 done"
    ]  # fmt: skip
    executed = nbformat.read(out / "01_tiny.ipynb", as_version=4)
    assert "epoch 3 done" in executed.cells[-1].outputs[0]["text"]


def test_current_parameters_are_the_parameters_cells_names_with_the_runs_values(tmp_path):
    write_tiny_notebook(tmp_path / "01_tiny.ipynb", "epochs = 2\nseed = 0  # fixed", "other = 1")
    namespace = {"epochs": 5, "seed": 7, "other": 1, "np": object()}  # as papermill injected
    assert current_parameters("01_tiny", namespace, tmp_path) == {"epochs": 5, "seed": 7}


def test_solutions_run_after_the_lessons_in_their_own_folder_with_their_own_parameters(tmp_path):
    import nbformat

    order = tmp_path / "order.txt"
    folders = {"notebooks": tmp_path / "notebooks", "solutions": tmp_path / "solutions"}
    for section, folder in folders.items():
        folder.mkdir()
        book = nbformat.v4.new_notebook()
        book.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
        book.cells = [
            nbformat.v4.new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(
                "import os\n"
                f"with open({str(order)!r}, 'a') as f:\n"
                "    f.write(f'{os.path.basename(os.getcwd())} {n}\\n')"
            ),
        ]
        stem = "01_tiny" if section == "notebooks" else "01_tiny_solutions"
        nbformat.write(book, folder / f"{stem}.ipynb")
    params = tmp_path / "tiny.yaml"
    params.write_text(
        "name: tiny\nkernel: python3\nsolutions:\n  01_tiny_solutions:\n    n: 3\n"
        "notebooks:\n  01_tiny: {}\n"
    )
    out = run(
        str(params),
        None,
        update=False,
        run_dir=str(tmp_path / "out"),
        notebooks_dir=folders["notebooks"],
        solutions_dir=folders["solutions"],
    )
    assert order.read_text().splitlines() == ["notebooks 1", "solutions 3"]
    assert (out / "01_tiny_solutions.ipynb").is_file()
    run(
        str(params),
        ["01_tiny_solutions"],
        update=False,
        run_dir=str(tmp_path / "out"),
        notebooks_dir=folders["notebooks"],
        solutions_dir=folders["solutions"],
    )
    assert order.read_text().splitlines() == ["notebooks 1", "solutions 3", "solutions 3"]


def test_several_workers_run_only_the_training_notebooks_and_only_on_an_existing_split(
    tmp_path, monkeypatch
):
    """Each machine of a multi-worker run scraping and splitting on its own is how workers came
    to train on different data: under such a TF_CONFIG the pipeline refuses 01, 02 and 06."""
    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    full = str(PROJECT_ROOT / "params" / "full.yaml")
    with pytest.raises(ValueError, match="run 01_scrape and 02_split once beforehand"):
        run(full, None, update=False, run_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # refused before anything ran
    missing = tmp_path / "nothing.yaml"
    missing.write_text(f"notebooks:\n  03_baseline:\n    data_dir: {tmp_path / 'none'}\n")
    with pytest.raises(FileNotFoundError, match="run 01_scrape and 02_split once"):
        run(str(missing), None, update=False, run_dir=str(tmp_path / "out"))
