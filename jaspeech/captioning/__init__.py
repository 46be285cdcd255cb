"""FSD50K captions: the release reader and licence classes, captioners, and caption filters."""
