"""A compiler for the FHIRPath subset used by the R4 SearchParameter expressions.

Search indexing evaluates one FHIRPath expression per search parameter on every write, so an
interpreter such as fhirpathpy is far too slow. This module parses an expression once and turns it
into Python closures; evaluating it is then a few dictionary look-ups.

The compiler is *typed*: it knows the element types of every R4 resource and data type (from the
StructureDefinitions of the definitions package), so

* a choice element is resolved statically (``Observation.value.ofType(Quantity)`` reads the key
  ``valueQuantity``; a bare ``Observation.value`` reads every ``value[x]`` key);
* each result collection carries its FHIR type, which the indexer uses to pick a row builder once,
  at compile time, instead of guessing from the JSON shape on every call;
* when compiled for one resource type, union branches rooted at another type
  (``AllergyIntolerance.patient | CarePlan.subject...``) are dropped at compile time.

Supported: paths, ``|`` unions, indexers ``[n]``, parenthesised sub-expressions, ``$this``,
``%resource`` / ``%rootResource`` / ``%context``, string/number/boolean literals and ``{}``,
``=`` ``!=`` ``~`` ``!~`` ``<`` ``<=`` ``>`` ``>=``, ``and`` ``or`` ``xor`` ``implies``,
``is`` / ``as`` (operators and functions), and the functions ``where``, ``exists``, ``empty``,
``not``, ``first``, ``last``, ``tail``, ``count``, ``ofType``, ``resolve``, ``extension``,
``hasValue``. Unions keep duplicates (the indexer deduplicates its rows).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hygie.fhir import definitions

__all__ = [
    "Evaluator",
    "FHIRPathError",
    "TypedBranch",
    "compile_expression",
    "compile_typed",
    "element_types",
    "evaluate_typed",
    "parse",
    "reference_type",
]

Evaluator = Callable[[list[Any], dict[str, Any]], list[Any]]
"""A compiled (sub-)expression: ``(focus collection, root resource) -> result collection``."""


class FHIRPathError(ValueError):
    """The expression is not valid FHIRPath or uses a feature outside the supported subset."""


@dataclass(frozen=True, slots=True)
class TypedBranch:
    """One statically typed part of a compiled expression.

    ``type`` is the FHIR type of every node ``evaluate`` returns (``"Quantity"``, ``"string"``,
    ``"Observation.component"`` for backbone elements), or ``None`` when it is not known statically.
    ``requires`` is a key the focus must hold for the branch to select anything (its first step),
    so that callers can skip the evaluation with one dictionary look-up; ``None`` if unknown.
    """

    evaluate: Evaluator
    type: str | None
    requires: str | None = None


# --------------------------------------------------------------------------------------------
# Type model, from the StructureDefinitions
# --------------------------------------------------------------------------------------------

_SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Time": "time",
}

ElementMap = dict[str, dict[str, tuple[tuple[str, str], ...]]]


@dataclass(frozen=True, slots=True)
class _TypeModel:
    """Element types of every R4 type, read once from the StructureDefinitions."""

    elements: ElementMap  # type name -> element name -> ((json key, type), ...)
    bases: dict[str, str]  # type name -> base type name
    names_lower: dict[str, str]  # lower-cased type name -> type name


def _build_type_model(structure_definitions: Sequence[dict[str, Any]]) -> _TypeModel:
    """Index every element of every StructureDefinition by (owner type, element name)."""
    elements: ElementMap = {}
    bases: dict[str, str] = {}
    for sd in structure_definitions:
        if sd.get("resourceType") != "StructureDefinition" or sd.get("derivation") == "constraint":
            continue
        type_name = sd.get("type")
        if not type_name or sd.get("kind") == "logical":
            continue
        base = sd.get("baseDefinition")
        if base:
            bases[type_name] = base.rsplit("/", 1)[-1]
        snapshot = sd.get("snapshot", {}).get("element", [])
        paths_with_children = {el["path"].rsplit(".", 1)[0] for el in snapshot if "." in el["path"]}
        for el in snapshot:
            path: str = el["path"]
            if "." not in path:
                elements.setdefault(type_name, {})
                continue
            owner, name = path.rsplit(".", 1)
            if owner.split(".", 1)[0] != type_name:
                continue  # constraint-style paths of a profile
            owned = elements.setdefault(owner, {})
            if "contentReference" in el:
                ref = el["contentReference"].rsplit("#", 1)[-1]
                owned.setdefault(name, ((name, ref),))
                continue
            codes = [_SYSTEM_TYPES.get(t["code"], t["code"]) for t in el.get("type", [])]
            if name.endswith("[x]"):
                stem = name[:-3]
                owned.setdefault(stem, tuple((stem + c[0].upper() + c[1:], c) for c in codes))
            elif path in paths_with_children:
                owned.setdefault(name, ((name, path),))
            elif codes:
                owned.setdefault(name, ((name, codes[0]),))
    names_lower = {name.lower(): name for name in elements}
    return _TypeModel(elements, bases, names_lower)


@functools.cache
def _type_model() -> _TypeModel:
    """The process-wide type model (empty when the definitions are not installed: untyped mode)."""
    try:
        sds = definitions.load_bundle_resources("profiles-types.json") + definitions.load_bundle_resources(
            "profiles-resources.json"
        )
    except definitions.DefinitionsNotFound:
        sds = []
    return _build_type_model(sds)


def element_types(type_name: str, element: str) -> tuple[tuple[str, str], ...]:
    """The ``(json key, FHIR type)`` pairs an element of a type can be read from.

    A choice element (``value[x]``) gives one pair per allowed type (``("valueQuantity",
    "Quantity")``, ...); an unknown type or element gives ``()``.
    """
    return _type_model().elements.get(type_name, {}).get(element, ())


def _canonical_type(name: str) -> str:
    """Spell a type name as the definitions do (``DateTime`` -> ``dateTime``)."""
    model = _type_model()
    if name in model.elements:
        return name
    return model.names_lower.get(name.lower(), name)


def _is_subtype(type_name: str, ancestor: str) -> bool:
    """Whether ``type_name`` is ``ancestor`` or derives from it (Age -> Quantity, Patient -> Resource)."""
    bases = _type_model().bases
    current: str | None = type_name
    while current is not None:
        if current == ancestor:
            return True
        current = bases.get(current)
    return False


# --------------------------------------------------------------------------------------------
# Lexer and parser
# --------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<delimited>`[^`]*`)
      | (?P<env>%[A-Za-z_][A-Za-z0-9_]*|%'[^']*')
      | (?P<ident>\$?[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>!=|!~|<=|>=|\{\}|[.()\[\],|=~<>+\-*/&])
    )""",
    re.VERBOSE,
)

