"""Write docs/compatibility.md: every model through every door and in every mode.

    python scripts/compatibility_table.py            # writes docs/compatibility.md
    python scripts/compatibility_table.py --check    # exit 1 when the page is out of date

The table comes from pix2cycle/compatibility.py (the registries and what each plugin
declares); tests/test_compatibility.py runs its cells.
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pix2cycle.compatibility import markdown_table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare with the page on disk")
    page = REPO / "docs" / "compatibility.md"
    text = markdown_table()
    if parser.parse_args().check:
        same = page.is_file() and page.read_text() == text
        print(f"{page}: {'up to date' if same else 'out of date'}")
        return 0 if same else 1
    page.write_text(text)
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
