"""Replaces the generated part of a Markdown page: the lines between
'<!-- BEGIN name -->' and '<!-- END name -->', written atomically."""
import os


def replace_section(doc, name, lines):
    text = open(doc).read()
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    b, e = text.index(begin), text.index(end)
    new = text[:b] + begin + "\n" + "\n".join(lines) + "\n" + text[e:]
    tmp = doc + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(new)
    os.replace(tmp, doc)
