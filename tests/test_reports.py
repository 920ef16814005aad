"""Reports and parameterised notebooks: parameters checked before a kernel starts, any notebook."""

from __future__ import annotations

import nbformat
import papermill
import pytest

from glaviz.reports import check_parameters, report, report_many, run_notebook


@pytest.fixture()
def no_kernel(monkeypatch):
    """Fail the test if a kernel would start."""

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)


def _tiny_notebook(path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('greeting = "hello"\ntimes = 2\nnotes_file = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print(greeting * times)")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(
    "params,message",
    [
        ({"regoin": "X"}, "has no parameter 'regoin'"),
        ({"train_epochs": "six"}, "parameter 'train_epochs' of report.ipynb must be a int"),
        ({"tta": 1}, "parameter 'tta' of report.ipynb must be a bool"),
        ({"checkpoint": "missing.safetensors"}, "file 'missing.safetensors' does not exist"),
        ({"optical_files": ["a.tif"]}, "parameter 'optical_files'"),
    ],
)
def test_bad_report_parameters_fail_before_the_kernel(no_kernel, tmp_path, params, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        report(params, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_bad_region_fails_before_any_kernel(no_kernel, tmp_path):
    config = tmp_path / "regions.yml"
    config.write_text(
        "defaults: {train_epochs: 1}\nregions:\n- {name: A}\n- {name: B, tta: yes!}\n"
    )
    with pytest.raises(ValueError, match="region 'B'.*'tta'"):
        report_many(config, tmp_path / "out")
    with pytest.raises(ValueError, match="unique 'name'"):
        report_many([{"name": "A"}, {"name": "A"}], tmp_path / "out")


def test_existing_report_is_not_overwritten(no_kernel, tmp_path):
    out = tmp_path / "r.html"
    out.write_text("keep")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        report({}, out)
    assert out.read_text() == "keep"
    with pytest.raises(ValueError, match=".html"):
        report({}, tmp_path / "r.pdf")


def test_run_notebook_runs_any_notebook_with_parameters(tmp_path):
    nb = _tiny_notebook(tmp_path / "tiny.ipynb")
    assert check_parameters(nb, {"times": 3}) == {"times": 3}
    out = run_notebook(nb, {"greeting": "ice ", "times": 3}, tmp_path / "run" / "tiny.out.ipynb")
    executed = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert text.strip() == "ice ice ice"
    with pytest.raises(ValueError, match="notes_file.*does not exist"):
        run_notebook(nb, {"notes_file": str(tmp_path / "nope.txt")})
    with pytest.raises(FileNotFoundError, match="give a path to a .ipynb"):
        run_notebook(tmp_path / "absent.ipynb")
