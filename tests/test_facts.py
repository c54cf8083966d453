"""Phase 1 facts: positions, loops, values, SQL, suppressions."""

from __future__ import annotations

import textwrap

import libcst as cst

from scalelint.facts import sql, sql_text
from scalelint.facts.formatted import FormattedText
from scalelint.facts.model import Attr, CallResult, DictLiteral, Global, Imported, Instance, Opaque, Sequence
from scalelint.facts.positions import MetadataPositions
from scalelint.facts.python import HOLE, FactsVisitor, python_facts
from scalelint.facts.suppressions import is_suppressed, python_suppressions, sql_suppressions


def facts(code: str):
    return python_facts("m.py", textwrap.dedent(code))


def calls_of(code: str, function: str):
    fn = next(f for f in facts(code).functions if f.qualname == function)
    return {c.text: c for c in fn.calls}


def test_positions_are_one_based_and_character_columns() -> None:
    code = 'def f():\n    x = "é"; g(1)\n'
    call = calls_of(code, "f")["g(1)"]
    assert (call.span.line, call.span.column, call.span.end_column) == (2, 14, 18)


def test_ast_positions_agree_with_libcst_metadata() -> None:
    code = textwrap.dedent(
        """
        @app.get("/x")
        async def handler(a=b(), *c):
            [d(i) for i in e(f(g))]
            async for row in h():
                await k(row).m(n=o(p))
            return {q(): r(s) for s in t()}
        class C(Base(u())):
            def v(self): return self.w(x(f"{y()}"))
        """
    )
    module = cst.parse_module(code)
    fast = python_facts("m.py", code)
    visitor = FactsVisitor(MetadataPositions(module), "postgres")
    module.visit(visitor)
    slow = [c.span for f in visitor.functions for c in f.calls] + [c.span for c in visitor.module.calls]
    quick = [c.span for f in fast.functions for c in f.calls] + [c.span for c in fast.module_calls]
    assert quick == slow
    assert len(quick) >= 15


def test_chain_steps_and_slices_know_where_they_are_written_with_either_position_source() -> None:
    code = textwrap.dedent(
        """
        def page(db, offset, rows):
            q = (
                db.query(Order)
                .filter(Order.user_id == 1)
                .offset(offset)
            )
            window = rows.filter(x=1) [offset : offset + 50]
            return q, window
        """
    )
    module = cst.parse_module(code)
    visitor = FactsVisitor(MetadataPositions(module), "postgres")
    module.visit(visitor)
    for fn in (python_facts("m.py", code).functions[0], visitor.functions[0]):
        steps = {c.callee.attr: c.method_span for c in fn.calls if isinstance(c.callee, Attr)}
        # A chained call's own span starts with its chain; its method name is where it is written.
        assert (steps["offset"].line, steps["offset"].column, steps["offset"].end_column) == (6, 10, 16)
        assert (steps["query"].line, steps["query"].column) == (4, 12)
        [(sliced, where)] = fn.slices
        assert sliced.upper is not None and sliced.lower is not None
        assert (where.line, where.column) == (8, 31)  # the `[`, after the space


def test_loop_context_excludes_the_iterable_and_marks_small_loops() -> None:
    code = """
    def f(rows):
        for row in load(rows):
            use(row)
        for attempt in range(3):
            retry()
        return [item(x) for x in source()]
    """
    calls = calls_of(code, "f")
    assert calls["load(rows)"].loops == ()
    assert [loop.line for loop in calls["use(row)"].loops] == [3]
    assert calls["retry()"].loops[0].bounded
    assert calls["source()"].loops == ()
    assert calls["item(x)"].loops[0].kind == "comprehension"


def test_values_follow_imports_locals_and_self() -> None:
    code = """
    import psycopg2 as pg
    from .repo import fetch

    class Repo:
        def run(self, conn: pg.extensions.connection):
            cur = conn.cursor()
            cur.execute("SELECT 1 FROM t")
            self.helper()
            fetch()
    """
    calls = calls_of(code, "Repo.run")
    conn = Instance(Imported("psycopg2.extensions.connection"))
    assert calls['cur.execute("SELECT 1 FROM t")'.replace('"SELECT 1 FROM t"', "...")].callee == Attr(
        CallResult(Attr(conn, "cursor")), "execute"
    )
    assert calls["self.helper()"].callee == Attr(Instance(Global("Repo")), "helper")
    assert calls["fetch()"].callee == Imported(".repo.fetch")


def test_sql_arguments_are_parsed_into_statements() -> None:
    code = """
    QUERY = "SELECT id FROM orders WHERE customer_id = %s ORDER BY id LIMIT 10"

    def f(cur, table):
        cur.execute(QUERY)
        cur.execute(f"UPDATE {table} SET seen = true WHERE id = %s")
    """
    fn = facts(code).functions[0]
    first, second = fn.calls
    assert first.sql[0].kind == "select" and first.sql[0].has_limit
    assert first.sql[0].tables == ("orders",)
    assert first.sql[0].filter_columns == ("customer_id",)
    assert second.sql[0].kind == "update"


