"""The documentation cannot drift from the code: the README's code map matches the tree, and every
command line in README.md and docs/*.md names a command that exists and flags it defines."""

import glob
import json
import os
import re
import subprocess
import sys
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "cmri2spec_tf")
DOCS = [os.path.join(REPO, "README.md"), *sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))]


def _code_map() -> set[str]:
  """Module paths (`data/sources.py`) listed in the README's code map table."""
  text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
  table = text.split("## Code map", 1)[1].split("\n## ", 1)[0]
  listed, package = set(), None
  for row in table.splitlines():
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    if len(cells) != 3 or not row.startswith("|") or cells[1].startswith("-"):
      continue
    if cells[0].startswith("`"):
      package = cells[0].split("`")[1]
    if cells[1].startswith("`") and package:
      listed.add(package + cells[1].strip("`"))
  return listed


def test_readme_fits_on_a_few_screens():
  assert len(open(os.path.join(REPO, "README.md")).read().splitlines()) <= 250


def test_code_map_lists_every_module_of_every_subpackage_and_nothing_else():
  tree = {os.path.relpath(p, PACKAGE) for p in glob.glob(os.path.join(PACKAGE, "*", "*.py"))
          if not p.endswith("__init__.py")}
  listed = _code_map()
  assert len(listed) > 30
  assert listed - tree == set(), f"listed but missing: {sorted(listed - tree)}"
  assert tree - listed == set(), f"in the tree but not in the code map: {sorted(tree - listed)}"


def _commands() -> dict[str, str]:
  """Command name -> module, from the console scripts (cmri2spec-check-data -> check_data)."""
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    scripts = tomllib.load(f)["project"]["scripts"]
  return {target.split(":")[0].split(".")[-1]: target.split(":")[0] for target in scripts.values()}


def _command_lines():
  """(file, line number, command, [flags]) for every command line in the docs: a line (with its
  backslash continuations) holding `python -m cmri2spec_tf.NAME` or `cmri2spec-NAME`; the flags
  are the --names after it, up to the next command on the line."""
  pattern = re.compile(r"(?:python -m cmri2spec_tf\.([a-z_]+)|\bcmri2spec-([a-z-]+))")
  for path in DOCS:
    lines = open(path, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
      start, text = i, lines[i]
      while text.rstrip().endswith("\\") and i + 1 < len(lines):
        i += 1
        text = text.rstrip()[:-1] + " " + lines[i]
      matches = list(pattern.finditer(text))
      for k, match in enumerate(matches):
        name = (match.group(1) or match.group(2).replace("-", "_"))
        end = matches[k + 1].start() if k + 1 < len(matches) else len(text)
        flags = re.findall(r"(?<![\w-])--([a-z][a-z0-9_]*)", text[match.end():end])
        yield os.path.relpath(path, REPO), start + 1, name, flags
      i += 1


def _defined_flags(modules) -> dict[str, set[str]]:
  """Each command module's flags (its define_flags() plus absl's own), read in one process."""
  script = (
      "import importlib, json, sys\n"
      "from absl import flags\n"
      "FLAGS = flags.FLAGS\n"
      "out = {}\n"
      "for module in sys.argv[1:]:\n"
      "  before = set(FLAGS)\n"
      "  importlib.import_module(module).define_flags()\n"
      "  out[module] = sorted(set(FLAGS))\n"
      "  for name in set(FLAGS) - before:\n"
      "    delattr(FLAGS, name)\n"
      "print(json.dumps(out))\n")
  result = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
  assert result.returncode == 0, result.stderr[-3000:]
  return {m: set(v) for m, v in json.loads(result.stdout.strip().splitlines()[-1]).items()}


def test_every_documented_command_line_names_a_command_and_its_flags():
  commands = _commands()
  lines = list(_command_lines())
  assert len(lines) > 20
  unknown = [f"{f}:{n}: no command {c!r}" for f, n, c, _ in lines if c not in commands]
  assert not unknown, "\n".join(unknown)
  defined = _defined_flags(sorted(set(commands.values())))
  wrong = []
  for path, number, command, names in lines:
    known = defined[commands[command]] | {"flagfile"}
    for name in names:
      if name not in known and not (name.startswith("no") and name[2:] in known):
        wrong.append(f"{path}:{number}: {command} has no flag --{name}")
  assert not wrong, "\n".join(wrong)