_KEYWORD_OPS = {"and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod"}
# Binding power of binary operators (FHIRPath precedence, higher binds tighter).
_BINARY_POWER = {
    "implies": 1,
    "or": 2,
    "xor": 2,
    "and": 3,
    "in": 4,
    "contains": 4,
    "=": 5,
    "!=": 5,
    "~": 5,
    "!~": 5,
    "<": 6,
    "<=": 6,
    ">": 6,
    ">=": 6,
    "|": 7,
    "is": 8,
    "as": 8,
    "+": 9,
    "-": 9,
    "&": 9,
    "*": 10,
    "/": 10,
    "div": 10,
    "mod": 10,
}

_STRING_ESCAPES = {
    "'": "'",
    '"': '"',
    "`": "`",
    "\\": "\\",
    "/": "/",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


def _unescape(body: str) -> str:
    """Decode the escapes of a FHIRPath string literal."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(1)
        if text.startswith("u"):
            return chr(int(text[1:], 16))
        return _STRING_ESCAPES.get(text, text)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", replace, body)


@dataclass(frozen=True, slots=True)
class _Tok:
    """A lexical token."""

    kind: str  # string | number | ident | env | op | end
    value: str


def _tokenize(expression: str) -> list[_Tok]:
    """Split an expression into tokens; keywords come out as operators (the parser decides)."""
    tokens: list[_Tok] = []
    pos = 0
    length = len(expression)
    while pos < length:
        match = _TOKEN_RE.match(expression, pos)
        if match is None:
            if expression[pos:].isspace():
                break
            raise FHIRPathError(f"unexpected character at {pos} in {expression!r}")
        pos = match.end()
        kind = match.lastgroup
        text = match.group(kind or "op")
        if kind == "string":
            tokens.append(_Tok("string", _unescape(text[1:-1])))
        elif kind == "delimited":
            tokens.append(_Tok("ident", text[1:-1]))
        elif kind == "env":
            tokens.append(_Tok("env", text[1:].strip("'")))
        elif kind == "ident" and text in _KEYWORD_OPS:
            tokens.append(_Tok("op", text))
        else:
            tokens.append(_Tok(kind or "op", text))
    tokens.append(_Tok("end", ""))
    return tokens


# AST nodes are tuples: ("ident", name) ("member", base, name) ("func", base|None, name, args)
# ("index", base, index) ("binary", op, left, right) ("typeop", op, expr, type) ("literal", value)
# ("env", name) ("this",) ("empty",) ("negate", expr)
Node = tuple[Any, ...]


class _Parser:
    """Precedence-climbing parser producing the tuple AST."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = _tokenize(expression)
        self.pos = 0

    def peek(self) -> _Tok:
        return self.tokens[self.pos]

    def take(self) -> _Tok:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok.kind != "op" or tok.value != value:
            raise FHIRPathError(f"expected {value!r}, got {tok.value!r} in {self.expression!r}")

    def parse(self) -> Node:
        node = self.expr(0)
        if self.peek().kind != "end":
            raise FHIRPathError(f"unexpected {self.peek().value!r} in {self.expression!r}")
        return node

    def expr(self, min_power: int) -> Node:
        left = self.unary()
        while True:
            tok = self.peek()
            power = _BINARY_POWER.get(tok.value) if tok.kind == "op" else None
            if power is None or power <= min_power:
                return left
            self.take()
            if tok.value in ("is", "as"):
                left = ("typeop", tok.value, left, self.type_specifier())
            else:
                left = ("binary", tok.value, left, self.expr(power))

    def type_specifier(self) -> str:
        parts = [self.identifier()]
        while (
            self.peek().kind == "op"
            and self.peek().value == "."
            and self.tokens[self.pos + 1].kind == "ident"
        ):
            self.take()
            parts.append(self.identifier())
        return parts[-1]  # "FHIR.Patient" / "System.String" -> the bare name

    def identifier(self) -> str:
        tok = self.take()
        if tok.kind == "op" and tok.value in _KEYWORD_OPS:
            return tok.value  # keywords are plain names after a dot: ValueSet.expansion.contains
        if tok.kind != "ident":
            raise FHIRPathError(f"expected an identifier, got {tok.value!r} in {self.expression!r}")
        return tok.value

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.value in ("+", "-"):
            self.take()
            operand = self.unary()
            return ("negate", operand) if tok.value == "-" else operand
        return self.postfix(self.term())

    def term(self) -> Node:
        tok = self.take()
        if tok.kind == "string":
            return ("literal", tok.value)
        if tok.kind == "number":
            return ("literal", float(tok.value) if "." in tok.value else int(tok.value))
        if tok.kind == "env":
            return ("env", tok.value)
        if tok.kind == "op" and tok.value == "(":
            inner = self.expr(0)
            self.expect(")")
            return inner
        if tok.kind == "op" and tok.value == "{}":
            return ("empty",)
        if tok.kind == "ident":
            if tok.value in ("true", "false"):
                return ("literal", tok.value == "true")
            if tok.value == "$this":
                return ("this",)
            if self.peek().kind == "op" and self.peek().value == "(":
                return self.call(None, tok.value)
            return ("ident", tok.value)
        raise FHIRPathError(f"unexpected {tok.value!r} in {self.expression!r}")

    def call(self, base: Node | None, name: str) -> Node:
        self.expect("(")
        args: list[Node] = []
        if not (self.peek().kind == "op" and self.peek().value == ")"):
            if name in ("ofType", "as", "is"):
                args.append(("typename", self.type_specifier()))
            else:
                args.append(self.expr(0))
                while self.peek().kind == "op" and self.peek().value == ",":
                    self.take()
                    args.append(self.expr(0))
        self.expect(")")
        return ("func", base, name, tuple(args))

    def postfix(self, node: Node) -> Node:
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value == ".":
                self.take()
                name = self.identifier()
                if self.peek().kind == "op" and self.peek().value == "(":
                    node = self.call(node, name)
                else:
                    node = ("member", node, name)
            elif tok.kind == "op" and tok.value == "[":
                self.take()
                index = self.expr(0)
                self.expect("]")
                node = ("index", node, index)
            else:
                return node


def parse(expression: str) -> Node:
    """Parse an expression into the tuple AST used by the compiler (exposed for tests)."""
    return _Parser(expression).parse()


# --------------------------------------------------------------------------------------------
# Runtime helpers
# --------------------------------------------------------------------------------------------


def _identity(coll: list[Any], root: dict[str, Any]) -> list[Any]:
    """The focus itself (``$this``, or the start of a path)."""
    return coll


def _walk(source: Evaluator | None, keys: tuple[str, ...]) -> Evaluator:
    """Child navigation along a fixed key path, flattening arrays."""
    if len(keys) == 1:
        key = keys[0]

        def step(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            out: list[Any] = []
            for node in coll if source is None else source(coll, root):
                if type(node) is dict:
                    value = node.get(key)
                    if value is not None:
                        if type(value) is list:
                            out.extend(value)
                        else:
                            out.append(value)
            return out

        return step

    def walk(coll: list[Any], root: dict[str, Any]) -> list[Any]:
        current = coll if source is None else source(coll, root)
        for key in keys:
            out: list[Any] = []
            for node in current:
                if type(node) is dict:
                    value = node.get(key)
                    if value is not None:
                        if type(value) is list:
                            out.extend(value)
                        else:
                            out.append(value)
            if not out:
                return out
            current = out
        return current

    return walk


def _choice_scan(source: Evaluator, stem: str) -> Evaluator:
    """Untyped navigation to an element that may be a choice: ``value`` reads ``value*`` keys."""
    cut = len(stem)

    def scan(coll: list[Any], root: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        for node in source(coll, root):
            if type(node) is not dict:
                continue
            for key, value in node.items():
                if key == stem or (key.startswith(stem) and len(key) > cut and key[cut].isupper()):
                    if type(value) is list:
                        out.extend(value)
                    elif value is not None:
                        out.append(value)
        return out

    return scan


_REFERENCE_RE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")


def reference_type(reference: Any) -> str | None:
    """The resource type a Reference (or a ``resolve()`` stand-in) points at, if it says so."""
    if type(reference) is not dict:
        return None
    target = reference.get("reference")
    if type(target) is str:
        match = _REFERENCE_RE.search(target)
        if match:
            return match.group(1)
    declared = reference.get("type")
    if type(declared) is str:
        return declared.rsplit("/", 1)[-1]
    resource_type = reference.get("resourceType")
    return resource_type if type(resource_type) is str else None


def _resolve(reference: Any, root: dict[str, Any]) -> Any:
    """``resolve()`` without a server: contained resources, else a ``{"resourceType": T}`` stub."""
    if type(reference) is not dict:
        return None
    if "resourceType" in reference:
        return reference
    target = reference.get("reference")
    if type(target) is str and target.startswith("#"):
        for contained in root.get("contained", ()):
            if type(contained) is dict and contained.get("id") == target[1:]:
                return contained
        return None
    resource_type = reference_type(reference)
    return {"resourceType": resource_type} if resource_type else None


def _resolved_type(reference: Any, root: dict[str, Any]) -> str | None:
    """The type ``resolve()`` would give for a reference, without building the stand-in."""
    if type(reference) is dict:
        target = reference.get("reference")
        if type(target) is str and target.startswith("#"):
            resolved = _resolve(reference, root)
            return resolved.get("resourceType") if type(resolved) is dict else None
    return reference_type(reference)


_PRIMITIVE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "boolean": lambda v: type(v) is bool,
    "integer": lambda v: type(v) is int,
    "decimal": lambda v: type(v) in (int, float),
}


def _runtime_is(node: Any, type_name: str) -> bool:
    """Type test for a node whose type was not known at compile time."""
    if type(node) is dict:
        resource_type = node.get("resourceType")
        if resource_type is not None:
            return bool(resource_type == type_name or _is_subtype(resource_type, type_name))
        return type_name[:1].isupper()
    check = _PRIMITIVE_CHECKS.get(type_name)
    if check is not None:
        return check(node)
    return type(node) is str and not type_name[:1].isupper()


def _truthy(values: list[Any]) -> bool | None:
    """FHIRPath singleton evaluation of a collection as a boolean (``None`` = empty)."""
    if not values:
        return None
    if len(values) == 1 and type(values[0]) is bool:
        return bool(values[0])
    return True


def _merge(branches: Sequence[TypedBranch]) -> TypedBranch:
    """One branch producing the concatenation of several (union semantics without dedupe)."""
    if not branches:
        return TypedBranch(lambda coll, root: [], None)
    if len(branches) == 1:
        return branches[0]
    evaluators = tuple(b.evaluate for b in branches)
    types = {b.type for b in branches}
    requires = {b.requires for b in branches}

    def union(coll: list[Any], root: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        for evaluate in evaluators:
            out.extend(evaluate(coll, root))
        return out

    return TypedBranch(
        union, types.pop() if len(types) == 1 else None, requires.pop() if len(requires) == 1 else None
    )


# --------------------------------------------------------------------------------------------
# Compiler
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Branch:
    """A compile-time branch: evaluator, static type and, for pure key walks, their parts."""

    evaluate: Evaluator
    type: str | None
    source: Evaluator | None = None  # for key walks: the evaluator the keys start from
    keys: tuple[str, ...] = ()
    choice_parent: _Branch | None = None  # untyped member: the branch it was read from
    choice_stem: str = ""  # ... and the element name, so ofType(T) can read stem + T
    requires: str | None = None  # see TypedBranch.requires


def _walk_branch(branch: _Branch, key: str, type_name: str | None) -> _Branch:
    """Extend a branch by one child step, fusing consecutive key steps into one walk."""
    if branch.keys:
        source, keys = branch.source, (*branch.keys, key)
    elif branch.evaluate is _identity:
        source, keys = None, (key,)
    else:
        source, keys = branch.evaluate, (key,)
    requires = keys[0] if source is None else branch.requires
    return _Branch(_walk(source, keys), type_name, source, keys, requires=requires)


def _public(branches: Sequence[_Branch]) -> list[TypedBranch]:
    """Compile-time branches as the public :class:`TypedBranch` values."""
    return [TypedBranch(b.evaluate, b.type, b.requires) for b in branches]


def _constant(values: list[Any]) -> Evaluator:
    """An evaluator returning a literal collection."""

    def constant(coll: list[Any], root: dict[str, Any]) -> list[Any]:
        return list(values)

    return constant


class _Compiler:
    """Turns the AST into typed branches; one ``c_*`` method per node kind, one ``f_*`` per function."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def fail(self, message: str) -> FHIRPathError:
        return FHIRPathError(f"{message} in {self.expression!r}")

    def compile(self, node: Node, focus: _Branch) -> list[_Branch]:
        kind = node[0]
        method = getattr(self, "c_" + kind, None)
        if method is None:
            raise self.fail(f"unsupported construct {kind}")
        result: list[_Branch] = method(node, focus)
        return result

    def merged(self, node: Node, focus: _Branch) -> _Branch:
        m = _merge(_public(self.compile(node, focus)))
        return _Branch(m.evaluate, m.type, requires=m.requires)

    # -- terms ---------------------------------------------------------------------------

    def c_literal(self, node: Node, focus: _Branch) -> list[_Branch]:
        value = node[1]
        type_name = {bool: "boolean", int: "integer", float: "decimal", str: "string"}[type(value)]
        return [_Branch(_constant([value]), type_name)]

    def c_empty(self, node: Node, focus: _Branch) -> list[_Branch]:
        return []

    def c_this(self, node: Node, focus: _Branch) -> list[_Branch]:
        return [focus]

    def c_env(self, node: Node, focus: _Branch) -> list[_Branch]:
        name = node[1]
        if name in ("resource", "rootResource", "context"):
            root_type = self.root_type

            def env_root(coll: list[Any], root: dict[str, Any]) -> list[Any]:
                return [root]

            return [_Branch(env_root, root_type)]
        if name == "ucum":
            return [_Branch(_constant(["http://unitsofmeasure.org"]), "string")]
        if name == "sct":
            return [_Branch(_constant(["http://snomed.info/sct"]), "string")]
        if name == "loinc":
            return [_Branch(_constant(["http://loinc.org"]), "string")]
        raise self.fail(f"unknown environment variable %{name}")

    def c_ident(self, node: Node, focus: _Branch) -> list[_Branch]:
        name: str = node[1]
        if name[:1].isupper():
            # A (capitalised) type name as the first step is a filter on the focus' type.
            if focus.type is not None:
                return [focus] if _is_subtype(focus.type, name) else []
            source = focus.evaluate

            def type_filter(coll: list[Any], root: dict[str, Any]) -> list[Any]:
                return [n for n in source(coll, root) if _runtime_is(n, name)]

            return [_Branch(type_filter, name)]
        return self.member(focus, name)

    def c_member(self, node: Node, focus: _Branch) -> list[_Branch]:
        out: list[_Branch] = []
        for branch in self.compile(node[1], focus):
            out.extend(self.member(branch, node[2]))
        return out

    def member(self, branch: _Branch, name: str) -> list[_Branch]:
        if branch.type is not None:
            pairs = element_types(branch.type, name)
            if pairs:
                return [_walk_branch(branch, key, type_name) for key, type_name in pairs]
        if branch.type is not None:
            return [_walk_branch(branch, name, None)]
        # Unknown type: the plain key and any choice keys (stem + TypeName).
        return [
            _Branch(
                _choice_scan(branch.evaluate, name),
                None,
                choice_parent=branch,
                choice_stem=name,
                requires=branch.requires,
            )
        ]

    def c_index(self, node: Node, focus: _Branch) -> list[_Branch]:
        base = self.merged(node[1], focus)
        index_node = node[2]
        if index_node[0] != "literal" or type(index_node[1]) is not int:
            raise self.fail("only literal integer indexers are supported")
        index: int = index_node[1]
        source = base.evaluate

        def indexer(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            return source(coll, root)[index : index + 1]

        return [_Branch(indexer, base.type, requires=base.requires)]

    def c_negate(self, node: Node, focus: _Branch) -> list[_Branch]:
        base = self.merged(node[1], focus)
        source = base.evaluate

        def negate(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            return [-v for v in source(coll, root) if type(v) in (int, float)]

        return [_Branch(negate, base.type)]

    # -- operators -----------------------------------------------------------------------

    def c_typeop(self, node: Node, focus: _Branch) -> list[_Branch]:
        _, op, operand, type_spec = node
        type_name = _canonical_type(type_spec)
        branches = self.compile(operand, focus)
        if op == "as":
            return self.of_type(branches, type_name)
        return [self.is_type(_merge(_public(branches)), type_name)]

    def of_type(self, branches: list[_Branch], type_name: str) -> list[_Branch]:
        out: list[_Branch] = []
        for branch in branches:
            if branch.type is not None and branch.type != "Resource":
                if _is_subtype(branch.type, type_name):
                    out.append(branch)
                continue
            if branch.choice_parent is not None:
                # Untyped choice: read the typed key directly (value + Quantity = valueQuantity).
                key = branch.choice_stem + type_name[0].upper() + type_name[1:]
                out.append(_walk_branch(branch.choice_parent, key, type_name))
                continue
            source = branch.evaluate

            def of_type(coll: list[Any], root: dict[str, Any], source: Evaluator = source) -> list[Any]:
                return [n for n in source(coll, root) if _runtime_is(n, type_name)]

            out.append(_Branch(of_type, type_name, requires=branch.requires))
        return out

    def is_type(self, operand: TypedBranch, type_name: str) -> _Branch:
        source = operand.evaluate
        static = operand.type
        if static is not None and static != "Resource":
            answer = _is_subtype(static, type_name)

            def is_static(coll: list[Any], root: dict[str, Any]) -> list[Any]:
                return [answer] if source(coll, root) else []

            return _Branch(is_static, "boolean")

        def is_dynamic(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            values = source(coll, root)
            if not values:
                return []
            return [_runtime_is(values[0], type_name)]

        return _Branch(is_dynamic, "boolean")

    def c_binary(self, node: Node, focus: _Branch) -> list[_Branch]:
        _, op, left_node, right_node = node
        if op == "|":
            return self.compile(left_node, focus) + self.compile(right_node, focus)
        left = self.merged(left_node, focus).evaluate
        right = self.merged(right_node, focus).evaluate
        if op in ("and", "or", "xor", "implies"):
            return [_Branch(_logic(op, left, right), "boolean")]
        if op in ("=", "!=", "~", "!~", "<", "<=", ">", ">="):
            return [_Branch(_comparison(op, left, right), "boolean")]
        if op in ("in", "contains"):
            return [_Branch(_membership(op, left, right), "boolean")]
        raise self.fail(f"unsupported operator {op}")

    # -- functions -----------------------------------------------------------------------

    def c_func(self, node: Node, focus: _Branch) -> list[_Branch]:
        _, base_node, name, args = node
        bases = self.compile(base_node, focus) if base_node is not None else [focus]
        handler = getattr(self, "f_" + name, None)
        if handler is None:
            raise self.fail(f"unsupported function {name}()")
        result: list[_Branch] = handler(bases, args)
        return result

    def arity(self, name: str, args: tuple[Node, ...], allowed: tuple[int, ...]) -> None:
        if len(args) not in allowed:
            raise self.fail(f"{name}() takes {allowed} arguments, got {len(args)}")

    def f_where(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("where", args, (1,))
        criteria = args[0]
        out: list[_Branch] = []
        for branch in bases:
            source = branch.evaluate
            fast_type = _resolve_is_pattern(criteria)
            if fast_type is not None:
                wanted = fast_type

                def where_ref(
                    coll: list[Any], root: dict[str, Any], source: Evaluator = source, wanted: str = wanted
                ) -> list[Any]:
                    return [n for n in source(coll, root) if _resolved_type(n, root) == wanted]

                out.append(_Branch(where_ref, branch.type, requires=branch.requires))
                continue
            item = _Branch(_identity, branch.type)
            predicate = self.merged(criteria, item).evaluate

            def where(
                coll: list[Any],
                root: dict[str, Any],
                source: Evaluator = source,
                predicate: Evaluator = predicate,
            ) -> list[Any]:
                return [n for n in source(coll, root) if _truthy(predicate([n], root))]

            out.append(_Branch(where, branch.type, requires=branch.requires))
        return out

    def f_exists(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("exists", args, (0, 1))
        if args:
            bases = self.f_where(bases, args)
        source = _merge(_public(bases)).evaluate

        def exists(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            return [bool(source(coll, root))]

        return [_Branch(exists, "boolean")]

    def f_empty(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("empty", args, (0,))
        source = _merge(_public(bases)).evaluate

        def empty(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            return [not source(coll, root)]

        return [_Branch(empty, "boolean")]

    def f_hasValue(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("hasValue", args, (0,))
        source = _merge(_public(bases)).evaluate

        def has_value(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            values = source(coll, root)
            return [len(values) == 1 and type(values[0]) is not dict]

        return [_Branch(has_value, "boolean")]

    def f_not(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("not", args, (0,))
        source = _merge(_public(bases)).evaluate

        def negation(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            value = _truthy(source(coll, root))
            return [] if value is None else [not value]

        return [_Branch(negation, "boolean")]

    def f_count(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("count", args, (0,))
        source = _merge(_public(bases)).evaluate

        def count(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            return [len(source(coll, root))]

        return [_Branch(count, "integer")]

    def _slice(self, bases: list[_Branch], start: int | None, stop: int | None) -> list[_Branch]:
        merged = _merge(_public(bases))
        source = merged.evaluate

        def sliced(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            return source(coll, root)[start:stop]

        return [_Branch(sliced, merged.type, requires=merged.requires)]

    def f_first(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("first", args, (0,))
        return self._slice(bases, 0, 1)

    def f_last(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("last", args, (0,))
        return self._slice(bases, -1, None)

    def f_tail(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("tail", args, (0,))
        return self._slice(bases, 1, None)

    def _type_arg(self, name: str, args: tuple[Node, ...]) -> str:
        self.arity(name, args, (1,))
        arg = args[0]
        if arg[0] != "typename":
            raise self.fail(f"{name}() expects a type name")
        return _canonical_type(arg[1])

    def f_ofType(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        return self.of_type(bases, self._type_arg("ofType", args))

    def f_as(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        return self.of_type(bases, self._type_arg("as", args))

    def f_is(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        type_name = self._type_arg("is", args)
        return [self.is_type(_merge(_public(bases)), type_name)]

    def f_resolve(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("resolve", args, (0,))
        merged = _merge(_public(bases))
        source = merged.evaluate

        def resolve(coll: list[Any], root: dict[str, Any]) -> list[Any]:
            out = []
            for reference in source(coll, root):
                target = _resolve(reference, root)
                if target is not None:
                    out.append(target)
            return out

        return [_Branch(resolve, "Resource", requires=merged.requires)]

    def f_extension(self, bases: list[_Branch], args: tuple[Node, ...]) -> list[_Branch]:
        self.arity("extension", args, (1,))
        if args[0][0] != "literal" or type(args[0][1]) is not str:
            raise self.fail("extension() expects a string literal url")
        url: str = args[0][1]
        out: list[_Branch] = []
        for branch in bases:
            walked = _walk_branch(branch, "extension", "Extension")
            extensions = walked.evaluate

            def extension(
                coll: list[Any], root: dict[str, Any], extensions: Evaluator = extensions
            ) -> list[Any]:
                return [e for e in extensions(coll, root) if type(e) is dict and e.get("url") == url]

            out.append(_Branch(extension, "Extension", requires=walked.requires))
        return out

    # -- entry point ---------------------------------------------------------------------

    root_type: str | None = None

    def run(self, node: Node, context_type: str | None, root_type: str | None) -> list[_Branch]:
        self.root_type = root_type
        return self.compile(node, _Branch(_identity, context_type))


def _resolve_is_pattern(node: Node) -> str | None:
    """``resolve() is T`` (as operator or function) -> ``T``; else ``None``."""
    if node[0] == "typeop" and node[1] == "is" and node[2] == ("func", None, "resolve", ()):
        return _canonical_type(node[3])
    if node[0] == "func" and node[2] == "is" and node[1] == ("func", None, "resolve", ()) and node[3]:
        return _canonical_type(node[3][0][1])
    return None


def _logic(op: str, left: Evaluator, right: Evaluator) -> Evaluator:
    """FHIRPath three-valued ``and`` / ``or`` / ``xor`` / ``implies``."""

    def logic(coll: list[Any], root: dict[str, Any]) -> list[Any]:
        a = _truthy(left(coll, root))
        b = _truthy(right(coll, root))
        result: bool | None
        if op == "and":
            result = False if a is False or b is False else (None if a is None or b is None else True)
        elif op == "or":
            result = True if a is True or b is True else (None if a is None or b is None else False)
        elif op == "xor":
            result = None if a is None or b is None else a != b
        else:  # implies
            result = True if a is False or b is True else (None if a is None or b is None else False)
        return [] if result is None else [result]

    return logic


def _normalise_for_equivalence(value: Any) -> Any:
    """String equivalence (``~``) ignores case and whitespace differences."""
    return " ".join(value.lower().split()) if type(value) is str else value


def _comparison(op: str, left: Evaluator, right: Evaluator) -> Evaluator:
    """Equality, equivalence and ordering operators (empty operand -> empty result)."""

    def compare(coll: list[Any], root: dict[str, Any]) -> list[Any]:
        a = left(coll, root)
        b = right(coll, root)
        if op in ("~", "!~"):
            same = [_normalise_for_equivalence(v) for v in a] == [_normalise_for_equivalence(v) for v in b]
            return [same if op == "~" else not same]
        if not a or not b:
            return []
        if op == "=":
            return [a == b]
        if op == "!=":
            return [a != b]
        x, y = a[0], b[0]
        if type(x) is dict or type(y) is dict or (type(x) is str) != (type(y) is str):
            return []
        if op == "<":
            return [x < y]
        if op == "<=":
            return [x <= y]
        if op == ">":
            return [x > y]
        return [x >= y]

    return compare


def _membership(op: str, left: Evaluator, right: Evaluator) -> Evaluator:
    """``in`` / ``contains`` on collections."""

    def member(coll: list[Any], root: dict[str, Any]) -> list[Any]:
        a = left(coll, root)
        b = right(coll, root)
        item, container = (a, b) if op == "in" else (b, a)
        if not item:
            return []
        return [item[0] in container]

    return member


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def compile_typed(
    expression: str, resource_type: str | None = None, context_type: str | None = None
) -> tuple[TypedBranch, ...]:
    """Compile an expression into statically typed branches.

    ``resource_type`` is the type of the resource the expression is evaluated on (``%resource``);
    ``context_type`` the type of the focus it starts from (defaults to ``resource_type``;
    composite components start from e.g. ``Observation.component``). Union branches rooted at
    another resource type are dropped. Raises :class:`FHIRPathError`.
    """
    tree = parse(expression)
    branches = _Compiler(expression).run(
        tree, context_type if context_type is not None else resource_type, resource_type
    )
    return tuple(_public(branches))


def evaluate_typed(
    branches: Sequence[TypedBranch], focus: Any, root: dict[str, Any]
) -> list[tuple[Any, str | None]]:
    """Evaluate typed branches on one focus node: ``[(node, FHIR type), ...]``."""
    out: list[tuple[Any, str | None]] = []
    for branch in branches:
        out.extend((node, branch.type) for node in branch.evaluate([focus], root))
    return out


def compile_expression(
    expression: str, resource_type: str | None = None
) -> Callable[[dict[str, Any]], list[Any]]:
    """Compile an expression to a closure ``resource -> selected JSON nodes``.

    With ``resource_type`` the expression is specialised for that type (other types' union
    branches are dropped at compile time); without it, type-name roots are checked at run time.
    """
    merged = _merge(compile_typed(expression, resource_type)).evaluate

    def evaluate(resource: dict[str, Any]) -> list[Any]:
        return merged([resource], resource)

    return evaluate
