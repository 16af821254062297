"""Code written for Disdat 1.2 runs with only its import changed (issue 7, items 7, 13-15).

``DISDAT_SNIPPET`` is user code in Disdat's style, using the calls and keywords of the
released ``disdat/api.py``; the test runs it in a fresh interpreter with ``import disdat.api
as api`` replaced by ``import assay.api as api`` and nothing else changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assay import api
from assay.core.errors import BundleClosed, InvalidInput, InvalidName
from helpers import blob_files, catalog_counts, write_files

DISDAT_SNIPPET = textwrap.dedent(
    """
    import json
    import os
    import sys

    import disdat.api as api

    TEST_CONTEXT = "___test_context___"
    workdir = sys.argv[1]

    api.delete_context(TEST_CONTEXT)  # Disdat's tests clean up first: a no-op here
    api.context(TEST_CONTEXT)

    model_path = os.path.join(workdir, "model.tgz")
    with open(model_path, "w") as handle:
        handle.write("weights")

    # 1) one call, with data: written at once
    model = api.Bundle(TEST_CONTEXT, name="propensity_model", owner="fred", data=model_path)

    # 2) a context manager, named inside the block
    with api.Bundle(TEST_CONTEXT) as b:
        b.name = "_results_"
        out_file = b.get_file("output.txt")
        with open(out_file, "w") as handle:
            handle.write("hello")
        out_dir = b.get_directory("parts")
        with open(os.path.join(out_dir, "part-0.csv"), "w") as handle:
            handle.write("a,b\\n1,2\\n")
        b.add_data({"summary": out_file, "parts": out_dir, "rows": 1})
        b.add_code_ref("mymodule.mymethod")
        b.add_params({"path": model_path})
        b.add_tags({"stage": "test"})
        b.add_dependencies(model, "model")
        b.add_git_info("https://github.com/bamboozle/some-project", "010b867", "HEAD")
        b.add_timing(100.0, 200.0)

    # 3) open and close by hand, with constructor keywords
    manual = api.Bundle(
        TEST_CONTEXT, processing_name="manual_v1", tags={"kind": "manual"}, params={"n": 3}
    ).open()
    manual.name = "manual"
    manual.add_data([1, 2, 3])
    manual.close()

    found = api.get(TEST_CONTEXT, "_results_")
    data = found.data
    report = {
        "closed": found.closed,
        "summary": open(data["summary"]).read(),
        "parts": sorted(os.listdir(data["parts"])),
        "rows": data["rows"],
        "tags": found.tags,
        "params": found.params,
        "code_ref": found.code_ref,
        "git_info": list(found.git_info),
        "timing": list(found.timing),
        "dependencies": {k: list(v) for k, v in found.dependencies.items()},
        "model_uuid": model.uuid,
        "model_data": open(api.get(TEST_CONTEXT, "propensity_model").data).read(),
        "owner": model.owner,
        "presentable": found.is_presentable,
        "cat": api.cat(TEST_CONTEXT, "manual"),
        "manual_processing_name": api.get(TEST_CONTEXT, "manual").processing_name,
        "manual_params": api.get(TEST_CONTEXT, "manual").params,
        "search": sorted(b.name for b in api.search(TEST_CONTEXT, human_name="*_")),
        "by_tags": [b.name for b in api.search(TEST_CONTEXT, tags={"kind": "manual"})],
        "by_processing_name": [
            b.name for b in api.search(TEST_CONTEXT, processing_name="manual_*")
        ],
    }
    found.commit()
    api.commit(TEST_CONTEXT, "manual")
    report["committed"] = [b.name for b in api.search(TEST_CONTEXT, is_committed=True)]
    api.rm(TEST_CONTEXT, "manual")
    report["after_rm"] = api.get(TEST_CONTEXT, "manual") is None
    api.delete_context(TEST_CONTEXT, force=True)
    print(json.dumps(report))
    """
)


def test_disdat_code_runs_with_only_the_import_changed(assay_home: Path, tmp_path: Path) -> None:
    assert DISDAT_SNIPPET.count("import disdat.api as api") == 1
    script = tmp_path / "user_code.py"
    script.write_text(DISDAT_SNIPPET.replace("import disdat.api as api", "import assay.api as api"))
    workdir = tmp_path / "work"
    workdir.mkdir()

    result = subprocess.run(
        [sys.executable, str(script), str(workdir)],
        env=dict(os.environ),  # ASSAY_HOME / ASSAY_CATALOG_URL from the fixture
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    report = __import__("json").loads(result.stdout.splitlines()[-1])
    assert report["closed"] is True
    assert report["summary"] == "hello"
    assert report["parts"] == ["part-0.csv"]
    assert report["rows"] == 1
    assert report["tags"] == {"stage": "test"}
    assert report["params"] == {"path": str(workdir / "model.tgz")}
    assert report["code_ref"] == "mymodule.mymethod"
    assert report["git_info"] == ["https://github.com/bamboozle/some-project", "010b867", "HEAD"]
    assert report["timing"] == [100.0, 200.0]
    assert report["dependencies"] == {"model": ["propensity_model", report["model_uuid"]]}
    assert report["model_data"] == "weights"
    assert report["owner"] == "fred"
    assert report["presentable"] is True
    assert report["cat"] == [1, 2, 3]
    assert report["manual_processing_name"] == "manual_v1"
    assert report["manual_params"] == {"n": 3}
    assert report["search"] == ["_results_"]
    assert report["by_tags"] == ["manual"]
    assert report["by_processing_name"] == ["manual"]
    assert sorted(report["committed"]) == ["_results_", "manual"]
    assert report["after_rm"] is True
    assert api.ls_contexts() == []


# -- item 15: constructor and naming -------------------------------------------------------
@pytest.fixture
def ctx(assay_home: Path) -> str:
    api.context("work")
    return "work"


def test_bundle_with_data_is_written_at_once(ctx: str) -> None:
    bundle = api.Bundle(ctx, name="x", data={"a": 1}, tags={"k": "v"}, params={"p": 2})
    assert bundle.closed
    stored = api.get(ctx, "x")
    assert stored.uuid == bundle.uuid
    assert stored.data == {"a": 1}
    assert stored.tags == {"k": "v"} and stored.params == {"p": 2}


def test_positional_arguments_follow_disdat_order(ctx: str) -> None:
    bundle = api.Bundle(ctx, "pos", [1, 2], "proc", "owner-name")
    assert bundle.closed
    assert (bundle.name, bundle.processing_name, bundle.owner) == ("pos", "proc", "owner-name")
    assert api.cat(ctx, "pos") == [1, 2]


def test_name_set_inside_the_block(ctx: str) -> None:
    with api.Bundle(ctx) as bundle:
        assert bundle.name == ""
        bundle.name = "late"
        bundle.add_data(7)
    assert api.cat(ctx, "late") == 7
    with pytest.raises(BundleClosed):
        bundle.name = "again"


def test_a_bundle_never_named_writes_nothing(ctx: str, assay_home: Path) -> None:
    rows = catalog_counts()
    with pytest.raises(InvalidInput, match="needs a name"), api.Bundle(ctx) as bundle:
        bundle.add_data(1)
    assert catalog_counts() == rows
    assert not bundle.closed
    with pytest.raises(InvalidName), api.Bundle(ctx) as bundle:
        bundle.name = "bad/name"


def test_the_code_reference_names_an_unnamed_bundle(ctx: str) -> None:
    with api.Bundle(ctx, code_method="pkg.module.train") as bundle:
        bundle.add_data(1)
    assert bundle.name == "train"
    assert api.get(ctx, "train").code_ref == "pkg.module.train"


def test_bad_data_given_to_the_constructor_writes_nothing(ctx: str, assay_home: Path) -> None:
    rows = catalog_counts()
    with pytest.raises(InvalidInput, match="cannot store a value of type set"):
        api.Bundle(ctx, name="bad", data={1, 2})
    assert catalog_counts() == rows
    assert not list((assay_home / "staging").iterdir())


def test_add_dependencies_default_argument_names(ctx: str) -> None:
    first = api.Bundle(ctx, name="first", data=1)
    second = api.Bundle(ctx, name="second", data=2)
    with api.Bundle(ctx, "third", dependencies={"seed": first}) as third:
        third.add_dependencies([second])
        third.add_data(3)
    assert api.get(ctx, "third").dependencies == {
        "seed": ("first", first.uuid),
        "_arg_1": ("second", second.uuid),
    }
    with pytest.raises(InvalidInput, match="2 bundle"), api.Bundle(ctx, "x") as bundle:
        bundle.add_dependencies([first, second], ["only_one"])


def test_local_dir_and_rm_return_values(ctx: str) -> None:
    with api.Bundle(ctx, "files") as bundle:
        staging = bundle.local_dir
        assert staging is not None and bundle.get_file("a.txt").startswith(staging)
        with open(bundle.get_file("a.txt"), "w") as handle:
            handle.write("x")
    view = bundle.local_dir
    assert view is not None and (Path(view) / "a.txt").read_text() == "x"
    assert bundle.remote_dir is None
    assert bundle.rm() is bundle
    assert api.get(ctx, "files") is None


# -- item 7: api.add takes paths; values get a clear error --------------------------------
@pytest.mark.parametrize("value", [{"a": 1}, 3.5, [1, 2]], ids=["dict", "float", "list"])
def test_add_refuses_a_value_and_points_to_add_data(
    ctx: str, assay_home: Path, value: object
) -> None:
    rows = catalog_counts()
    with pytest.raises(InvalidInput, match=r"Bundle.*add_data"):
        api.add(ctx, "v", value)  # type: ignore[arg-type]
    assert catalog_counts() == rows
    assert blob_files(assay_home) == {}


def test_add_refuses_a_dataframe(ctx: str, assay_home: Path) -> None:
    pandas = pytest.importorskip("pandas")
    rows = catalog_counts()
    with pytest.raises(InvalidInput, match=r"not a DataFrame.*add_data"):
        api.add(ctx, "frame", pandas.DataFrame({"a": [1]}))  # type: ignore[arg-type]
    assert catalog_counts() == rows
    assert blob_files(assay_home) == {}


def test_add_takes_a_list_of_paths_as_disdat(ctx: str, tmp_path: Path) -> None:
    one = write_files(tmp_path / "one", {"a.txt": "a", "sub/b.txt": "b"})
    two = write_files(tmp_path / "two", {"c.txt": "c"})
    bundle = api.add(ctx, "several", [one, two / "c.txt"])
    names = sorted(Path(p).relative_to(bundle.local_dir or "").as_posix() for p in bundle.data)
    assert names == ["a.txt", "c.txt", "sub/b.txt"]

    clash = write_files(tmp_path / "three", {"a.txt": "other"})
    rows = catalog_counts()
    with pytest.raises(InvalidInput, match=r"both hold 'a\.txt'"):
        api.add(ctx, "clash", [one, clash])
    assert catalog_counts() == rows
