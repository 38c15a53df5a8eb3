"""Real Graph API bodies, copied from shared/graph_samples (see fixtures/graph_samples)."""

import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).parent / "fixtures" / "graph_samples"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())
