"""schemathesis against a served OpenAPI document: every documented route driven with generated input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def run_schemathesis(document_url: str, base_url: str, *headers: str, max_examples: int = 15) -> None:
    """Fail unless no answer is a server error and every status, content type and body is as documented."""
    st = Path(sys.executable).with_name("schemathesis")
    args = [str(st), "run", document_url, "--url", base_url, "--checks", CHECKS]
    for header in headers:
        args += ["-H", header]
    args += [
        "--max-examples",
        str(max_examples),
        "--phases",
        "examples,fuzzing",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
    ]
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
