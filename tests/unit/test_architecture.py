"""docs/architecture.md's package table is the code's: regenerated from each package's
docstring, it must equal the committed one, and no package goes without a summary line."""

from __future__ import annotations

from pathlib import Path

from tests.support import package_table


def test_the_committed_table_is_the_generated_one() -> None:
    assert package_table.committed() == package_table.table(), (
        "docs/architecture.md's package table is out of date: run `make docs-table`"
    )


def test_every_package_says_what_it_holds() -> None:
    rows = package_table.rows()
    assert {"services/", "services/signin/", "web/", "card/piv/"} <= {name for name, _ in rows}
    assert [name for name, line in rows if not line or line.endswith(" layer.")] == []


def test_a_new_package_or_a_new_summary_changes_the_table(tmp_path: Path) -> None:
    source = tmp_path / "cardvault"
    (source / "services" / "billing").mkdir(parents=True)
    (source / "services" / "__init__.py").write_text('"""Capabilities.\n\nMore."""\n')
    (source / "services" / "billing" / "__init__.py").write_text("# no docstring\n")
    (source / "config.py").write_text('"""Settings: ``CARDVAULT_*`` | env."""\n')
    (source / "__init__.py").write_text('"""The root is not a row."""\n')
    document = tmp_path / "architecture.md"
    document.write_text(f"# Title\n\n{package_table.BEGIN}\nstale\n{package_table.END}\nafter\n")

    assert package_table.rows(source) == [
        ("config.py", "Settings: `CARDVAULT_*` \\| env."),
        ("services/", "Capabilities."),
        ("services/billing/", ""),
    ]
    assert package_table.write(document, source)
    assert "| `services/billing/` | **no docstring** |" in document.read_text()
    assert document.read_text().endswith(f"{package_table.END}\nafter\n")
    assert not package_table.write(document, source)
