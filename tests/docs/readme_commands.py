#!/usr/bin/env python3
"""Every command line README.md shows must match what the binaries accept.

For each `drover ...`, `drover-broker ...` and `drover-worker ...` line in
README.md's code blocks and inline code, this runs the command's `--help`
(which must exit 0) and checks that every option the line uses is one the
help names. The help text is what the parser is checked against in the
C suite (unknown options are usage errors), so README, help and parser
agree. Alternatives (`list | show NAME`) are split; `[...]` brackets are
optional parts and are read like the rest.

Usage: readme_commands.py README.md BIN_DIR   (exit 0: all agree)
"""
import re
import subprocess
import sys

# Commands whose first word after the command is a subcommand.
GROUPS = {"local", "models", "datasets", "jobs", "dead", "results", "admin"}


def snippets(text):
    """Command lines from fenced blocks (an indented line continues the
    one above) and inline code (a paragraph's lines joined first)."""
    out = []
    in_block = False
    paragraph = []
    for line in text.splitlines() + [""]:
        if line.startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            line = line.split("#", 1)[0].rstrip()
            if line[:1].isspace() and out:
                out[-1] += " " + line.strip()
            else:
                out.append(line)
            continue
        if line.strip():
            paragraph.append(line.strip())
            continue
        out.extend(re.findall(r"`([^`]+)`", " ".join(paragraph)))
        paragraph = []
    cmds = []
    for s in out:
        s = s.strip()
        s = re.sub(r"^\$B/", "", s)
        s = re.sub(r"^build/\w+/bin/", "", s)
        if re.match(r"^drover(-broker|-worker)?( |$)", s):
            cmds.append(s)
    return cmds


def uses(cmd):
    """(binary, command, subcommand) -> options, from one command line."""
    found = {}
    words = cmd.replace("[", " ").replace("]", " ").replace("(", " ") \
               .replace(")", " ").split()
    binary = words[0]
    if binary != "drover":
        found.setdefault((binary, None, None), set()).update(
            w.split("=")[0] for w in words[1:] if w.startswith("--"))
        return found
    if len(words) < 2 or words[1].startswith("-"):
        return found
    command, sub, i = words[1], None, 2
    key = (binary, command, None)
    while i < len(words):
        w = words[i]
        if command in GROUPS and (sub is None or words[i - 1] == "|") \
                and re.match(r"^[a-z]+$", w):
            sub = w
            key = (binary, command, sub)
            found.setdefault(key, set())
        elif w.startswith("--") and re.match(r"^--[a-z][a-z0-9-]*", w):
            found.setdefault(key, set()).add(
                re.match(r"^--[a-z][a-z0-9-]*", w).group(0))
        i += 1
    return found


def help_text(bin_dir, binary, command, sub):
    argv = [f"{bin_dir}/{binary}"]
    if command:
        argv.append(command)
    if sub:
        argv.append(sub)
    argv.append("--help")
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr, argv


def main():
    readme, bin_dir = sys.argv[1], sys.argv[2]
    with open(readme, encoding="utf-8") as f:
        cmds = snippets(f.read())
    wanted = {}
    for c in cmds:
        for key, opts in uses(c).items():
            wanted.setdefault(key, set()).update(opts)
    if len(wanted) < 10:
        print(f"only {len(wanted)} commands found in {readme}: parser broken?")
        return 1
    bad = 0
    for (binary, command, sub), opts in sorted(
            wanted.items(), key=lambda kv: tuple(x or "" for x in kv[0])):
        rc, text, argv = help_text(bin_dir, binary, command, sub)
        name = " ".join(argv[:-1]).replace(bin_dir + "/", "")
        if rc != 0:
            print(f"FAIL {name} --help exits {rc}")
            bad += 1
            continue
        named = set(re.findall(r"--[a-z][a-z0-9-]*", text))
        named |= {"--help", "--broker", "--json", "--key", "--broker-key"}
        missing = sorted(opts - named)
        if missing:
            print(f"FAIL {name}: README uses {', '.join(missing)}, "
                  f"its --help does not name them")
            bad += 1
        else:
            print(f"ok   {name} ({len(opts)} options)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
