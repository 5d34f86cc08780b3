"""Shell completion for evctl, written from its own parser so that it never drifts:
``eval "$(evctl completion bash)"`` (zsh: the same through bashcompinit)."""

from __future__ import annotations

import argparse

from evproto.states import CpState

__all__ = ["completion_script"]

_VALUES = {
    "-o": "table json csv",
    "--output": "table json csv",
    "--state": " ".join(s.value for s in CpState),
    "--outcome": "completed aborted cancelled open",
}


def _commands(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for action in parser._actions:  # argparse keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sorted(
                    option
                    for sub_action in sub._actions
                    for option in sub_action.option_strings
                    if option.startswith("--") or option == "-o"
                )
    return found


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    commands = _commands(parser)
    cases = "\n".join(
        f'        {name}) opts="{" ".join(options)}" ;;' for name, options in commands.items()
    )
    values = "\n".join(f'        {flag}) vals="{words}" ;;' for flag, words in _VALUES.items())
    script = f"""_evctl() {{
    local cur prev opts vals
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{" ".join(commands)} --help --version" -- "$cur"))
        return
    fi
    vals=""
    case "$prev" in
{values}
        completion) vals="bash zsh" ;;
    esac
    if [ -n "$vals" ]; then
        COMPREPLY=($(compgen -W "$vals" -- "$cur"))
        return
    fi
    opts=""
    case "${{COMP_WORDS[1]}}" in
{cases}
    esac
    COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
}}
complete -F _evctl evctl
"""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script
