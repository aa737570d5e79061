"""Replacing one marked section of bench/RESULTS.md: the text between
<!-- tabby-NAME-section:begin --> and <!-- tabby-NAME-section:end -->, appended
when the file has none yet. Each benchmark script owns its section."""
import os


def write_section(path, name, text):
    begin_mark, end_mark = f"<!-- tabby-{name}-section:begin", f"<!-- tabby-{name}-section:end -->"
    old = open(path).read() if os.path.exists(path) else ""
    begin, end = old.find(begin_mark), old.find(end_mark)
    if begin >= 0 and end >= 0:
        new = old[:begin] + text + old[end + len(end_mark) + 1:]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    with open(path + ".tmp", "w") as f:
        f.write(new)
    os.replace(path + ".tmp", path)
