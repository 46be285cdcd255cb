"""Dataset cards: templates per corpus and rendering from the files on disk."""
