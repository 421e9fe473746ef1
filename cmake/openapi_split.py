#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""openapi_split.py — one binary's part of docs/openapi.yaml, as JSON.

    openapi_split.py SERVICE IN.yaml OUT.json [VERSION]   SERVICE: command-api | query-api

Run at build time (cmake/openapi.cmake); the output is compiled into the
binary, which serves it at GET /openapi.json. docs/openapi.yaml describes
both services and names each path's service(s) in a path-level `servers`
list (tests/unit/test_openapi_routes.c keeps those equal to the routes each
binary registers). For SERVICE this keeps:

  - the paths whose `servers` list SERVICE's default URL, without their
    path- and operation-level `servers`;
  - top-level `servers: [{url: /}]`, so Swagger UI's "Try it out" (and any
    client) calls the instance that served the document, whatever its port;
  - only the components these paths reach through `$ref` (transitively) and
    only the tags their operations use, so the document is complete and has
    nothing unused (redocly lint checks both);
  - path-level `parameters` copied into each operation (an operation's own
    parameter of the same name and location wins, as the specification
    says) instead of left on the path: Swagger UI 5 does not resolve a
    path-level parameter's `$ref` for OpenAPI 3.1, and renders it without a
    name, so "Try it out" could not fill in `{postId}`.

VERSION is the project's (CMake's `project(VERSION)`, the one source of
the version): the document's `info.version` must say the same, so that the
file a reader opens and the document a binary serves cannot drift from
`--version` and /health.

Fails (exit 1, nothing written) on a YAML error, a duplicate key, a `$ref`
that does not resolve inside the document, no path for SERVICE, or an
`info.version` other than VERSION. The YAML
is read with YAML 1.2 scalars (OpenAPI 3.1 is YAML 1.2): only true/false are
booleans (not yes/no/on/off) and dates stay strings.
"""
import json
import os
import re
import sys

import yaml

SERVICES = {
    "command-api": ("http://127.0.0.1:5001", "smpost command API"),
    "query-api": ("http://127.0.0.1:5002", "smpost query API"),
}
BOOL = "tag:yaml.org,2002:bool"
TIMESTAMP = "tag:yaml.org,2002:timestamp"


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no timestamps, no duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, "duplicate key %r" % (key,), key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (BOOL, TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class SplitError(Exception):
    pass


def refs_in(node):
    """Every local $ref string under node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs_in(item)


def pointer(ref):
    """'#/components/schemas/A~1B' -> ['components', 'schemas', 'A/B']."""
    if not ref.startswith("#/"):
        raise SplitError("$ref %r is not local: the binary's document must be self-contained"
                         % ref)
    return [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]


def resolve(doc, ref):
    node = doc
    for part in pointer(ref):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SplitError("$ref %r does not resolve in the document" % ref)
    return node


def reachable_components(doc, roots):
    """{kind: {name}} of the components reached from roots through $ref."""
    keep = {}
    todo = list(refs_in(roots))
    while todo:
        ref = todo.pop()
        resolve(doc, ref)
        parts = pointer(ref)
        if len(parts) < 3 or parts[0] != "components":
            continue
        kind, name = parts[1], parts[2]
        if name in keep.setdefault(kind, set()):
            continue
        keep[kind].add(name)
        todo.extend(refs_in(doc["components"][kind][name]))
    return keep


METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def param_key(doc, param):
    """(name, in) of a parameter or of the parameter its $ref names."""
    if "$ref" in param:
        param = resolve(doc, param["$ref"])
    return param.get("name"), param.get("in")


def for_binary(doc, path_item):
    """The path item without servers, its parameters moved into each
    operation (see the module comment)."""
    shared = path_item.get("parameters", [])
    item = {k: v for k, v in path_item.items() if k not in ("servers", "parameters")}
    for method in METHODS:
        if method not in item:
            continue
        op = {k: v for k, v in item[method].items() if k != "servers"}
        own = op.get("parameters", [])
        own_keys = {param_key(doc, p) for p in own}
        merged = [p for p in shared if param_key(doc, p) not in own_keys] + own
        if merged:
            op["parameters"] = merged
        item[method] = op
    return item


def split(doc, service):
    url, title = SERVICES[service]
    paths = {}
    for path, item in (doc.get("paths") or {}).items():
        if any(s.get("url") == url for s in item.get("servers", [])):
            paths[path] = for_binary(doc, item)
    if not paths:
        raise SplitError("no path in the document lists %s's server %s" % (service, url))

    out = {}
    for key, value in doc.items():
        if key == "info":
            out[key] = dict(value, title=title)
        elif key == "servers":
            out[key] = [{"url": "/", "description": "this %s instance" % service}]
        elif key == "tags":
            used = {t for item in paths.values() for op in item.values()
                    if isinstance(op, dict) for t in op.get("tags", [])}
            out[key] = [t for t in value if t.get("name") in used]
        elif key == "paths":
            out[key] = paths
        elif key == "components":
            keep = reachable_components(doc, {"paths": paths})
            comps = {}
            for kind, members in value.items():
                if kind == "securitySchemes":  # named by `security`, not by $ref
                    comps[kind] = members
                elif keep.get(kind):
                    comps[kind] = {n: v for n, v in members.items() if n in keep[kind]}
            out[key] = comps
        else:
            out[key] = value
    out.setdefault("servers", [{"url": "/", "description": "this %s instance" % service}])
    # Every $ref left must resolve in the output itself.
    for ref in refs_in(out):
        resolve(out, ref)
    return out


def main(argv):
    if len(argv) not in (4, 5) or argv[1] not in SERVICES:
        sys.stderr.write("usage: openapi_split.py {%s} IN.yaml OUT.json [VERSION]\n"
                         % "|".join(SERVICES))
        return 2
    service, src, dst = argv[1:4]
    try:
        with open(src, encoding="utf-8") as f:
            doc = yaml.load(f, Loader=Yaml12Loader)
        if len(argv) == 5 and str(doc.get("info", {}).get("version")) != argv[4]:
            raise SplitError("info.version is %r, the project's version (CMakeLists.txt) is %r; "
                             "make them the same" % (doc.get("info", {}).get("version"), argv[4]))
        result = split(doc, service)
    except (OSError, yaml.YAMLError, SplitError) as e:
        sys.stderr.write("openapi_split.py: %s: %s\n" % (src, e))
        return 1
    tmp = dst + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
