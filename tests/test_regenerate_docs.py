"""scripts/regenerate_docs.py: the tables between markers are redrawn by their commands, the
rest of the document is untouched, and bad documents or failing commands change nothing."""

from __future__ import annotations

import json

import pytest

from tests.scripts import ROOT, load_script

SCRIPT = ROOT / "scripts" / "regenerate_docs.py"
regenerate_docs = load_script("scripts", "regenerate_docs")

DOC = """# Results

Prose before, with a | pipe that is not a table.

<!-- generated: first -->
| old | table |
<!-- end generated: first -->

Prose between.

<!-- generated: second -->
<!-- end generated: second -->
Prose after.
"""


def fake_run(arguments):
    """A command's output: a header line, then a table naming its arguments."""
    return "some header\n| a | b |\n| --- | --- |\n| " + " | ".join(arguments) + " |\ntail\n"


def test_blocks_are_redrawn_and_the_rest_is_left_as_it_was():
    tables = {"first": ["summary", "x"], "second": ["reproduce", "y", "--at", "5"]}
    new, changed = regenerate_docs.regenerate(DOC, tables, fake_run)
    assert changed == ["first", "second"]
    assert "| summary | x |\n\n(`adgm summary x`)\n<!-- end generated: first -->" in new
    assert "| reproduce | y | --at | 5 |\n\n(`adgm reproduce y --at 5`)\n" in new
    assert "| old | table |" not in new and "some header" not in new and "tail" not in new
    outside = [part.split("<!-- end generated")[-1] for part in new.split("<!-- generated")]
    expected = [part.split("<!-- end generated")[-1] for part in DOC.split("<!-- generated")]
    assert [o.split("-->", 1)[-1] for o in outside] == [e.split("-->", 1)[-1] for e in expected]
    again, changed_again = regenerate_docs.regenerate(new, tables, fake_run)
    assert again == new and changed_again == []


@pytest.mark.parametrize(
    "doc, tables, message",
    [
        (DOC, {"first": ["a"]}, "no command draws: \\['second'\\]"),
        (DOC, {"first": ["a"], "second": ["b"], "third": ["c"]}, "end block for \\['third'\\]"),
        (
            DOC.replace("<!-- end generated: second -->\n", ""),
            {"first": ["a"], "second": ["b"]},
            "end block for \\['second'\\]",
        ),
        (DOC + DOC, {"first": ["a"], "second": ["b"]}, "appear twice"),
    ],
)
def test_a_document_whose_markers_do_not_match_the_tables_is_refused(doc, tables, message):
    with pytest.raises(regenerate_docs.DocsError, match=message):
        regenerate_docs.regenerate(doc, tables, fake_run)


def test_a_command_that_prints_no_table_is_refused():
    with pytest.raises(regenerate_docs.DocsError, match="printed no table"):
        regenerate_docs.regenerate(DOC, {"first": ["a"], "second": ["b"]}, lambda a: "none\n")


def test_every_results_table_sits_on_one_page_that_holds_its_block():
    """Each table of RESULTS_TABLES is drawn into exactly one page of docs/results/, and that
    page has the table's marker lines (a table left out of TABLES would go stale unseen)."""
    placed = [
        (document, name)
        for document, tables in regenerate_docs.TABLES.items()
        if document.startswith("docs/results/")
        for name in tables
    ]
    assert sorted(name for _, name in placed) == sorted(regenerate_docs.RESULTS_TABLES)
    for document, name in placed:
        text = (ROOT / document).read_text()
        assert f"<!-- generated: {name} -->" in text, (document, name)
        assert f"<!-- end generated: {name} -->" in text, (document, name)


def test_every_table_and_figure_reads_committed_run_records():
    tables = [t for doc in regenerate_docs.TABLES.values() for t in doc.values()]
    for arguments in [*tables, *regenerate_docs.FIGURES.values()]:
        for run in (a for a in arguments if a.startswith("docs/runs/")):
            assert (ROOT / run / "metrics.jsonl").is_file(), run


def test_check_then_redraw_from_a_real_record(tmp_path, monkeypatch, capsys):
    """The real CLI on a committed record: the drawn row holds the test error that the
    record's metrics.jsonl has at epoch 100; --check says stale and changes nothing; a failing
    command leaves the document as it was."""
    record = ROOT / "docs" / "runs" / "m2-1mc"
    rows = [json.loads(line) for line in (record / "metrics.jsonl").read_text().splitlines()]
    error_at_100 = next(row["test_error"] for row in rows if row["epoch"] == 100)
    doc = tmp_path / "results.md"
    doc.write_text("before\n<!-- generated: m2 -->\n| stale |\n<!-- end generated: m2 -->\nafter\n")
    original = doc.read_text()
    other = tmp_path / "README.md"
    other.write_text("<!-- generated: m2 -->\n<!-- end generated: m2 -->\n")
    tables = {"m2": ["summary", "docs/runs/m2-1mc", "--at", "100"]}
    monkeypatch.setattr(regenerate_docs, "TABLES", {str(doc): tables, str(other): tables})

    assert regenerate_docs.main(["--check"]) == 1
    assert f"stale: {doc}: m2" in capsys.readouterr().out and doc.read_text() == original

    broken = {"m2": ["summary", "docs/runs/no-such-run"]}
    monkeypatch.setattr(regenerate_docs, "TABLES", {str(doc): tables, str(other): broken})
    assert regenerate_docs.main([]) == 2  # the second document's command fails: neither changes
    assert "failed" in capsys.readouterr().err and doc.read_text() == original

    monkeypatch.setattr(regenerate_docs, "TABLES", {str(doc): tables, str(other): tables})
    assert regenerate_docs.main([]) == 0
    text = doc.read_text()
    row = next(line for line in text.splitlines() if "(m2-1mc)" in line)
    assert f"{100 * error_at_100:.2f}%" in row.split("|")[2]  # the epoch 100 column
    assert text.startswith("before\n") and text.endswith("after\n")
    assert "(m2-1mc)" in other.read_text()
    assert regenerate_docs.main(["--check"]) == 0
    assert not list(tmp_path.glob("*.partial"))