def test_global_assignment_is_recorded_as_stored_globally() -> None:
    code = """
    _engine = None
    def engine():
        global _engine
        _engine = create_engine("postgresql://")
        local = create_engine("postgresql://")
    """
    first, second = facts(code).functions[0].calls
    assert first.stored_globally and not second.stored_globally


def test_sql_helpers() -> None:
    assert sql_text.looks_like_sql("select * from t")
    assert not sql_text.looks_like_sql("Update your profile")
    assert sql.analyse("SELEC nonsense (((") is None
    statements, failed = sql.analyse_file("CREATE TABLE t (id int);\n\nSELECT * FROM t;\nNOT SQL AT ALL;\n")
    assert [(s.kind, s.line) for s in statements] == [("ddl", 1), ("select", 3)]
    assert failed == 1


def test_suppression_comments() -> None:
    source = "a()  # noqa\nb()  # noqa: SL601, E501\nc()  # scalelint: ignore[SL1]\nd()  # noqa:E501\n"
    found = dict(python_suppressions(source))
    assert found[1] == frozenset()
    assert found[2] == {"SL601", "E501"}
    assert is_suppressed("SL101", found[3]) and not is_suppressed("SL601", found[3])
    assert not is_suppressed("SL601", found[4])
    assert dict(sql_suppressions("SELECT 1; -- noqa: SL301\n"))[1] == {"SL301"}


def test_syntax_error_becomes_a_parse_error_fact() -> None:
    result = python_facts("bad.py", "def f(:\n    pass\n")
    assert result.parse_error is not None
    assert result.functions == ()


def test_attribute_reads_of_loop_rows_get_positions_without_the_metadata_fallback(monkeypatch) -> None:
    code = textwrap.dedent(
        """
        import os.path
        from django.db import models

        def view(request):
            for order in Order.objects.all():
                print(os.path.join("a", order.customer.name))
        """
    )

    def no_fallback(self, module):
        raise AssertionError("positions fell back to libcst metadata")

    monkeypatch.setattr("scalelint.facts.python.MetadataPositions.__init__", no_fallback)
    (read,) = next(f for f in python_facts("m.py", code).functions if f.qualname == "view").item_reads
    assert (read.name, read.attr) == ("order", "customer")
    assert (read.span.line, read.span.column, read.span.end_column) == (7, 33, 47)


def test_calls_that_read_nothing_the_loop_changes_are_hoistable() -> None:
    code = """
    def f(rows, cur):
        params = []
        for row in rows:
            cur.execute(COUNT_SQL)
            cur.execute(row.sql)
            total = g(params)
            params.append(total)
            k(settings)
    """
    calls = calls_of(code, "f")
    assert calls["cur.execute(COUNT_SQL)"].hoistable
    assert calls["k(settings)"].hoistable
    assert not calls["cur.execute(row.sql)"].hoistable  # reads the row
    assert not calls["g(params)"].hoistable  # params is appended to in the loop
    assert not calls["params.append(total)"].hoistable


def test_map_submit_and_task_starts_are_loops() -> None:
    code = """
    async def f(ids, tg, pool):
        a = list(map(load, ids))
        b = [pool.submit(load, i) for i in ids]
        c = map(lambda i: fetch(i), ids)
        for i in ids:
            tg.create_task(fetch(i))
    """
    fn = next(f for f in facts(code).functions if f.qualname == "f")
    by_callee = {}
    for call in fn.calls:
        by_callee.setdefault(call.text, []).append(call)
    mapped = [c for c in by_callee["map(load, ids)"] if c.loops]
    assert [loop.kind for loop in mapped[0].loops] == ["map()"]
    assert isinstance(mapped[0].callee, Global) and mapped[0].callee.name == "load"
    submitted = [c for c in by_callee["pool.submit(load, i)"] if isinstance(c.callee, Global)]
    assert [loop.kind for loop in submitted[0].loops] == ["concurrent fan-out"]
    assert [loop.kind for loop in by_callee["fetch(i)"][0].loops] == ["map()"]
    assert [loop.kind for loop in by_callee["fetch(i)"][1].loops] == ["concurrent fan-out"]


def test_blocks_that_run_once_or_for_one_key_leave_the_loop() -> None:
    code = """
    def f(rows, payload):
        cache = None
        for row in rows:
            if cache is None:
                cache = load()
            if row.kind == "x":
                per_row()
        for key, value in payload.items():
            if key == "owner":
                owner(value)
            elif key in ("a", "b"):
                pair(value)
            else:
                other(value)
    """
    calls = calls_of(code, "f")
    assert calls["load()"].loops == ()
    assert calls["per_row()"].per_item_loop is not None  # a field of the row, not the loop target
    assert calls["owner(value)"].per_item_loop is None
    assert calls["pair(value)"].per_item_loop is None
    assert calls["other(value)"].per_item_loop is not None


