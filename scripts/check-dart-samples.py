#!/usr/bin/env python3
"""Syntax check of the Dart samples in the documentation.

No Dart SDK runs on this project's machines, so the Dart code a reader copies from
docs/dart.md and the README is parsed here with the tree-sitter Dart grammar
(PyPI `tree-sitter-dart`, see docs/check/requirements.txt). Every ```dart block is
parsed on its own; an ERROR or MISSING node anywhere fails the check with its line.
This proves syntax only: names, types and imports are not checked.

    pip install -r docs/check/requirements.txt
    python scripts/check-dart-samples.py [FILE.md ...]
"""

import re
import sys
from pathlib import Path

import tree_sitter
import tree_sitter_dart

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = ["README.md", "docs/dart.md", "docs/migrating.md"]
FENCE = re.compile(r"^```dart[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def dart_blocks(path):
    """Yields (first line number in the file, source) of every ```dart block."""
    text = path.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        yield text.count("\n", 0, match.start(1)) + 1, match.group(1)


def syntax_errors(parser, source):
    """(line, column, kind, text) of every ERROR or MISSING node, 1-based."""
    data = source.encode("utf-8")
    errors = []
    stack = [parser.parse(data).root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            text = data[node.start_byte : node.end_byte].decode("utf-8", "replace")
            kind = f"missing {node.type}" if node.is_missing else "unexpected"
            errors.append((node.start_point[0] + 1, node.start_point[1] + 1, kind, text[:60]))
        elif node.has_error:
            stack.extend(node.children)
    return sorted(errors)


def main(argv):
    files = [Path(name) for name in argv] or [ROOT / name for name in DEFAULT_FILES]
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_dart.language()))
    passed = failed = 0
    for path in files:
        if not path.exists():
            continue
        for first_line, source in dart_blocks(path):
            errors = syntax_errors(parser, source)
            if errors:
                failed += 1
                for line, column, kind, text in errors:
                    print(f"{path}:{first_line + line - 1}:{column}: {kind} {text!r}")
            else:
                passed += 1
    if passed + failed == 0:
        print("no ```dart blocks found")
        return 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
