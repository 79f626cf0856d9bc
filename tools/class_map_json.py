#!/usr/bin/env python3
"""Prints TotalSegmentator's label value → structure name tables as JSON, read from its
map_to_binary.py without importing it (it imports the package): `class_map = {...}` is a literal."""
import ast, json, sys

source, tasks = sys.argv[1], sys.argv[2:]
tree = ast.parse(open(source).read())
for node in tree.body:
    if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "class_map" for t in node.targets):
        table = ast.literal_eval(node.value)
        print(json.dumps({t: {str(k): v for k, v in table[t].items()} for t in tasks}, indent=1, sort_keys=True))
        break
else:
    sys.exit(f"{source}: no class_map literal")
