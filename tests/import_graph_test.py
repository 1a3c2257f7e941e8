"""The floors of the package, from its source: every import of a msta_jax module, read with `ast`.

Counted: module-level and function-level `import msta_jax.x` / `from msta_jax.x import y` (y a module
or a name in x), `from msta_jax import x`, relative imports, and `importlib.import_module('msta_jax...')`
with a literal name. Docstrings and comments are not code and do not count.

Floors: models/ and data/ on the ground (neither imports the other, nor train/, tools/, main or
predict); train/ above them; main, predict and tools/ on top. Modules directly under msta_jax/ other than
main and predict are the basement: they import nothing of the package. No cycles between modules.
"""
from __future__ import annotations

import ast
import os
import textwrap

import pytest

PACKAGE = 'msta_jax'
ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE)
TOP = ('msta_jax.main', 'msta_jax.predict', 'msta_jax.tools')
# What each floor must not import (prefixes of module names).
FORBIDDEN = {
    'msta_jax.models': TOP + ('msta_jax.train', 'msta_jax.data'),
    'msta_jax.data': TOP + ('msta_jax.train', 'msta_jax.models'),
    'msta_jax.train': TOP,
}


def module_name(path: str) -> str:
  rel = os.path.relpath(path, os.path.dirname(ROOT))[:-len('.py')].split(os.sep)
  return '.'.join(rel[:-1] if rel[-1] == '__init__' else rel)


def package_modules() -> dict[str, str]:
  """{module name: source} of every .py file of the package."""
  out = {}
  for folder, _, files in os.walk(ROOT):
    for f in sorted(files):
      if f.endswith('.py'):
        path = os.path.join(folder, f)
        with open(path, encoding='utf-8') as fh:
          out[module_name(path)] = fh.read()
  return out


def _resolve(name: str, known: set[str]) -> str | None:
  """The longest known module that `name` is or lies in (a name imported from a module counts as the
  module)."""
  while name:
    if name in known:
      return name
    name = name.rpartition('.')[0]
  return None


def imports_of(module: str, source: str, known: set[str]) -> set[str]:
  """Every msta_jax module `module` imports, wherever in the code the import stands.

  `from P import y` imports module P.y when that is a module, else P (y is a name of P); `import a.b`
  imports a.b (its parents are only the path to it, as in any import graph).
  """
  is_package = any(m.startswith(module + '.') for m in known)
  package = module if is_package else module.rpartition('.')[0]
  targets = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      targets += [_resolve(a.name, known) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')[:len(package.split('.')) - node.level + 1]
        base = '.'.join(parts + ([base] if base else []))
      targets += [f'{base}.{a.name}' if f'{base}.{a.name}' in known else _resolve(base, known) for a in node.names]
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'import_module'
          and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
      targets.append(_resolve(node.args[0].value, known))
  return {t for t in targets if t is not None and t != module}


def graph() -> dict[str, set[str]]:
  modules = package_modules()
  known = set(modules)
  return {m: imports_of(m, src, known) for m, src in modules.items()}


def _floor_violations(edges: dict[str, set[str]]) -> list[str]:
  packages = {m.rpartition('.')[0] for m in edges}
  basement = {m for m in edges if m.count('.') == 1 and m not in packages and m not in TOP}
  out = []
  for module, targets in edges.items():
    for floor, forbidden in FORBIDDEN.items():
      if module == floor or module.startswith(floor + '.'):
        out += [f'{module} imports {t}' for t in targets if any(t == f or t.startswith(f + '.') for f in forbidden)]
    if module in basement:
      out += [f'{module} (basement) imports {t}' for t in targets]
  return sorted(out)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v: str) -> None:
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(edges.get(v, ())):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(edges):
    if v not in index:
      visit(v)
  return out


def test_the_reader_sees_every_form_of_import():
  known = {'msta_jax', 'msta_jax.models', 'msta_jax.models.clip', 'msta_jax.data', 'msta_jax.data.decode',
           'msta_jax.train', 'msta_jax.train.step', 'msta_jax.tools', 'msta_jax.tools.cli', 'msta_jax.files'}
  source = textwrap.dedent('''
      """from msta_jax.tools import cli (a docstring: not an import)"""
      import importlib
      from msta_jax import models
      import msta_jax.files

      def f():
        from msta_jax.train import step
        return importlib.import_module('msta_jax.tools.cli')

      def g():
        from .decode import read_video
  ''')
  assert imports_of('msta_jax.data.x', source, known) == {
      'msta_jax.models', 'msta_jax.files', 'msta_jax.train.step', 'msta_jax.tools.cli', 'msta_jax.data.decode'}


def test_the_checks_catch_an_upward_import_and_a_cycle():
  edges = {'msta_jax.data.a': {'msta_jax.train.b'}, 'msta_jax.train.b': {'msta_jax.data.a'},
           'msta_jax.models.c': {'msta_jax.data.a'}, 'msta_jax.files': {'msta_jax.models.c'},
           'msta_jax.models': set(), 'msta_jax.data': set(), 'msta_jax.train': set()}
  assert _floor_violations(edges) == ['msta_jax.data.a imports msta_jax.train.b',
                                      'msta_jax.files (basement) imports msta_jax.models.c',
                                      'msta_jax.models.c imports msta_jax.data.a']
  assert _cycles(edges) == [['msta_jax.data.a', 'msta_jax.train.b']]


def test_the_package_is_read():
  edges = graph()
  assert len(edges) > 40 and 'msta_jax.models.registry' in edges['msta_jax.models.loading']
  assert 'msta_jax.train.trainer' in edges['msta_jax.main']


@pytest.mark.parametrize('floor', sorted(FORBIDDEN))
def test_lower_floors_never_reach_up(floor):
  violations = [v for v in _floor_violations(graph()) if v.startswith(floor + '.') or v.startswith(floor + ' ')]
  assert violations == []


def test_basement_modules_import_nothing_of_the_package():
  assert [v for v in _floor_violations(graph()) if '(basement)' in v] == []


def test_no_import_cycles():
  assert _cycles(graph()) == []
