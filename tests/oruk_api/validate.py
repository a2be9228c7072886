"""Validates tributary's ORUK responses against the official ORUK 3.0 profile.

usage: validate.py PROFILE_DIR RESPONSES_JSON

RESPONSES_JSON is a list of {"path": "/services/{id}", "body": ...}, with `path` the profile's
route template. Each body is checked against the 200 response schema of that route in the profile's
openapi.json, whose $refs to the published schemata resolve to PROFILE_DIR/schemata/*.json. The
profile's list schemata (compiled/service_list.json, compiled/service_at_location_list.json) are
not published in the profile directory: list items are checked against the full record schemata,
which is stricter. Formats are checked (uuid, email, date-time, uri) with standard-library
checkers, since jsonschema checks date-time and uri only with optional packages.
Prints one line per failure and exits 1 if any body fails.
"""
import datetime
import json
import pathlib
import re
import sys
import urllib.parse

import jsonschema
import referencing
import referencing.jsonschema

BASE = "https://raw.githubusercontent.com/openreferral/uk-profile/main/schema/"
ALIASES = {
    "service_list.json": "service.json",
    "service_at_location_list.json": "service_at_location.json",
}


def registry(profile):
    resources = []
    for f in sorted((profile / "schemata").glob("*.json")):
        res = referencing.jsonschema.DRAFT202012.create_resource(json.loads(f.read_text()))
        resources += [(BASE + f.name, res), (BASE + "compiled/" + f.name, res)]
    by_name = {uri.rsplit("/", 1)[1]: res for uri, res in resources}
    for alias, target in ALIASES.items():
        resources.append((BASE + "compiled/" + alias, by_name[target]))
    openapi = json.loads((profile / "openapi.json").read_text())
    resources.append(
        ("urn:oruk:openapi", referencing.jsonschema.DRAFT202012.create_resource(openapi))
    )
    return referencing.Registry().with_resources(resources), openapi


RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
checker = jsonschema.FormatChecker()


@checker.checks("date-time", raises=ValueError)
def date_time(value):
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        raise ValueError("not RFC 3339")
    datetime.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    return True


@checker.checks("uri", raises=ValueError)
def uri(value):
    if not isinstance(value, str):
        return True
    u = urllib.parse.urlsplit(value)
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", u.scheme or "") or any(c in value for c in " <>\"{}|\\^`"):
        raise ValueError("not an absolute URI")
    return True


def pointer(path):
    esc = path.replace("~", "~0").replace("/", "~1")
    return f"urn:oruk:openapi#/paths/{esc}/get/responses/200/content/application~1json/schema"


def main():
    profile = pathlib.Path(sys.argv[1])
    reg, openapi = registry(profile)
    phone = json.loads((profile / "schemata" / "phone.json").read_text())
    items = json.loads(pathlib.Path(sys.argv[2]).read_text())
    failures = 0
    checked = 0
    validators = {}
    for item in items:
        path = item["path"]
        if path not in openapi["paths"]:
            print(f"{path}: not a route of the profile")
            failures += 1
            continue
        if path not in validators:
            validators[path] = jsonschema.Draft202012Validator(
                {"$ref": pointer(path)}, registry=reg, format_checker=checker
            )
        errors = list(validators[path].iter_errors(item["body"]))
        # Phones ride in contacts (HSDS 3.0); the profile allows them there without a schema.
        for v in walk(item["body"]):
            for c in v.get("contacts", []) if isinstance(v.get("contacts"), list) else []:
                for p in c.get("phones", []) if isinstance(c, dict) else []:
                    errors += list(
                        jsonschema.Draft202012Validator(phone, format_checker=checker).iter_errors(p)
                    )
        checked += 1
        for e in errors[:5]:
            failures += 1
            where = "/".join(str(p) for p in e.absolute_path)
            print(f"{path} {item.get('url', '')} at /{where}: {e.message}")
    print(f"checked {checked} responses, {failures} failures")
    sys.exit(1 if failures else 0)


def walk(v):
    if isinstance(v, dict):
        yield v
        for x in v.values():
            yield from walk(x)
    elif isinstance(v, list):
        for x in v:
            yield from walk(x)


if __name__ == "__main__":
    main()
