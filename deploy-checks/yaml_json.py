"""Prints a YAML file (its first document) as JSON, for checks written in Rust."""
import json
import sys

import yaml

with open(sys.argv[1]) as f:
    json.dump(yaml.safe_load(f), sys.stdout)
