"""The syntax of iteration: what runs once per item, and what does not change per item.

Phase 1 asks these questions of the tree while it visits a function:

- which calls iterate without a `for` (`map(load, ids)`, `executor.map(load, ids)`,
  `series.map(load)`) and which start one concurrent task per item
  (`tg.create_task(load(i))`, `executor.submit(load, i)`, `nursery.start_soon(load, i)`);
- which `if` blocks inside a loop run at most once (`if cache is None: cache = load()`)
  or for one literal key (`for key, value in row.items(): if key == "owner": ...`);
- which names a loop rebinds or mutates, so a call that reads none of them is the same
  call on every iteration (hoist it above the loop);
- which loops retry one call or walk data a chunk at a time (by the words of their
  names, or `range(start, stop, step)`), and which `while` loops walk the rows of one
  result by hand (`row = cur.fetchone()`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from scalelint.facts.walk import child_fields
from scalelint.record import record

# Builtins that call their first argument once per item of their second.
ITERATING_BUILTINS = {
    "map": "map()",
    "filter": "filter()",
    "starmap": "starmap()",
    "itertools.starmap": "starmap()",
}
# Executor / pool methods that run a function over an iterable, items in parallel.
POOL_MAPS = {"map", "imap", "imap_unordered", "starmap", "map_async", "starmap_async"}
# Calls that start their coroutine (first argument) as a task and return at once.
TASK_STARTERS = {"create_task", "ensure_future"}
# Calls that start a function (first argument) with the remaining arguments as a task.
FUNCTION_STARTERS = {"submit", "start_soon", "apply_async"}
# Methods that change the object they are called on.
MUTATORS = {
    "append",
    "appendleft",
    "extend",
    "add",
    "update",
    "insert",
    "setdefault",
    "pop",
    "popleft",
    "remove",
    "discard",
    "clear",
    "send",
    "__setitem__",
}
LITERALS = (cst.SimpleString, cst.Integer, cst.Float, cst.ConcatenatedString)
# Words of names of loops that repeat one call until it works, or walk data a chunk at a time.
RETRY_WORDS = {"retry", "retries", "retrying", "attempt", "attempts", "tries"}
CHUNK_WORDS = {"chunk", "chunks", "chunked", "batch", "batches", "batched"}
WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def _words(name: str) -> list[str]:
    """`max_retries` -> [max, retries]; `maxRetries` -> [max, retries]."""
    return [word.lower() for word in WORD.findall(name)]


@record
class Mapped:
    """A call that applies `function` to every item of `iterable`."""

    function: cst.BaseExpression
    iterable: cst.BaseExpression
    kind: str  # "map()", "filter()", "starmap()" or "concurrent fan-out"


def _positional(node: cst.Call) -> list[cst.BaseExpression]:
    return [arg.value for arg in node.args if arg.keyword is None and not arg.star]


def mapped_call(node: cst.Call, func_text: str) -> Mapped | None:
    """`map(load, ids)`, `pool.map(load, ids)`, `series.map(load)`: a loop without `for`."""
    args = _positional(node)
    if func_text in ITERATING_BUILTINS and len(args) >= 2:
        return Mapped(args[0], args[1], ITERATING_BUILTINS[func_text])
    if not isinstance(node.func, cst.Attribute):
        return None
    method = node.func.attr.value
    if method in POOL_MAPS and len(args) >= 2:
        return Mapped(args[0], args[1], "concurrent fan-out")
    # pandas `series.map(load)` / `series.apply(load)`: one call per element of the receiver.
    if method == "map" and len(args) == 1 and len(node.args) == 1 and _is_function(args[0]):
        return Mapped(args[0], node.func.value, "map()")
    return None


def started_function(node: cst.Call) -> cst.BaseExpression | None:
    """`executor.submit(load, i)`, `nursery.start_soon(load, i)`: the function started."""
    if isinstance(node.func, cst.Attribute) and node.func.attr.value in FUNCTION_STARTERS:
        args = _positional(node)
        if args and _is_function(args[0]):
            return args[0]
    return None


def started_coroutine(node: cst.Call, func_text: str) -> cst.BaseExpression | None:
    """`asyncio.create_task(load(i))`, `tg.create_task(load(i))`: the coroutine started."""
    if func_text.rsplit(".", 1)[-1] in TASK_STARTERS:
        args = _positional(node)
        if args:
            return args[0].expression if isinstance(args[0], cst.Await) else args[0]
    return None


def _is_function(node: cst.BaseExpression) -> bool:
    return isinstance(node, (cst.Name, cst.Attribute, cst.Lambda))


# ---- names a loop changes, names a call reads ------------------------------------------


def _children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    for name in child_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, (list, tuple)):
            yield from (item for item in value if isinstance(item, cst.CSTNode))
        elif isinstance(value, cst.CSTNode):
            yield value


def target_names(target: cst.CSTNode) -> Iterator[str]:
    """The names an assignment target binds or changes: `a, b`, `row.total` -> `row`."""
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Attribute, cst.Subscript)):
        yield from target_names(target.value)
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from target_names(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from target_names(target.value)


def changed_names(node: cst.CSTNode, skip: cst.CSTNode | None = None) -> frozenset[str]:
    """Every name bound, rebound or mutated anywhere inside `node` (a loop with its target),
    outside `skip`."""
    names: set[str] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if current is skip:
            continue
        if isinstance(current, (cst.For, cst.CompFor)):
            names.update(target_names(current.target))
        elif isinstance(current, cst.Assign):
            for target in current.targets:
                names.update(target_names(target.target))
        elif isinstance(current, (cst.AugAssign, cst.AnnAssign, cst.NamedExpr)):
            names.update(target_names(current.target))
        elif isinstance(current, cst.AsName):
            names.update(target_names(current.name))
        elif isinstance(current, cst.Param):
            names.add(current.name.value)
        elif isinstance(current, cst.Del):
            names.update(target_names(current.target))
        elif isinstance(current, (cst.FunctionDef, cst.ClassDef)):
            names.add(current.name.value)
        elif (
            isinstance(current, cst.Call)
            and isinstance(current.func, cst.Attribute)
            and current.func.attr.value in MUTATORS
        ):
            names.update(target_names(current.func.value))
        pending.extend(_children(current))
    return frozenset(names)


def read_names(node: cst.CSTNode) -> set[str]:
    """The variable names an expression reads (not attribute or keyword names)."""
    names: set[str] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, cst.Name):
            names.add(current.value)
        elif isinstance(current, (cst.Attribute, cst.Arg)):
            pending.append(current.value)  # not `obj.<name>` nor `f(<name>=...)`
        else:
            pending.extend(_children(current))
    return names


# ---- `if` blocks that do not run once per item -------------------------------------------


def _body_statements(node: cst.If) -> Iterator[cst.BaseSmallStatement]:
    body = node.body
    if isinstance(body, cst.SimpleStatementSuite):
        yield from body.body
        return
    for statement in body.body:
        if isinstance(statement, cst.SimpleStatementLine):
            yield from statement.body


def _text(node: cst.CSTNode) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _text(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def fills_once(node: cst.If) -> str | None:
    """`if cache is None: cache = load()` / `if not self._rows: self._rows = load()`: the
    root name of what the block fills (`cache`, `self`), or None. The block runs once per
    loop only if the loop changes that name nowhere else (the caller checks)."""
    test = node.test
    tested: cst.BaseExpression | None = None
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        tested = test.expression
    elif (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].operator, cst.Is)
        and isinstance(test.comparisons[0].comparator, cst.Name)
        and test.comparisons[0].comparator.value == "None"
    ):
        tested = test.left
    name = _text(tested) if tested is not None else None
    if name is None:
        return None
    for statement in _body_statements(node):
        if isinstance(statement, cst.Assign) and any(_text(t.target) == name for t in statement.targets):
            return name.split(".")[0]
        if isinstance(statement, cst.AnnAssign) and _text(statement.target) == name:
            return name.split(".")[0]
    return None


def _literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, LITERALS):
        return True
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return all(isinstance(element.value, LITERALS) for element in node.elements)
    return False


def dict_keys(node: cst.For) -> frozenset[str]:
    """The name holding each key of a loop over a dict's keys (`for key, value in
    d.items()`, `for key in d.keys()`): keys are unique, so a test against a literal
    passes at most once."""
    it = node.iter
    method = it.func.attr.value if isinstance(it, cst.Call) and isinstance(it.func, cst.Attribute) else ""
    if method not in ("items", "keys"):
        return frozenset()
    target: cst.BaseExpression = node.target
    if method == "items" and isinstance(target, (cst.Tuple, cst.List)) and target.elements:
        target = target.elements[0].value
    return frozenset({target.value}) if isinstance(target, cst.Name) else frozenset()


def literal_guard(node: cst.If, targets: frozenset[str]) -> bool:
    """`if key == "owner":` / `if field in ("a", "b"):` on a dict loop's key: the block
    runs for a fixed handful of items, not for each."""
    test = node.test
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    comparison = test.comparisons[0]
    if not isinstance(comparison.operator, (cst.Equal, cst.In)):
        return False
    left, right = test.left, comparison.comparator
    if isinstance(left, cst.Name) and left.value in targets:
        return _literal(right)
    return (
        isinstance(comparison.operator, cst.Equal)
        and isinstance(right, cst.Name)
        and right.value in targets
        and _literal(left)
    )


def retries_or_chunks(iterable: cst.BaseExpression, target: cst.BaseExpression | None) -> bool:
    """`for attempt in range(max_retries)`, `for i in range(0, len(ids), 500)`, `for batch in
    chunked(ids, 500)`: a retry loop around one call, or one call per chunk of rows (the
    batched form of the fix), not a call per row."""
    if not isinstance(iterable, cst.Call):
        # `for id_chunk in ids_chunks`: chunks made earlier, named so on both sides.
        # (`for attempt in attempts` is rows like any other.)
        held = _text(iterable)
        named = [_words(name) for name in target_names(target)] if target is not None else []
        return bool(
            held
            and _words(held)
            and _words(held)[-1] in CHUNK_WORDS
            and any(w and w[-1] in CHUNK_WORDS for w in named)
        )
    func = iterable.func.attr.value if isinstance(iterable.func, cst.Attribute) else _text(iterable.func)
    args = _positional(iterable)
    for name in target_names(target) if target is not None else ():
        words = _words(name)
        # `for attempt in range(n)`, `for retry_no in count()`; `for chunk in split(ids)`,
        # `for ids_batch in pages(ids)` (but not `batch_job`: one job).
        if RETRY_WORDS.intersection(words) or (words and words[-1] in CHUNK_WORDS):
            return True
    if func == "range" and any(RETRY_WORDS.intersection(_words(name)) for name in read_names(iterable)):
        return True  # `range(max_retries)`
    if func == "range" and len(args) == 3:
        step = args[2]
        return not isinstance(step, cst.UnaryOperation) and not (
            isinstance(step, cst.Integer) and step.value == "1"
        )
    return func is not None and bool(CHUNK_WORDS.intersection(_words(func)))


ROW_FETCHES = {"fetchone"}  # `fetchmany(n)` walks a result a batch at a time: the fix
RUNS = {"execute", "executemany", "fetch", "fetchrow", "fetchval"}


def fetched_rows(node: cst.While) -> str | None:
    """`row = cur.fetchone()` / `while (row := cur.fetchone()) is not None:` on a cursor that the
    loop does not execute again: the loop walks the rows of one result, like a `for`
    (unlike a polling loop that runs its query anew each turn). The fetch, as text."""
    fetches: dict[str, str] = {}
    executed: set[str] = set()
    pending: list[cst.CSTNode] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, cst.Call) and isinstance(current.func, cst.Attribute):
            receiver = _text(current.func.value)
            method = current.func.attr.value
            if receiver is not None and method in ROW_FETCHES:
                fetches.setdefault(receiver, f"{receiver}.{method}()")
            elif receiver is not None and method in RUNS:
                executed.add(receiver)
        pending.extend(_children(current))
    walked = [text for receiver, text in fetches.items() if receiver not in executed]
    return walked[0] if walked else None
