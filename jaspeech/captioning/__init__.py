"""FSD50K metadata, licence filter and captioners for `fsd50k-cc-captions` (not built yet: issue 4)."""
