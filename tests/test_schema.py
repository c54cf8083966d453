"""The schema model: DDL facts from sqlglot, and the tables phase 2 builds from SQL
migrations, Alembic operations and Django / SQLAlchemy models."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sample_projects import make_project
from scalelint.config import load_config
from scalelint.engine import RULES_DIR, load_file
from scalelint.facts.model import IndexDef
from scalelint.facts.sql import analyse_file
from scalelint.files import discover
from scalelint.knowledge import load_knowledge
from scalelint.project import ProjectModel
from scalelint.schema import Schema, Table, Where


def schema_of(tmp_path: Path, files: dict[str, str], config: str = "") -> Schema:
    root = make_project(tmp_path, {k: textwrap.dedent(v) for k, v in files.items()}, config)
    settings = load_config(root)
    facts = {}
    for path in discover(settings):
        relative = path.relative_to(root).as_posix()
        facts[relative] = load_file(path, relative, settings.dialect)[0]
    knowledge = load_knowledge(RULES_DIR / "apis", settings.apis)
    return ProjectModel(facts, knowledge, settings.request_path, settings.schema).schema


def indexes(table: Table) -> set[tuple[str, ...]]:
    return {i.parts for i in table.indexes}


def changes(sql: str):
    statements, failed = analyse_file(textwrap.dedent(sql))
    assert failed == 0
    return [c for s in statements for c in s.schema]


# ---- DDL facts ---------------------------------------------------------------------------


def test_create_table_columns_keys_and_references() -> None:
    found = changes(
        """
        create table public.orders (
          id bigserial primary key,
          tenant_id uuid not null references tenants(id),
          email text unique,
          customer_id bigint,
          constraint fk_customer foreign key (customer_id) references customers (id),
          unique (tenant_id, email)
        );
        """
    )
    table = found[0]
    assert (table.action, table.table) == ("create_table", "orders")
    columns = {c.name: c for c in table.columns}
    assert columns["id"].primary_key and columns["email"].unique
    assert columns["tenant_id"].references == "tenants"
    assert {(c.action, c.key, c.references) for c in found[1:]} == {
        ("add_foreign_key", ("customer_id",), "customers"),
        ("add_unique", ("tenant_id", "email"), ""),
    }


def test_index_method_opclass_expression_partial_and_concurrently() -> None:
    found = changes(
        """
        create index concurrently if not exists orders_note on orders using gin (note gin_trgm_ops);
        create unique index users_email on users (lower(email)) where deleted_at is null;
        drop index if exists orders_note;
        """
    )
    trigram, lower, dropped = found
    assert trigram.index == IndexDef(
        "orders", ("note",), "orders_note", False, "gin", ("gin_trgm_ops",), False, True
    )
    assert lower.index is not None
    assert (lower.index.parts, lower.index.unique, lower.index.partial) == (("lower(email)",), True, True)
    assert (dropped.action, dropped.name) == ("drop_index", "orders_note")


def test_policies_are_parsed_with_the_calls_they_make_and_the_columns_they_compare() -> None:
    found = changes(
        """
        alter table only public.notes enable row level security;
        create policy "own notes" on public.notes as permissive for select to authenticated
          using (auth.uid() = user_id);
        create policy team on notes for update using ((select auth.uid()) = owner_id)
          with check (is_member(team_id));
        create policy strict on notes as restrictive using (exists (
          select 1 from members m where m.user_id = auth.uid()));
        """
    )
    rls, own, team, strict = found
    assert (rls.action, rls.table) == ("enable_rls", "notes")
    assert own.policy is not None and team.policy is not None and strict.policy is not None
    assert (own.policy.name, own.policy.command, own.policy.roles) == (
        "own notes",
        "SELECT",
        ("authenticated",),
    )
    assert own.policy.calls == (("auth.uid", False),) and own.policy.columns == ("user_id",)
    assert team.policy.calls == (("auth.uid", True), ("is_member", False))
    assert team.policy.columns == ("owner_id", "team_id") and team.policy.roles == ("public",)
    assert not strict.policy.permissive
    assert strict.policy.calls == (("auth.uid", False),)  # a sub-select with FROM runs per row


def test_functions_keep_volatility_and_the_queries_in_their_body() -> None:
    volatile, stable = changes(
        """
        create function is_member(t uuid) returns boolean language plpgsql as $$
        begin return exists (select 1 from members where team_id = t); end $$;
        create or replace function public.by_handle(h text) returns setof profiles
          language sql stable as $fn$ select * from profiles where handle = h $fn$;
        """
    )
    assert (volatile.name, volatile.volatility) == ("is_member", "VOLATILE")
    assert (stable.name, stable.volatility) == ("by_handle", "STABLE")
    (query,) = stable.body
    assert ("profiles", "handle", "eq") in [(p.table, p.column, p.op) for p in query.predicates]


def test_statement_lines_hold_after_postgres_syntax_sqlglot_rejects() -> None:
    statements, failed = analyse_file(
        "create function f() returns boolean\nlanguage sql\nsecurity definer\nset search_path = ''\n"
        "as $$ select true $$;\n\ncreate policy p on t using (f());\n"
    )
    assert failed == 0
    assert [(s.line, s.schema[0].action) for s in statements] == [
        (1, "create_function"),
        (7, "create_policy"),
    ]


def test_query_predicates_resolve_aliases_and_classify_operators() -> None:
    (statement,), _ = analyse_file(
        "select o.id from orders o join customers c on c.id = o.customer_id "
        "where lower(o.email) = $1 and o.created_at > now() and c.name ilike '%' || $2 "
        "and o.status in ('a', 'b') order by o.created_at desc limit 10"
    )
    assert {(p.table, p.column, p.op, p.function) for p in statement.predicates} == {
        ("customers", "id", "join", ""),
        ("orders", "customer_id", "join", ""),
        ("orders", "email", "eq", "lower"),
        ("orders", "created_at", "range", ""),
        ("customers", "name", "contains", ""),
        ("orders", "status", "in", ""),
    }
    assert [(p.table, p.column) for p in statement.order_by] == [("orders", "created_at")]


# ---- the schema model ----------------------------------------------------------------------


def test_sql_migrations_replay_in_path_order(tmp_path: Path) -> None:
    schema = schema_of(
        tmp_path,
        {
            "migrations/001_init.sql": """
                create table users (id int primary key, email text, handle text, tenant_id int);
                create index users_email on users (email);
                create index users_handle on users (handle);
            """,
            "migrations/002_changes.sql": """
                drop index users_email;
                alter table users drop column handle;
                alter table users add constraint users_tenant_fk
                  foreign key (tenant_id) references tenants (id);
            """,
            "tests/fixtures.sql": "create table scratch (id int);",
        },
    )
    users = schema.tables["users"]
    assert indexes(users) == {("id",)}
    assert list(users.columns) == ["id", "email", "tenant_id"]
    assert [(fk.columns, fk.references) for fk in users.foreign_keys] == [(("tenant_id",), "tenants")]
    assert "scratch" not in schema.tables  # test files are not the project's schema
    index, table_existed = schema.index_statements[0]
    assert (index.where, table_existed) == (Where("migrations/001_init.sql", 3), False)


def test_schema_globs_add_files_that_would_be_skipped(tmp_path: Path) -> None:
    files = {"tests/schema.sql": "create table things (id int primary key);"}
    assert "things" not in schema_of(tmp_path / "a", files).tables
    assert "things" in schema_of(tmp_path / "b", files, 'schema = ["tests/*.sql"]').tables


def test_django_models_fields_meta_and_abstract_bases(tmp_path: Path) -> None:
    schema = schema_of(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/models.py": """
                from django.contrib.postgres.indexes import GinIndex
                from django.db import models
                from django.db.models.functions import Upper

                class Stamped(models.Model):
                    created_at = models.DateTimeField(db_index=True)
                    class Meta:
                        abstract = True

                class Customer(Stamped):
                    email = models.EmailField(unique=True)
                    name = models.CharField(max_length=80)

                class Order(Stamped):
                    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
                    owner = models.ForeignKey("auth.User", on_delete=models.CASCADE, db_index=False)
                    status = models.CharField(max_length=20)
                    note = models.TextField()

                    class Meta:
                        db_table = "orders"
                        unique_together = ("customer", "status")
                        indexes = [
                            models.Index(fields=["status", "-created_at"], name="orders_status"),
                            GinIndex(fields=["note"], name="orders_note", opclasses=["gin_trgm_ops"]),
                            models.Index(Upper("name"), name="orders_upper"),
                        ]
            """,
        },
    )
    assert set(schema.tables) == {"shop_customer", "orders"}
    customer, order = schema.tables["shop_customer"], schema.tables["orders"]
    assert indexes(customer) == {("created_at",), ("email",), ("id",)}
    assert list(order.columns) == ["created_at", "customer_id", "owner_id", "status", "note", "id"]
    assert indexes(order) == {
        ("created_at",),
        ("customer_id",),
        ("id",),
        ("customer_id", "status"),
        ("status", "created_at"),
        ("note",),
        ("upper(name)",),
    }
    assert [(fk.columns, fk.references) for fk in order.foreign_keys] == [
        (("customer_id",), "shop_customer"),
        (("owner_id",), "auth_user"),
    ]
    assert order.serves("note", "contains") and not customer.serves("name", "contains")


def test_sqlalchemy_declarative_core_tables_and_alembic(tmp_path: Path) -> None:
    schema = schema_of(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/models.py": """
                from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, String, Table
                from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

                class Base(DeclarativeBase):
                    pass

                class Timestamps:
                    created_at: Mapped[int] = mapped_column(index=True)

                class User(Timestamps, Base):
                    __tablename__ = "users"
                    id: Mapped[int] = mapped_column(primary_key=True)
                    email: Mapped[str] = mapped_column(String, unique=True)
                    org_id = Column(Integer, ForeignKey("orgs.id"))
                    handle = Column("user_handle", String)
                    __table_args__ = (
                        Index("users_handle", "user_handle"),
                        Index(
                            "users_handle_trgm",
                            "user_handle",
                            postgresql_using="gin",
                            postgresql_ops={"user_handle": "gin_trgm_ops"},
                        ),
                    )

                events = Table(
                    "events",
                    MetaData(),
                    Column("id", Integer, primary_key=True),
                    Column("kind", String, index=True),
                )
            """,
            "alembic/versions/001_orgs.py": """
                import sqlalchemy as sa
                from alembic import op

                def upgrade():
                    op.create_table(
                        "orgs",
                        sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("slug", sa.String),
                        sa.Column("parent_id", sa.Integer),
                        sa.ForeignKeyConstraint(["parent_id"], ["orgs.id"]),
                    )
                    op.create_index("orgs_slug", "orgs", ["slug"], unique=True)
                    op.execute("CREATE INDEX orgs_lower ON orgs (lower(slug))")

                def downgrade():
                    op.drop_table("orgs")
            """,
            "alembic/versions/002_batch.py": """
                import sqlalchemy as sa
                from alembic import op

                def upgrade():
                    with op.batch_alter_table("orgs") as batch_op:
                        batch_op.add_column(sa.Column("owner_id", sa.Integer))
                        batch_op.create_index("orgs_owner", ["owner_id"])
                        batch_op.drop_column("parent_id")
                    op.create_table(Unreadable.__tablename__, sa.Column("id", sa.Integer))
            """,
        },
    )
    users, events, orgs = schema.tables["users"], schema.tables["events"], schema.tables["orgs"]
    assert list(users.columns) == ["created_at", "id", "email", "org_id", "user_handle"]
    assert indexes(users) == {("created_at",), ("id",), ("email",), ("user_handle",)}
    assert users.serves("user_handle", "contains")  # the gin trigram twin of users_handle
    assert [(fk.columns, fk.references) for fk in users.foreign_keys] == [(("org_id",), "orgs")]
    assert indexes(events) == {("id",), ("kind",)}
    assert indexes(orgs) == {("id",), ("slug",), ("lower(slug)",), ("owner_id",)}
    assert list(orgs.columns) == ["id", "slug", "owner_id"]
    assert orgs.foreign_keys == []  # its column was dropped
    assert "" not in schema.tables


def test_an_index_serves_its_leading_column_and_the_next_after_equalities() -> None:
    table = Table("t", Where("s.sql", 1), "sql")
    table.add_index(IndexDef("t", ("tenant_id", "created_at")), Where("s.sql", 2))
    table.add_index(IndexDef("t", ("lower(email)",)), Where("s.sql", 3))
    assert table.serves("tenant_id")
    assert not table.serves("created_at")
    assert table.serves("created_at", "range", equal=frozenset({"tenant_id"}))
    assert table.serves("email", function="lower") and not table.serves("email")
    assert not table.serves("email", "contains", "lower")


def test_alembic_operations_called_through_aliases(tmp_path: Path) -> None:
    schema = schema_of(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/migtools.py": """
                from alembic import op

                make_index = op.create_index
                index_again = make_index

                class Ops:
                    add = op.add_column
            """,
            "alembic/versions/001.py": """
                import sqlalchemy as sa
                from alembic import op
                from app import migtools
                from app.migtools import Ops, index_again, make_index

                def upgrade():
                    op.create_table("orgs", sa.Column("id", sa.Integer, primary_key=True))
                    Ops.add("orgs", sa.Column("slug", sa.String))
                    make_index("orgs_slug", "orgs", ["slug"])
                    migtools.make_index("orgs_kind", "orgs", ["kind"])
                    index_again("orgs_plan", "orgs", ["plan"])
                    migtools.unrelated("orgs_other", "orgs", ["other"])
            """,
        },
    )
    orgs = schema.tables["orgs"]
    assert "slug" in orgs.columns
    assert indexes(orgs) == {("id",), ("slug",), ("kind",), ("plan",)}


def test_alembic_operations_reached_through_project_modules(tmp_path: Path) -> None:
    schema = schema_of(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/migtools.py": "from alembic import op\n",
            "app/ops.py": "from app import migtools\n",
            "alembic/versions/001.py": """
                import sqlalchemy as sa
                from app import ops

                def upgrade():
                    ops.migtools.op.create_table("orgs", sa.Column("id", sa.Integer, primary_key=True))
                    ops.migtools.op.create_index("orgs_slug", "orgs", ["slug"])
            """,
        },
    )
    assert indexes(schema.tables["orgs"]) == {("id",), ("slug",)}


def test_alembic_imported_only_before_a_fallback_import_still_counts(tmp_path: Path) -> None:
    # Calls are resolved looking for Alembic operations only in a project that imports
    # `alembic`; here its one import is of a name an `except ImportError:` binds again.
    schema = schema_of(
        tmp_path,
        {
            "compat.py": "def create_index(*args):\n    pass\n",
            "schema/001.sql": "CREATE TABLE orgs (id int PRIMARY KEY, kind text);\n",
            "schema/002.py": """
                try:
                    from alembic.op import create_index
                    make_index = create_index
                except ImportError:
                    from compat import create_index

                def upgrade():
                    make_index("orgs_kind", "orgs", ["kind"])
            """,
        },
    )
    assert indexes(schema.tables["orgs"]) == {("id",), ("kind",)}