def test_loops_over_configuration_are_bounded() -> None:
    code = """
    def f():
        for name in settings.INSTALLED_APPS:
            a(name)
        for code, rate in CURRENCIES.items():
            b(code)
        for user in users:
            c(user)
    """
    calls = calls_of(code, "f")
    assert calls["a(name)"].per_item_loop is None
    assert calls["b(code)"].per_item_loop is None
    assert calls["c(user)"].per_item_loop is not None


def test_retry_and_chunk_loops_are_bounded_by_their_names_not_by_lookalikes() -> None:
    code = """
    def f(entries, batch_jobs, ids, max_retries):
        for entry in entries:
            a(entry)
        for job in batch_jobs:
            b(job)
        for batch_job in batch_jobs:
            c(batch_job)
        for attempt in range(max_retries):
            d()
        for ids_chunk in split(ids):
            e(ids_chunk)
        for group in chunked(ids, 100):
            g(group)
    """
    calls = calls_of(code, "f")
    assert calls["a(entry)"].per_item_loop is not None  # "entries" ends like "tries"
    assert calls["b(job)"].per_item_loop is not None
    assert calls["c(batch_job)"].per_item_loop is not None
    assert calls["d()"].per_item_loop is None
    assert calls["e(ids_chunk)"].per_item_loop is None
    assert calls["g(group)"].per_item_loop is None


def test_a_joined_list_of_parts_is_a_formatted_string_with_its_holes() -> None:
    code = """
    def key(uid, rest):
        plain = ":".join(["user", str(uid), "profile"])
        spread = ":".join(["user", *rest])
        return plain, spread
    """
    (returned,) = next(f for f in facts(code).functions if f.qualname == "key").returns
    assert isinstance(returned, Sequence)
    plain_key, spread_key = returned.items
    assert isinstance(plain_key, FormattedText)
    assert plain_key.value == f"user:{HOLE}:profile"
    assert plain_key.holes == (Opaque("uid"),)
    assert isinstance(spread_key, FormattedText)
    assert spread_key.value == f"user:{HOLE}"
    assert spread_key.holes == (None,)


def test_item_stores_skip_literal_keys_and_literal_dicts_are_kept_as_arguments() -> None:
    code = """
    _cache = {}

    def fill(key):
        _cache["site"] = 1
        _cache[key] = 2
        _cache[f"user:{key}"] = 3
        _cache.update({"beta": True})
        _cache.update({key: True})
    """
    fn = next(f for f in facts(code).functions if f.qualname == "fill")
    assert [span.line for _, span in fn.item_stores] == [6, 7]
    updates = [site.args[0] for site in fn.calls if site.text.startswith("_cache.update")]
    assert isinstance(updates[0], DictLiteral) and updates[0].keys == frozenset({"beta"})
    assert updates[1] is None


POOLED = {
    "plain": 'DSN = "postgresql://u:p@db.example.com:6543/postgres"\n',
    "continued": 'DSN = "postgresql://u:p@host:65\\\n43/postgres"\n',
    "concatenated": 'DSN = ("postgresql://u:p@host:65" "43/db")\n',
    "escaped": 'pool = connect("postgresql://host/db?pg\\x62ouncer=true")\n',
    "django": 'DATABASES = {"default": {"HOST": "db", "PORT": "6432"}}\n',
}
NOT_POOLED = {
    "direct": 'DSN = "postgresql://u:p@db.example.com:5432/postgres"\n',
    "port number in prose": 'HELP = "use port 6543 for the pooler"\n',
    "in a comment": '# DSN = "postgresql://host:6543/db"\nDSN = "postgresql://host:5432/db"\n',
}


def test_pooler_evidence_is_read_from_strings_as_python_decodes_them() -> None:
    for name, source in POOLED.items():
        assert python_facts("settings.py", source).pooler is not None, name
    for name, source in NOT_POOLED.items():
        assert python_facts("settings.py", source).pooler is None, name


def test_a_name_imported_again_keeps_its_earlier_import_apart() -> None:
    found = facts(
        """
        try:
            from rq import Queue
            DEFAULT = Queue
        except ImportError:
            from app.compat import Queue
        """
    )
    # What the name means from then on; `imports` alone says which packages a project uses.
    assert found.imports == (("Queue", "app.compat.Queue"),)
    assert found.earlier_imports == (("Queue", "rq.Queue"),)
    assert dict(found.module_vars)["DEFAULT"] == Imported("rq.Queue")


def test_values_a_file_spells_twice_are_one_object() -> None:
    found = facts(
        """
        def a(self, q):
            self.session.execute(q).all()
            self.session.execute(q).all()
            self.other.execute(q)
        """
    )
    callees = [site.callee for site in found.functions[0].calls]
    first, second = (c for c in callees if isinstance(c, Attr) and c.attr == "all")
    assert first is second  # the same call result, the same attribute read
    sessions = [c for c in callees if isinstance(c, Attr) and c.attr == "execute"]
    assert len(sessions) == 3 and sessions[0] is sessions[1] and sessions[2] is not sessions[0]
    assert sessions[2].base != sessions[0].base
