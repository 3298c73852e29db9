"""Generate docs/cli.md from the command tree, so the reference never drifts.

`make docs` writes it; a test fails when the checked-in file differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer


def _walk(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    sub = getattr(cmd, "commands", None)
    if sub:
        for name in sorted(sub):
            yield from _walk(sub[name], [*path, name])
    else:
        yield path, cmd


def _param_line(param: Any) -> str:
    if param.param_type_name == "argument":
        name = (param.metavar or param.name or "").upper()
        req = "required" if param.required else "optional"
        return f"| `{name}` | argument, {req} | {(getattr(param, 'help', None) or '').strip()} |"
    opts = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    bits = []
    if param.required:
        bits.append("required")
    if getattr(param, "multiple", False):
        bits.append("repeatable")
    if getattr(param, "envvar", None):
        bits.append(f"env `{param.envvar}`")
    return f"| {opts} | {', '.join(bits) or 'option'} | {(param.help or '').strip()} |"


def generate() -> str:
    from custody.cli.main import app

    root = typer.main.get_command(app)
    lines = [
        "# Command reference",
        "",
        "Generated from the command definitions by `make docs`; do not edit by hand.",
        "",
        "Global options (before the command): `--db PATH_OR_URL` (env `CUSTODY_DB`), `--version`.",
        "",
    ]
    for path, cmd in _walk(root, []):
        lines += [f"## custody {' '.join(path)}", "", (cmd.help or "").strip().split("\n")[0], ""]
        params = [p for p in cmd.params if p.name != "help"]
        if params:
            lines += ["| parameter | kind | meaning |", "| --- | --- | --- |"]
            lines += [_param_line(p) for p in params]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(generate(), end="")
