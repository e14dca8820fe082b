"""The package's layout by concept: commands on top, one subpackage per concept, layers going down.

Read from the code (ast), so that the rule cannot drift: the top holds only the commands,
`__init__` and `cli`; every subpackage's `__init__` docstring names its floor ("Floor N") and the
subpackages it may import; an import runs only to a lower floor (or within a subpackage); nothing
below the top imports a command or `cli`; no module-level circle anywhere.
"""

import ast
import os
import re
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "cmri2spec_tf")


def _modules() -> dict[str, str]:
  """Dotted module name -> file, for every module of the package."""
  found = {}
  for folder, dirs, files in os.walk(PACKAGE):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    for name in files:
      if name.endswith(".py"):
        rel = os.path.relpath(os.path.join(folder, name), REPO)[:-3].replace(os.sep, ".")
        found[rel.removesuffix(".__init__")] = os.path.join(folder, name)
  return found


def _imports(path: str, modules) -> set[str]:
  """The package modules a file imports (anywhere in it, function bodies included)."""
  tree, out = ast.parse(open(path, encoding="utf-8").read()), set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cmri2spec_tf"):
      for alias in node.names:
        full = f"{node.module}.{alias.name}"
        out.add(full if full in modules else node.module)
    elif isinstance(node, ast.Import):
      out |= {a.name for a in node.names if a.name in modules and a.name != "cmri2spec_tf"}
  return out


def _commands() -> set[str]:
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    scripts = tomllib.load(f)["project"]["scripts"]
  return {target.split(":")[0] for target in scripts.values()}


def _subpackages() -> dict[str, int]:
  """Subpackage -> its floor, read from its __init__ docstring."""
  floors = {}
  for name in sorted(os.listdir(PACKAGE)):
    init = os.path.join(PACKAGE, name, "__init__.py")
    if os.path.isfile(init):
      doc = ast.get_docstring(ast.parse(open(init, encoding="utf-8").read())) or ""
      match = re.match(r"Floor (\d+)", doc)
      assert match, f"{name}/__init__.py: its docstring must start with 'Floor N'"
      assert 2 <= len(doc.splitlines()) <= 5, f"{name}/__init__.py: 2-5 lines of docstring"
      assert "May import" in doc or "may import" in doc, name
      floors[name] = int(match.group(1))
  return floors


def test_top_holds_only_commands_init_and_cli():
  top = {m for m, path in _modules().items()
         if os.path.dirname(path) == PACKAGE and m != "cmri2spec_tf"}
  assert top - _commands() == {"cmri2spec_tf.cli"}, top - _commands()
  assert _commands() <= top


def test_imports_run_down_the_floors_and_never_reach_a_command():
  modules, floors, commands = _modules(), _subpackages(), _commands()
  wrong = []
  for module, path in modules.items():
    if os.path.dirname(path) == PACKAGE:
      continue  # the top: commands, cli, __init__
    parts = module.split(".")
    here = parts[1]
    for target in _imports(path, modules):
      there = target.split(".")
      if target in commands or target == "cmri2spec_tf.cli" or len(there) < 2:
        wrong.append(f"{module} imports the top ({target})")
      elif there[1] != here and floors[there[1]] >= floors[here]:
        wrong.append(f"{module} (floor {floors[here]}) imports {target} "
                     f"(floor {floors[there[1]]})")
  assert not wrong, "\n".join(wrong)


def test_docstrings_name_what_each_subpackage_may_import():
  floors = _subpackages()
  for name, floor in floors.items():
    doc = ast.get_docstring(ast.parse(open(os.path.join(PACKAGE, name, "__init__.py")).read()))
    allowed = set(re.findall(r"[a-z_]+", doc.split("ay import", 1)[1])) & set(floors)
    assert allowed == {n for n, f in floors.items() if f < floor}, (name, allowed)


def test_no_circle_between_modules():
  modules = _modules()
  graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
  state = {}

  def visit(node, trail):
    if state.get(node) == "done":
      return
    assert state.get(node) != "open", "circle: " + " -> ".join(trail + [node])
    state[node] = "open"
    for nxt in graph.get(node, ()):
      if nxt != "cmri2spec_tf":
        visit(nxt, trail + [node])
    state[node] = "done"

  for module in graph:
    visit(module, [])
