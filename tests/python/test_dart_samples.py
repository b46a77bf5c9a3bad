"""scripts/check-dart-samples.py, the syntax check of the docs' Dart samples, on
samples of its own: it must pass good Dart 3 and point at the line of bad Dart.

It needs the grammar (`pip install -r docs/check/requirements.txt`) and is
skipped without it; CI installs it and also runs the script on the docs.
"""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("tree_sitter_dart")

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_dart_samples", ROOT / "scripts" / "check-dart-samples.py")
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)

GOOD = """
final class MontyWireBuffer extends Struct {
  external Pointer<Uint8> data;

  @Size()
  external int len;
}

Object? first(List<Object?> built, ListReader<int> items) => switch (items.length) {
  0 => null,
  _ => built[items.first],
};
"""

BAD = """
T send<T>(int session, Uint8List request) {
  final bytes = ;
  return read(bytes);
}
"""


def test_good_dart_passes_and_bad_dart_fails_at_its_line(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\n```dart\n{GOOD}```\n\nText.\n\n```dart\n{BAD}```\n", encoding="utf-8")
    assert check.main([str(doc)]) == 1
    out = capsys.readouterr().out
    bad_line = doc.read_text().splitlines().index("  final bytes = ;") + 1
    assert f"{doc}:{bad_line}:" in out
    assert "1 passed, 1 failed" in out


def test_a_file_without_dart_blocks_is_an_error(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("```js\nlet x = 1;\n```\n", encoding="utf-8")
    assert check.main([str(doc)]) == 1
