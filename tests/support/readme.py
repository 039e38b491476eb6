"""The README's shell examples, read from the file and run as written.

``readme_curls(section)`` gives the ``curl`` lines of one ``## section`` as argument
lists; ``run_curl`` performs one with our HTTP helper, with the ``localhost`` ports
the README uses replaced by the ones a test picked.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from tests.support.http import Response, request

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_section(title: str) -> str:
    """The text of the README section whose heading line is ``## {title}``."""
    text = README.read_text()
    heading = f"## {title}\n"
    assert heading in text, f"README has no section {title!r}"
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def readme_curls(title: str) -> list[list[str]]:
    """The curl commands of a README section's ``sh`` blocks, without the ``curl``."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", readme_section(title), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("curl "):
                commands.append(shlex.split(line)[1:])
    return commands


def run_curl(args: list[str], addresses: Mapping[str, str]) -> Response:
    """Run one curl argument list; ``addresses`` maps what the README writes (e.g.
    ``localhost:8080`` or ``http://127.0.0.1:9080``) to what the test uses, in the URL
    and in the body."""
    method, headers, data, url = None, {}, None, ""
    words = iter(args)
    for word in words:
        if word == "-X":
            method = next(words)
        elif word == "-H":
            name, value = next(words).split(":", 1)
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = next(words)
        else:
            url = word
    for written, actual in addresses.items():
        url = url.replace(written, actual)
        if data is not None:
            data = data.replace(written, actual)
    url = url if url.startswith("http") else f"http://{url}"
    body = None if data is None else data.encode()
    return request(
        method or ("POST" if body is not None else "GET"), url, body=body, headers=headers
    )
