"""Make stage scripts import the gaussvae package of THEIR OWN tree.

`dvc exp run --queue` runs stages in a temporary copy of the repository; with an editable
install, `import gaussvae` would otherwise load the workspace's (possibly newer) code, and the
experiment would not be what its commit says. Imported first by every stage script.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
