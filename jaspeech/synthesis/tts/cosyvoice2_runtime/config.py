"""Read upstream's `cosyvoice2.yaml` without hyperpyyaml or upstream's classes.

The file is a HyperPyYAML document: `!new:pkg.Class` builds an object from its mapping, `!name:pkg.fn`
is a partial, `!apply:fn [...]` runs a function at load (upstream seeds its RNGs that way), and
`!ref <key>` (optionally arithmetic: `!ref <a> * <b>`) points at another top-level value. We only need
the numbers it holds, so every tag becomes plain data:

    !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec {input_size: 512, ...}
        -> {"_class": "cosyvoice.flow.flow.CausalMaskedDiffWithXvec", "input_size": 512, ...}
    !name:cosyvoice.utils.common.ras_sampling {top_p: 0.8, ...} -> {"_name": "...ras_sampling", "top_p": 0.8}
    !apply:...                                                  -> None (never run)
    !ref <token_frame_rate> * <token_mel_ratio>                 -> 50

`omegaconf.DictConfig` nodes (`!new:omegaconf.DictConfig {content: {...}}`) become their content.
"""
from __future__ import annotations

import ast
import operator
import re
from pathlib import Path
from typing import Any

import yaml

_REF = re.compile(r"<([^<>]+)>")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.USub: operator.neg}


class _Ref(str):
    """A `!ref` expression, resolved once the whole document is read."""


class _Loader(yaml.SafeLoader):
    pass


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node, kind: str):
    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    if kind == "apply":
        return None
    if kind == "new" and suffix == "omegaconf.DictConfig":
        return dict(value.get("content", {})) if isinstance(value, dict) else {}
    out = {f"_{'class' if kind == 'new' else 'name'}": suffix}
    if isinstance(value, dict):
        out.update(value)
    return out


for _kind in ("new", "name", "apply"):
    _Loader.add_multi_constructor(f"!{_kind}:", lambda loader, suffix, node, k=_kind: _tagged(loader, suffix, node, k))
_Loader.add_constructor("!ref", lambda loader, node: _Ref(loader.construct_scalar(node)))


def _arith(expr: str) -> Any:
    def walk(n: ast.AST) -> Any:
        if isinstance(n, ast.Expression):
            return walk(n.body)
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](walk(n.left), walk(n.right))
        if isinstance(n, ast.UnaryOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](walk(n.operand))
        raise ValueError(f"unsupported !ref expression {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


def _resolve(value: Any, top: dict, seen: tuple = ()) -> Any:
    if isinstance(value, _Ref):
        names = _REF.findall(value)
        if not names:
            raise ValueError(f"!ref {value!r} names no <key>")
        if _REF.fullmatch(value.strip()):  # a plain reference: the value itself, whatever its type
            return _lookup(names[0], top, seen)
        values = {n: _lookup(n, top, seen) for n in names}
        return _arith(_REF.sub(lambda m: repr(values[m.group(1)]), value))
    if isinstance(value, dict):
        return {k: _resolve(v, top, seen) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, top, seen) for v in value]
    return value


def _lookup(name: str, top: dict, seen: tuple) -> Any:
    if name in seen:
        raise ValueError(f"!ref cycle through <{name}>")
    node: Any = top
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"!ref <{name}>: no such key in cosyvoice2.yaml")
        node = node[part]
    return _resolve(node, top, (*seen, name))


def read_config(folder: str | Path) -> dict:
    """The model folder's cosyvoice2.yaml as plain data (tags described in the module docstring)."""
    path = Path(folder) / "cosyvoice2.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} is not a CosyVoice2 model folder (no cosyvoice2.yaml): download FunAudioLLM/CosyVoice2-0.5B "
            "to a local folder (it holds cosyvoice2.yaml, llm.pt, flow.pt, hift.pt, campplus.onnx, "
            "speech_tokenizer_v2.onnx and CosyVoice-BlankEN/) and pass its path")
    raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    return _resolve(raw, raw)


def kwargs(node: dict) -> dict:
    """A `!new:` node's constructor arguments (its mapping without the `_class` / `_name` marker)."""
    return {k: v for k, v in node.items() if not k.startswith("_")}
