"""A first look at YAML text before it is parsed: refuse what would make parsing unbounded.

PyYAML's safe loaders refuse unsafe tags but still follow aliases: a few hundred bytes of
nested aliases (``&a [*b, *b, ...]``) expand to gigabytes when the result is walked, and a
recursive alias (``&a [*a]``) makes a structure that never ends. Very deep nesting
(``[[[[...``) overflows the stack of the C parser. Neither has a use in qual's YAML (the
codebook, transcript front matter), so both are refused, by scanning the tokens, which takes
time and memory in proportion to the text, before anything is composed.
"""

from __future__ import annotations

import yaml

#: deepest nesting of mappings and lists accepted (the codebook needs about 6)
MAX_DEPTH = 100

_OPEN = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken,
         yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def loader_class():
    """The fastest safe loader available (libyaml's when installed)."""
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def refusal(text: str, what: str) -> tuple[int, str] | None:
    """``(line, message)`` when ``text`` uses an alias or anchor or nests deeper than
    :data:`MAX_DEPTH`, else None. ``what`` names the document ("a codebook"). A syntax error
    raises ``yaml.YAMLError`` as parsing would."""
    depth = 0
    for token in yaml.scan(text, Loader=loader_class()):
        if isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
            return (token.start_mark.line + 1,
                    f"YAML aliases/anchors are not allowed in {what} (found "
                    f"{'*' if isinstance(token, yaml.AliasToken) else '&'}{token.value}): "
                    "write the text out in full")
        if isinstance(token, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                return (token.start_mark.line + 1,
                        f"YAML nested more than {MAX_DEPTH} levels deep is not allowed in "
                        f"{what}")
        elif isinstance(token, _CLOSE):
            depth -= 1
    return None
