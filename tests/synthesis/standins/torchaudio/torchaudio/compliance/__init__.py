"""Stand-in `torchaudio.compliance` (see the package docstring)."""
from torchaudio.compliance import kaldi  # noqa: F401
