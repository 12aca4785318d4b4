"""Inside a Bento image, let commands other than `bentoml serve` read the Bento's packed models.

BentoML's image sets BENTOML_HOME=/home/bentoml/ and BENTO_PATH=/home/bentoml/bento; only
`bentoml serve` looks in $BENTO_PATH/models. Entry points call this before importing bentoml
(the store location is read at import). Outside an image it does nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def use_bento_model_store() -> None:
    bento = os.environ.get("BENTO_PATH")
    if bento and (Path(bento) / "models").is_dir() and "bentoml" not in sys.modules:
        os.environ["BENTOML_HOME"] = bento
