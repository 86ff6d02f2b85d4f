"""Every kubectl command the docs and examples show names Fabrics unambiguously (`fabrics`, `fabrics.inventorysync.dev`): with Hedgehog installed, `fabric` is its category and `fab` its Fabricator."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "examples").rglob("*.yaml")),
    REPO / "helm" / "inventory-sync-operator" / "README.md",
    REPO / "helm" / "inventory-sync-operator" / "templates" / "NOTES.txt",
    REPO / "tools" / "controlplane" / "localcluster.py",
]
# A resource argument that kubectl would resolve through Hedgehog's category or short name.
AMBIGUOUS = re.compile(r"(?:^|,)(?:fabric|fab)(?:$|,|/)")


def commands(path: Path) -> list[str]:
    """kubectl command lines: fenced code blocks of Markdown, any line elsewhere."""
    text = path.read_text()
    if path.suffix == ".md":
        text = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL))
    return [line.strip() for line in text.splitlines() if re.search(r"\bkubectl\s+\w", line)]


def ambiguous_arguments(line: str) -> list[str]:
    words = line.split("kubectl", 1)[1].split()
    return [w for w in words[1:] if not w.startswith("-") and AMBIGUOUS.search(w)]


def test_no_documented_kubectl_command_names_fabrics_ambiguously() -> None:
    found = {
        f"{path.relative_to(REPO)}: {line}"
        for path in SOURCES
        if path.is_file()
        for line in commands(path)
        if ambiguous_arguments(line)
    }
    assert found == set()


def test_the_check_bites() -> None:
    assert ambiguous_arguments("kubectl get fabric dc1 -n ops") == ["fabric"]
    assert ambiguous_arguments("kubectl describe fab/dc1") == ["fab/dc1"]
    assert ambiguous_arguments("kubectl get syncschedules,fabric") == ["syncschedules,fabric"]
    assert ambiguous_arguments("kubectl get syncschedules,fabrics -o wide") == []
    assert (
        ambiguous_arguments("kubectl wait fabrics.inventorysync.dev/dc1 --for=condition=Ready")
        == []
    )
    assert ambiguous_arguments("kubectl apply -f examples/fabric.yaml") == []
