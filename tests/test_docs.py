"""The README is a front door and docs/ the manual: nothing undocumented, no dead link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from digest.cli import cli
from digest.config import ENV_SETTINGS, TOML_SETTINGS

from .conftest import all_commands

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(page: Path) -> str:
    """The page without its code blocks (a ``#`` there is no heading, a link no link)."""
    return re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", prose(page), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_the_readme_is_a_front_door_not_a_manual() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for section in ("## Quick start", "## From the demo to your lab", "## Commands"):
        assert section in readme
    assert "make demo" in readme and "digest serve" in readme and "digest admin add" in readme


@pytest.mark.parametrize("command", all_commands(cli)[1:], ids=" ".join)
def test_every_command_is_in_the_readme(command: tuple[str, ...]) -> None:
    table = (ROOT / "README.md").read_text().split("## Commands", 1)[1]
    assert f"`digest {' '.join(command)}" in table


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    tables = dict(re.findall(r"^### `\[(\w+)\]`\n(.*?)(?=^#|\Z)", reference, flags=re.M | re.S))
    missing = [
        f"[{setting.table}] {setting.key}"
        for setting in TOML_SETTINGS
        if f"| `{setting.key}` |" not in tables.get(setting.table, "")
    ]
    missing += [var.name for var in ENV_SETTINGS if f"`{var.name}`" not in reference]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_leads_to_a_page_and_heading_that_exist(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # a web address or a mailto: not ours to check offline
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and anchor not in anchors(linked):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_module_a_page_names_exists(page: Path) -> None:
    named = re.findall(r"`((?:digest|tests|bench|tools)/[\w/]+\.py)`", page.read_text())
    assert [path for path in named if not (ROOT / path).exists()] == []
