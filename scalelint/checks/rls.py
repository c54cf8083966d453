"""SL604 (query-budget family): row-level-security policies that cost a function call or
a scan per row, on every query the table serves.

Policies come from the schema model, parsed by sqlglot in phase 1 (facts/ddl.py):
the functions each USING / WITH CHECK calls, whether each call sits in a scalar
sub-select, and the table columns the expressions compare.
"""

from __future__ import annotations

from collections.abc import Iterator

from scalelint.checks import check, finding
from scalelint.config import Config
from scalelint.findings import Edit, Finding, Related, Span
from scalelint.project import ProjectModel
from scalelint.query_shapes import is_flag
from scalelint.schema import Policy, Table

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
WRAP_PROBLEM = "evaluates"


def _span(policy: Policy) -> Span:
    return Span(policy.where.line, 1, policy.where.line, 1)


def _wrap_fixes(policy: Policy, wanted: set[str]) -> tuple[Edit, ...]:
    """`auth.uid()` -> `(select auth.uid())` in the policy's .sql file."""
    if policy.offset is None:
        return ()
    return tuple(
        Edit(policy.where.path, policy.offset + start, policy.offset + end, f"(select {text})")
        for name, start, end, text in policy.definition.bare_calls
        if name in wanted
    )


def _problems(project: ProjectModel, config: Config, table: Table, policy: Policy) -> list[str]:
    definition = policy.definition
    wanted = {name.lower() for name in config.rls_functions}
    problems = []
    unwrapped = [name for name, wrapped in definition.calls if not wrapped]
    for name in dict.fromkeys(n for n in unwrapped if n in wanted):
        problems.append(
            f"{WRAP_PROBLEM} `{name}()` for every row it checks; wrap it as `(select {name}())` so Postgres "
            "evaluates it once per query"
        )
    for name in dict.fromkeys(unwrapped):
        function = project.schema.function(name)
        if function is not None and function.volatility == "VOLATILE":
            problems.append(
                f"calls `{name}()`, declared VOLATILE (the default), so Postgres cannot cache it and runs it "
                "for every row; declare it STABLE (SECURITY DEFINER if it reads tables the policy guards), "
                f"and when it takes no column of the row, call it as `(select {name}())`"
            )
    for column in definition.columns:
        if (
            column in table.columns
            and not table.serves(column)
            and not is_flag(project.schema, table, column)
        ):
            problems.append(
                f"filters on `{table.name}.{column}`, and no index starts with it: every query on "
                f"`{table.name}` scans the table to apply the policy; add `CREATE INDEX ON "
                f"{table.name} ({column});`"
            )
    return problems


@check("SL604")
def slow_rls_policy(project: ProjectModel, config: Config) -> Iterator[Finding]:
    schema = project.schema
    for name in sorted(schema.tables):
        table = schema.tables[name]
        seen: dict[tuple[str, str], Policy] = {}
        for policy in table.policies:
            definition = policy.definition
            fixes = _wrap_fixes(policy, {n.lower() for n in config.rls_functions})
            for problem in _problems(project, config, table, policy):
                yield finding(
                    "SL604",
                    policy.where.path,
                    _span(policy),
                    f"policy `{definition.name}` on `{name}` {problem}",
                    fixes=fixes if problem.startswith(WRAP_PROBLEM) else (),
                )
            if not definition.permissive:
                continue
            commands = COMMANDS if definition.command == "ALL" else (definition.command,)
            clashes = [
                seen[(role, command)]
                for role in definition.roles
                for command in commands
                if (role, command) in seen
            ]
            for role in definition.roles:
                for command in commands:
                    seen.setdefault((role, command), policy)
            if clashes:
                first = clashes[0]
                yield finding(
                    "SL604",
                    policy.where.path,
                    _span(policy),
                    f"policy `{definition.name}` is a second permissive policy on `{name}` for the same "
                    f"role and action as `{first.definition.name}`: Postgres evaluates every permissive "
                    "policy for every row and ORs them; merge them into one policy",
                    (Related(first.where.path, first.where.line, f"policy `{first.definition.name}`"),),
                )
