"""The YAML writer of the mqttspec test harness: to_yaml(obj) turns the dicts, lists and scalars
of a configuration (Service.config_dict(), the cfg of FailingStartTestCase.run_config(), …) into
the text of an mqttspecd.yaml, without PyYAML (only the standard library is used).

Non-empty mappings and lists nest as block YAML, except the list items that are mappings of
scalars (and lists inside lists), which are written in flow style ({…} / […]) like empty ones.
Scalars: strings as JSON strings (valid YAML double-quoted scalars), true/false/null, numbers
as Python writes them.
"""

import json


def _yaml_flow(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid YAML double-quoted scalar
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_yaml_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_flow(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v)} as YAML")


def _yaml_block(obj, indent):
    sp = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list, tuple)) and v:
                out.append(f"{sp}{k}:")
                out.extend(_yaml_block(v, indent + 2))
            else:
                out.append(f"{sp}{k}: {_yaml_flow(v)}")
    else:
        for item in obj:
            nested = isinstance(item, dict) and any(
                isinstance(x, (dict, list, tuple)) and x for x in item.values())
            if nested:
                sub = _yaml_block(item, indent + 2)
                sub[0] = sp + "- " + sub[0][indent + 2:]
                out.extend(sub)
            else:
                out.append(f"{sp}- {_yaml_flow(item)}")
    return out


def to_yaml(obj):
    return "\n".join(_yaml_block(obj, 0)) + "\n"
