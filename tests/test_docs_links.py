"""The README and docs/ lead somewhere real: every link, anchor, repository path and make target they name exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]

_FENCED_BLOCK = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto: ...
_MAKE_COMMAND = re.compile(r"(?:^|[\s;&|(])make[ \t]+([a-z][a-z-]*)", re.MULTILINE)
_MAKE_TARGET = re.compile(r"^([a-z][a-z-]*):", re.MULTILINE)


def document_id(path: Path) -> str:
    """How a document shows up in test ids: its path from the repository root."""
    return str(path.relative_to(REPO_ROOT))


def prose(text: str) -> str:
    """The text a reader follows links in: fenced code blocks, HTML comments and code spans removed."""
    return _CODE_SPAN.sub("", _HTML_COMMENT.sub("", _FENCED_BLOCK.sub("", text)))


def code_of(text: str) -> list[str]:
    """What the document shows as code: its fenced blocks and its code spans."""
    return [block.group(0) for block in _FENCED_BLOCK.finditer(text)] + _CODE_SPAN.findall(_FENCED_BLOCK.sub("", text))


def github_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCED_BLOCK.sub("", text)):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
        slug = re.sub(r"[^\w\- ]", "", plain.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def relative_links(path: Path) -> list[str]:
    """Every link target in the document's prose that is not a URL with a scheme."""
    return [target for target in _LINK.findall(prose(path.read_text(encoding="utf-8"))) if not _EXTERNAL.match(target)]


def top_level_directories() -> set[str]:
    """Top-level directories of the repository, hidden ones (virtualenvs, caches) left out."""
    return {entry.name for entry in REPO_ROOT.iterdir() if entry.is_dir() and not entry.name.startswith(".")}


@pytest.mark.parametrize("document", DOCUMENTS, ids=document_id)
def test_every_relative_link_points_to_a_file_that_exists(document: Path) -> None:
    missing = [
        target
        for target in relative_links(document)
        if (path := target.split("#", 1)[0]) and not (document.parent / path).exists()
    ]
    assert missing == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=document_id)
def test_every_anchor_names_a_heading_on_the_page_it_points_to(document: Path) -> None:
    unknown = []
    for target in relative_links(document):
        if "#" not in target:
            continue
        path, anchor = target.split("#", 1)
        page = (document.parent / path) if path else document
        if page.suffix == ".md" and page.is_file() and anchor not in github_anchors(page.read_text(encoding="utf-8")):
            unknown.append(target)
    assert unknown == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=document_id)
def test_every_repository_path_in_code_exists(document: Path) -> None:
    top_level = top_level_directories()
    spans = _CODE_SPAN.findall(_FENCED_BLOCK.sub("", document.read_text(encoding="utf-8")))
    paths = {span for span in spans if " " not in span and "/" in span and span.split("/", 1)[0] in top_level}
    missing = sorted(path for path in paths if not (REPO_ROOT / path).exists())
    assert [path for path in missing if not git_ignores(path)] == []  # ignored: an output, e.g. build/bench/...


def git_ignores(path: str) -> bool:
    """True for a path .gitignore leaves out: something a command writes, not a file of the repository."""
    return subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", "--quiet", path], check=False).returncode == 0


@pytest.mark.parametrize("document", DOCUMENTS, ids=document_id)
def test_every_make_command_names_a_makefile_target(document: Path) -> None:
    targets = set(_MAKE_TARGET.findall((REPO_ROOT / "Makefile").read_text(encoding="utf-8")))
    named = {target for code in code_of(document.read_text(encoding="utf-8")) for target in _MAKE_COMMAND.findall(code)}
    assert sorted(named - targets) == []


def test_the_readme_opens_with_the_job_and_its_two_commands() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = "\n".join(readme.splitlines()[:25])
    assert "dead-letter queue" in first_screen
    assert "make run" in first_screen
    assert "make test" in first_screen
    headings = _HEADING.findall(_FENCED_BLOCK.sub("", readme))
    assert headings.index("Deploy to AWS") < headings.index("Run a campaign") < headings.index("Reference")


def test_the_anchor_rule_matches_githubs_for_headings_with_code_and_punctuation() -> None:
    page = "# Reply's spec, and what the simulator assumes\n## What `make run` shows\n## Notes\n## Notes\n"
    assert github_anchors(page) == {
        "replys-spec-and-what-the-simulator-assumes",
        "what-make-run-shows",
        "notes",
        "notes-1",
    }
