"""Every relative link in the README and docs/ leads somewhere: the file exists and, for a
link with #anchor to a Markdown file, that file has a heading whose GitHub anchor it is."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)
CODE_BLOCK = re.compile(r"^\s*```.*?^\s*```", re.DOTALL | re.MULTILINE)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but '-' and '_' dropped,
    spaces made '-' ("On a GPU, 10 samples" -> "on-a-gpu-10-samples")."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def prose(markdown: Path) -> str:
    """The text of a Markdown file without its fenced code blocks."""
    return CODE_BLOCK.sub("", markdown.read_text(encoding="utf-8"))


@functools.cache
def anchors_of(markdown: Path) -> frozenset[str]:
    """The anchors of the headings of a Markdown file, outside fenced code blocks."""
    return frozenset(github_anchor(heading) for heading in HEADING.findall(prose(markdown)))


def relative_links(markdown: Path) -> list[str]:
    """The targets of the links in a Markdown file that point inside the repository."""
    return [t for t in LINK.findall(prose(markdown)) if not re.match(r"[a-z]+:", t)]


def broken_links(markdown: Path) -> list[str]:
    """The links of `markdown` whose file is missing or whose anchor no heading has."""
    broken = []
    for target in relative_links(markdown):
        path_part, _, anchor = target.partition("#")
        destination = (markdown.parent / path_part).resolve() if path_part else markdown
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors_of(destination):
            broken.append(f"{target} (no such heading)")
    return broken


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("markdown", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_lead_somewhere(markdown: Path) -> None:
    assert broken_links(markdown) == []


def test_anchor_follows_github() -> None:
    assert github_anchor("10 Monte Carlo samples, on a GPU") == "10-monte-carlo-samples-on-a-gpu"
    assert (
        github_anchor("The auxiliary variable collapses when q(a|x) is trained (Figure 3)")
        == "the-auxiliary-variable-collapses-when-qax-is-trained-figure-3"
    )
    assert github_anchor("Where in the epoch: the `class-sorted` order") == (
        "where-in-the-epoch-the-class-sorted-order"
    )


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Real heading\n\n```\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[fine](other.md#real-heading) [gone](missing.md) [bad](other.md#not-a-heading)\n"
        "[web](https://example.org/x) [self](#top)\n\n# Top\n"
    )
    assert broken_links(page) == [
        "missing.md (no such file)",
        "other.md#not-a-heading (no such heading)",
    ]
